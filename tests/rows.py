"""Hand-written customer rows in the original text format, for tests that need exact inputs."""

from __future__ import annotations

from pathlib import Path

from defaultrisk.schema import INPUT_COLUMNS

GOOD_ROW = {
    "uuid": "6f6e6c6a-2081-4e6b-8eb3-4fd89b54b2d7",
    "default": "NA",
    "account_amount_added_12_24m": "0",
    "account_days_in_dc_12_24m": "0.0",
    "account_days_in_rem_12_24m": "0.0",
    "account_days_in_term_12_24m": "0.0",
    "account_incoming_debt_vs_paid_0_24m": "0.0091346153846153",
    "account_status": "1.0",
    "account_worst_status_0_3m": "1.0",
    "account_worst_status_12_24m": "NA",
    "account_worst_status_3_6m": "1.0",
    "account_worst_status_6_12m": "1.0",
    "age": "20",
    "avg_payment_span_0_12m": "6.4",
    "avg_payment_span_0_3m": "5.25",
    "merchant_category": "Youthful Shoes & Clothing",
    "merchant_group": "Clothing & Shoes",
    "has_paid": "True",
    "max_paid_inv_0_12m": "7225.0",
    "max_paid_inv_0_24m": "7225.0",
    "name_in_email": "F",
    "num_active_div_by_paid_inv_0_12m": "0.0",
    "num_active_inv": "0",
    "num_arch_dc_0_12m": "0",
    "num_arch_dc_12_24m": "0",
    "num_arch_ok_0_12m": "5",
    "num_arch_ok_12_24m": "0",
    "num_arch_rem_0_12m": "0",
    "num_arch_written_off_0_12m": "0.0",
    "num_arch_written_off_12_24m": "0.0",
    "num_unpaid_bills": "1",
    "status_last_archived_0_24m": "1",
    "status_2nd_last_archived_0_24m": "1",
    "status_3rd_last_archived_0_24m": "1",
    "status_max_archived_0_6_months": "1",
    "status_max_archived_0_12_months": "1",
    "status_max_archived_0_24_months": "1",
    "recovery_debt": "0",
    "sum_capital_paid_account_0_12m": "8815",
    "sum_capital_paid_account_12_24m": "0",
    "sum_paid_inv_0_12m": "27157",
    "time_hours": "19.8955555555556",
    "worst_status_active_inv": "NA",
}


def uuid_for(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def row(i: int, **changes: str) -> dict:
    """The good row with a distinct uuid and some values replaced."""
    return {**GOOD_ROW, "uuid": uuid_for(i), **changes}


def write_csv(
    path: Path, rows: list[dict], columns=INPUT_COLUMNS, sep: str = ";", newline: str = "\n"
) -> Path:
    lines = [sep.join(columns)] + [sep.join(r.get(c, "NA") for c in columns) for r in rows]
    path.write_text(newline.join(lines) + newline, encoding="utf-8")
    return path
