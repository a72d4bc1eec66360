"""Invoices: archived ones by outcome and status, amounts paid, payment spans, open ones, recovery debt."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from sampledata.population import lognormal, ordinal, sigmoid

INVOICES_24M_SHARE = 0.815
INVOICES_12M_GIVEN_24M = 0.947
INVOICES_6M_GIVEN_12M = 0.826
INVOICES_12_24M_GIVEN_12M = 0.76
SPAN_12M_UNKNOWN = 0.011
SPAN_3M_KNOWN_GIVEN_6M = 0.81
WRITTEN_OFF_UNKNOWN_WITHOUT_SPAN = 0.74
WRITTEN_OFF_UNKNOWN_WITH_SPAN = 0.0026
HAS_PAID_WITHOUT_PAYMENTS = 0.317
STATUS_FIVE_SHARE = 0.0005
MAX_SPAN_DAYS = 180.0
INVOICE_LARGEST_GROWTH = 0.3
MAX_ACTIVE_PER_PAID = 5
MAX_INVOICES_PER_YEAR = 300
ACTIVE_INVOICE_STATUS_SHARES = (0.8899, 0.1051, 0.0050)
LAST_ARCHIVED_STATUSES = (
    "status_last_archived_0_24m",
    "status_2nd_last_archived_0_24m",
    "status_3rd_last_archived_0_24m",
)


@dataclass(frozen=True)
class InvoiceHistory:
    """Which windows hold archived invoices, and how many there were in each year."""

    inv24: np.ndarray
    inv12: np.ndarray
    inv6: np.ndarray
    inv12_24: np.ndarray
    n12: np.ndarray
    n12_24: np.ndarray


def _invoice_count(log_volume: np.ndarray) -> np.ndarray:
    return np.minimum(1 + np.floor(np.exp(log_volume)), MAX_INVOICES_PER_YEAR).astype(np.int64)


def _average_of_whole_days(raw: np.ndarray, invoices: np.ndarray) -> np.ndarray:
    """An average of whole days over the customer's invoices: whole when there is one invoice."""
    k = np.maximum(invoices, 1)
    return np.round(raw * k) / k


def _window_status(present: np.ndarray, rem: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """Worst outcome in a window: 0 no invoice, 1 paid, 2 after a reminder, 3 via debt collection."""
    return np.where(~present, 0, np.where(dc > 0, 3, np.where(rem > 0, 2, 1)))


def invoice_history(rng: np.random.Generator, activity: np.ndarray) -> InvoiceHistory:
    """No archived invoices at all, only older ones, or recent ones too; active customers have more."""
    n = len(activity)
    history_latent = (activity + 0.6 * rng.standard_normal(n)) / np.sqrt(1.36)
    inv24 = history_latent > NormalDist().inv_cdf(1.0 - INVOICES_24M_SHARE)
    inv12 = inv24 & (rng.random(n) < INVOICES_12M_GIVEN_24M)
    inv6 = inv12 & (rng.random(n) < INVOICES_6M_GIVEN_12M)
    inv12_24 = inv24 & (~inv12 | (rng.random(n) < INVOICES_12_24M_GIVEN_12M))
    volume = 0.9 + 1.0 * activity
    n12 = np.where(inv12, _invoice_count(volume + 0.9 * rng.standard_normal(n)), 0)
    n12_24 = np.where(inv12_24, _invoice_count(volume + 0.9 * rng.standard_normal(n)), 0)
    return InvoiceHistory(inv24, inv12, inv6, inv12_24, n12, n12_24)


def archived_invoices(
    rng: np.random.Generator, history: InvoiceHistory, risk: np.ndarray
) -> dict[str, np.ndarray]:
    """Archived invoices counted by outcome, plus the statuses those outcomes leave."""
    p_reminder = sigmoid(-3.0 + 1.0 * risk)
    p_collection = sigmoid(-5.6 + 1.5 * risk)
    rem12 = rng.binomial(history.n12, p_reminder)
    dc12 = rng.binomial(history.n12 - rem12, p_collection)
    rem12_24 = rng.binomial(history.n12_24, p_reminder)
    dc12_24 = rng.binomial(history.n12_24 - rem12_24, p_collection)
    columns = {
        "num_arch_ok_0_12m": history.n12 - rem12 - dc12,
        "num_arch_rem_0_12m": rem12,
        "num_arch_dc_0_12m": dc12,
        "num_arch_ok_12_24m": history.n12_24 - rem12_24 - dc12_24,
        "num_arch_dc_12_24m": dc12_24,
    }
    worst12 = _window_status(history.inv12, rem12, dc12)
    worst12_24 = _window_status(history.inv12_24, rem12_24, dc12_24)
    columns.update(_archived_statuses(rng, history, worst12, worst12_24))
    return columns


def _archived_statuses(
    rng: np.random.Generator, history: InvoiceHistory, worst12: np.ndarray, worst12_24: np.ndarray
) -> dict[str, np.ndarray]:
    """The worst status per window and the last three statuses; 5 marks a written-off invoice."""
    n = len(worst12)
    max12 = worst12
    max24 = np.maximum(max12, worst12_24)
    max6 = np.where(~history.inv6, 0, np.where((max12 >= 2) & (rng.random(n) < 0.35), 1, max12))
    written_off = history.inv24 & (rng.random(n) < STATUS_FIVE_SHARE)
    max24 = np.where(written_off, 5, max24)
    max12 = np.where(written_off & history.inv12 & (rng.random(n) < 0.5), 5, max12)
    total = history.n12 + history.n12_24
    columns: dict[str, np.ndarray] = {}
    for rank, name in enumerate(LAST_ARCHIVED_STATUSES):
        troubled = (max24 >= 2) & (max24 != 5) & (rng.random(n) < 0.28)
        worst = np.where((max24 == 3) & (rng.random(n) < 0.6), 3, 2)
        columns[name] = np.where(total > rank, np.where(troubled, worst, 1), 0)
    columns["status_max_archived_0_6_months"] = max6
    columns["status_max_archived_0_12_months"] = max12
    columns["status_max_archived_0_24_months"] = max24
    return columns


def amounts_paid(rng: np.random.Generator, history: InvoiceHistory) -> dict[str, np.ndarray]:
    """Amounts paid on invoices: the sum over the year, the largest single one."""
    n = len(history.n12)
    invoice_size = lognormal(rng, 5500.0, 0.8, n)
    invoices12 = np.maximum(history.n12, 1).astype(float)
    sum12 = np.where(history.inv12, np.round(invoices12 * invoice_size * lognormal(rng, 1.05, 0.15, n)), 0.0)
    largest = invoice_size * np.power(invoices12, INVOICE_LARGEST_GROWTH) * lognormal(rng, 1.0, 0.2, n)
    max_paid12 = np.where(history.inv12, np.round(np.clip(largest, sum12 / invoices12, sum12)), 0.0)
    older_largest = np.round(
        invoice_size
        * np.power(np.maximum(history.n12_24, 1).astype(float), INVOICE_LARGEST_GROWTH)
        * lognormal(rng, 1.0, 0.3, n)
    )
    return {
        "sum_paid_inv_0_12m": sum12.astype(np.int64),
        "max_paid_inv_0_12m": max_paid12,
        "max_paid_inv_0_24m": np.where(history.inv12_24, np.maximum(max_paid12, older_largest), max_paid12),
        "has_paid": history.inv12 | (rng.random(n) < HAS_PAID_WITHOUT_PAYMENTS),
    }


def payment_spans(
    rng: np.random.Generator, history: InvoiceHistory, risk: np.ndarray
) -> dict[str, np.ndarray]:
    """Average days to pay, known only for customers who paid invoices, and the written-off counts."""
    n = len(history.n12)
    span12_known = history.inv12 & (rng.random(n) >= SPAN_12M_UNKNOWN)
    span12 = _average_of_whole_days(lognormal(rng, 14.5, 0.5, n) * np.exp(0.3 * risk), history.n12)
    span12 = np.clip(span12, 0.0, MAX_SPAN_DAYS)
    span3_known = span12_known & history.inv6 & (rng.random(n) < SPAN_3M_KNOWN_GIVEN_6M)
    invoices3 = 1 + rng.binomial(np.maximum(history.n12 - 1, 0), 0.2)
    span3 = _average_of_whole_days(span12 * lognormal(rng, 0.9, 0.4, n), invoices3)
    span3 = np.clip(span3, 0.0, MAX_SPAN_DAYS)
    # Written-off counts are mostly missing exactly where the payment span is.
    written_off_unknown = rng.random(n) < np.where(
        span12_known, WRITTEN_OFF_UNKNOWN_WITH_SPAN, WRITTEN_OFF_UNKNOWN_WITHOUT_SPAN
    )
    return {
        "avg_payment_span_0_12m": np.where(span12_known, span12, np.nan),
        "avg_payment_span_0_3m": np.where(span3_known, span3, np.nan),
        "num_arch_written_off_0_12m": np.where(written_off_unknown, np.nan, (rng.random(n) < 0.0003) * 1.0),
        "num_arch_written_off_12_24m": np.where(
            written_off_unknown, np.nan, rng.choice(3, size=n, p=(0.9997, 0.0002, 0.0001)).astype(float)
        ),
    }


def active_invoices(
    rng: np.random.Generator, history: InvoiceHistory, risk: np.ndarray
) -> dict[str, np.ndarray]:
    """Invoices still open: every active invoice is unpaid, and some customers owe more bills."""
    n = len(history.n12)
    n12 = history.n12
    has_active = rng.random(n) < sigmoid(-2.1 + 0.9 * np.log1p(n12))
    active = np.where(has_active, 1 + np.floor(lognormal(rng, 0.6, 1.1, n)), 0).astype(np.int64)
    active = np.where(n12 > 0, np.minimum(active, MAX_ACTIVE_PER_PAID * n12), active)
    has_extra = rng.random(n) < sigmoid(-1.05 + 0.7 * risk)
    extra = np.where(has_extra, np.ceil(lognormal(rng, 1.6, 1.3, n)), 0).astype(np.int64)
    active_status = ordinal(
        0.6 * risk + 0.8 * rng.standard_normal(n), ACTIVE_INVOICE_STATUS_SHARES, (1, 2, 3)
    ).astype(float)
    return {
        "num_active_inv": active,
        "num_unpaid_bills": active + extra,
        "worst_status_active_inv": np.where(active > 0, active_status, np.nan),
        "num_active_div_by_paid_inv_0_12m": np.where(n12 > 0, active / np.maximum(n12, 1), np.nan),
    }


def recovery_debt(rng: np.random.Generator, risk: np.ndarray) -> np.ndarray:
    """Debt handed to recovery: rare, and far likelier for risky customers."""
    n = len(risk)
    in_recovery = rng.random(n) < sigmoid(-8.0 + 1.3 * risk)
    return np.where(in_recovery, np.clip(np.round(lognormal(rng, 1500.0, 0.8, n)), 100, 15000), 0).astype(
        np.int64
    )
