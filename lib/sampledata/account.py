"""The account product: held by under half the customers, with its own history windows and balances."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sampledata.population import logit, lognormal, ordinal, sigmoid

# Shares of codes 1..4 per account window; the later windows have seen more trouble.
ACCOUNT_WORST_SHARES = {
    "account_worst_status_0_3m": (0.8443, 0.1438, 0.0099, 0.0020),
    "account_worst_status_3_6m": (0.8371, 0.1459, 0.0130, 0.0040),
    "account_worst_status_6_12m": (0.7805, 0.1983, 0.0169, 0.0043),
    "account_worst_status_12_24m": (0.7240, 0.2404, 0.0267, 0.0088),
}
ACCOUNT_SHARE_WITH_INVOICES = 0.524
ACCOUNT_SHARE_WITHOUT_INVOICES = 0.155
# Account holders whose account is too young for the 3-6, 6-12 and 12-24 month windows.
ACCOUNT_TOO_YOUNG_3_6 = 0.071
ACCOUNT_TOO_YOUNG_6_12 = 0.131
ACCOUNT_TOO_YOUNG_12_24 = 0.278
ACCOUNT_DAYS_UNKNOWN = 0.212
ACCOUNT_DEBT_RATIO_UNKNOWN = 0.114
MAX_DAYS = 365
# Days spent late in the 12-24 month window: the base rate and risk slope of being late at all, then the
# median, spread and cap of the days.
LATE_DAYS = {
    "account_days_in_rem_12_24m": (0.20, 1.2, 28.0, 1.1, MAX_DAYS),
    "account_days_in_dc_12_24m": (0.004, 1.2, 44.0, 1.2, MAX_DAYS),
    "account_days_in_term_12_24m": (0.025, 0.8, 20.0, 0.7, 61),
}


@dataclass(frozen=True)
class Accounts:
    """Who holds an account, which worst-status windows it is old enough for, and its own risk."""

    held: np.ndarray
    windows_open: dict[str, np.ndarray]
    risk: np.ndarray

    @property
    def old(self) -> np.ndarray:
        return self.windows_open["account_worst_status_12_24m"]


def account_columns(
    rng: np.random.Generator, has_invoices: np.ndarray, risk: np.ndarray
) -> dict[str, np.ndarray]:
    """Every account column; customers with archived invoices hold an account more often."""
    accounts = _open_accounts(rng, has_invoices, risk)
    columns = _worst_statuses(rng, accounts)
    columns.update(_late_days(rng, accounts))
    columns.update(_balances(rng, accounts, risk))
    return columns


def _open_accounts(rng: np.random.Generator, has_invoices: np.ndarray, risk: np.ndarray) -> Accounts:
    n = len(risk)
    held = rng.random(n) < np.where(has_invoices, ACCOUNT_SHARE_WITH_INVOICES, ACCOUNT_SHARE_WITHOUT_INVOICES)
    tenure = rng.random(n)
    account_risk = 0.7 * risk + 0.71 * rng.standard_normal(n)
    windows_open = {
        "account_worst_status_0_3m": held,
        "account_worst_status_3_6m": held & (tenure >= ACCOUNT_TOO_YOUNG_3_6),
        "account_worst_status_6_12m": held & (tenure >= ACCOUNT_TOO_YOUNG_6_12),
        "account_worst_status_12_24m": held & (tenure >= ACCOUNT_TOO_YOUNG_12_24),
    }
    return Accounts(held, windows_open, account_risk)


def _worst_statuses(rng: np.random.Generator, accounts: Accounts) -> dict[str, np.ndarray]:
    """The worst status per window, and the current status, which is 2 more often after trouble."""
    n = len(accounts.held)
    columns: dict[str, np.ndarray] = {}
    for name, shares in ACCOUNT_WORST_SHARES.items():
        code = ordinal(0.75 * accounts.risk + 0.66 * rng.standard_normal(n), shares, (1, 2, 3, 4))
        columns[name] = np.where(accounts.windows_open[name], code, np.nan)
    worst03 = columns["account_worst_status_0_3m"]
    p_status_two = np.where(worst03 == 2, 0.31, np.where(worst03 >= 3, 0.22, 0.0))
    columns["account_status"] = np.where(
        accounts.held, np.where(rng.random(n) < p_status_two, 2.0, 1.0), np.nan
    )
    return columns


def _late_days(rng: np.random.Generator, accounts: Accounts) -> dict[str, np.ndarray]:
    """Days in reminder, debt collection and termination; unknown for some customers without an account."""
    n = len(accounts.held)
    days_unknown = ~accounts.held & (rng.random(n) < ACCOUNT_DAYS_UNKNOWN)
    columns: dict[str, np.ndarray] = {}
    for name, (base_rate, slope, median, sigma, cap) in LATE_DAYS.items():
        late = accounts.old & (rng.random(n) < sigmoid(logit(base_rate) + slope * accounts.risk))
        days = np.clip(np.round(lognormal(rng, median, sigma, n)), 1, cap)
        columns[name] = np.where(days_unknown, np.nan, np.where(late, days, 0.0))
    return columns


def _balances(rng: np.random.Generator, accounts: Accounts, risk: np.ndarray) -> dict[str, np.ndarray]:
    """Amounts added and capital paid per window, and incoming debt against what was paid."""
    n = len(risk)
    held, old = accounts.held, accounts.old
    added = np.where(
        old & (rng.random(n) < 0.86), np.round(np.minimum(lognormal(rng, 25000.0, 1.2, n), 1e6)), 0
    ).astype(np.int64)
    paid_0_12 = np.where(
        held & (rng.random(n) < 0.744), np.round(np.minimum(lognormal(rng, 20000.0, 1.1, n), 6e5)), 0
    ).astype(np.int64)
    paid_12_24 = np.where(
        old & (rng.random(n) < 0.75), np.round(np.minimum(lognormal(rng, 17000.0, 1.1, n), 4e5)), 0
    ).astype(np.int64)
    debt_known = held & (rng.random(n) >= ACCOUNT_DEBT_RATIO_UNKNOWN)
    debt_ratio = np.where(rng.random(n) < 0.325, 0.0, lognormal(rng, 0.35, 1.5, n) * np.exp(0.3 * risk))
    return {
        "account_amount_added_12_24m": added,
        "sum_capital_paid_account_0_12m": paid_0_12,
        "sum_capital_paid_account_12_24m": paid_12_24,
        "account_incoming_debt_vs_paid_0_24m": np.where(debt_known, debt_ratio, np.nan),
    }
