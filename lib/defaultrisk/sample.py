"""Synthetic customer tables that look like the real ones and carry a known true probability of default.

The jobs need realistic input for development, tests and demos without real customer data, and a known
true pd lets an evaluation say how close a trained model gets to the best possible one. The marginal
distributions, vocabularies and missing-value patterns follow the facts measured on real customer rows
(see the data README); the default mechanism is a logistic model of a handful of features, with one
interaction and several non-linear effects, whose intercept is solved so the mean pd is the real rate.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date
from os import PathLike
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

from defaultrisk.schema import (
    CODE,
    COUNT,
    DEFAULT,
    FEATURE_NAMES,
    FEATURES,
    INPUT_COLUMNS,
    MERCHANT_GROUPS,
    NAME_IN_EMAIL,
    UUID,
)

DEFAULT_RATE = 0.0143
TRUE_PD = "true_pd"
CSV_SEPARATOR = ";"
CSV_MISSING = "NA"
UNSEEN_CATEGORY = "Space travel"
UNSEEN_CATEGORY_SHARE = 0.001
UNSEEN_CATEGORY_MIN_ROWS = 200

MALFORMED_UUID = "malformed_uuid"
EMPTY_UUID = "empty_uuid"
DUPLICATE_UUID = "duplicate_uuid"
NEGATIVE_COUNT = "negative_count"
AGE_OUT_OF_RANGE = "age_out_of_range"
NOT_A_NUMBER = "not_a_number"
NOT_WHOLE = "not_whole"
BAD_KINDS = (
    MALFORMED_UUID,
    EMPTY_UUID,
    DUPLICATE_UUID,
    NEGATIVE_COUNT,
    AGE_OUT_OF_RANGE,
    NOT_A_NUMBER,
    NOT_WHOLE,
)
BAD_AGES = (150, 12)
BAD_NUMBER_COLUMN = "max_paid_inv_0_12m"
NEGATIVE_COUNT_COLUMN = "num_unpaid_bills"
NOT_WHOLE_COLUMN = "num_active_inv"

WHOLE_KINDS = (COUNT, CODE)
WHOLE_COLUMNS = tuple(f.name for f in FEATURES if f.kind in WHOLE_KINDS)

# Rows per merchant category among 10,000 real customers; the skew is part of what a model must cope with.
MERCHANT_CATEGORY_COUNTS = {
    "Automotive Parts & Accessories": 79,
    "Wheels & Tires": 10,
    "Diversified children products": 303,
    "Children Clothes & Nurturing products": 143,
    "Children toys": 48,
    "Youthful Shoes & Clothing": 1231,
    "General Shoes & Clothing": 435,
    "Adult Shoes & Clothing": 20,
    "Underwear": 9,
    "Diversified electronics": 217,
    "Electronic equipment & Related accessories": 91,
    "Household electronics (whitegoods/appliances)": 15,
    "Car electronics": 5,
    "Office machines & Related accessories (excl. computers)": 2,
    "Diversified entertainment": 3833,
    "Books & Magazines": 916,
    "Video Games & Related accessories": 75,
    "Music & Movies": 15,
    "Diversified erotic material": 63,
    "Erotic Clothing & Accessories": 9,
    "Sex toys": 5,
    "Food & Beverage": 26,
    "Tobacco": 8,
    "Dietary supplements": 324,
    "Prescription optics": 96,
    "Body & Hair Care": 91,
    "Diversified Health & Beauty products": 85,
    "Cosmetics": 60,
    "Personal care & Body improvement": 40,
    "Fragrances": 36,
    "Pharmaceutical products": 35,
    "Pet supplies": 130,
    "Decoration & Art": 66,
    "Diversified Home & Garden products": 66,
    "Tools & Home improvement": 47,
    "Furniture": 30,
    "Kitchenware": 15,
    "Safety products": 7,
    "Plants & Flowers": 5,
    "Cleaning & Sanitary": 2,
    "Dating services": 60,
    "Digital services": 29,
    "Travel services": 14,
    "Event tickets": 2,
    "Jewelry & Watches": 96,
    "Non": 7,
    "Diversified Jewelry & Accessories": 6,
    "Bags & Wallets": 3,
    "Concept stores & Miscellaneous": 437,
    "Sports gear & Outdoor": 356,
    "Prints & Photos": 173,
    "Hobby articles": 93,
    "Collectibles": 15,
    "Costumes & Party supplies": 10,
    "Musical Instruments & Equipment": 6,
}
GROUP_OF_CATEGORY = {cat: group for group, cats in MERCHANT_GROUPS.items() for cat in cats}

NAME_IN_EMAIL_SHARES = {
    "F+L": 0.4031,
    "no_match": 0.1732,
    "L1+F": 0.1594,
    "F": 0.0950,
    "Nick": 0.0814,
    "F1+L": 0.0734,
    "L": 0.0144,
    "Initials": 0.0001,
}

# Age drawn uniformly inside bands with the real band shares: median 34, few customers over 70.
AGE_BAND_EDGES = (18, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 80, 95)
AGE_BAND_SHARES = (
    0.0673,
    0.1641,
    0.1449,
    0.1363,
    0.1233,
    0.1040,
    0.0982,
    0.0638,
    0.0443,
    0.0269,
    0.0155,
    0.0096,
    0.0018,
)
# Share of purchases per hour of the day: quiet at night, busiest in the evening.
HOUR_SHARES = (
    0.0116,
    0.0052,
    0.0036,
    0.0025,
    0.0037,
    0.0047,
    0.0110,
    0.0267,
    0.0431,
    0.0529,
    0.0533,
    0.0600,
    0.0628,
    0.0559,
    0.0617,
    0.0614,
    0.0601,
    0.0625,
    0.0675,
    0.0782,
    0.0744,
    0.0698,
    0.0456,
    0.0218,
)
SECONDS_PER_HOUR = 3600

# Shares of codes 1..4 per account window; the later windows have seen more trouble.
ACCOUNT_WORST_SHARES = {
    "account_worst_status_0_3m": (0.8443, 0.1438, 0.0099, 0.0020),
    "account_worst_status_3_6m": (0.8371, 0.1459, 0.0130, 0.0040),
    "account_worst_status_6_12m": (0.7805, 0.1983, 0.0169, 0.0043),
    "account_worst_status_12_24m": (0.7240, 0.2404, 0.0267, 0.0088),
}
ACTIVE_INVOICE_STATUS_SHARES = (0.8899, 0.1051, 0.0050)

ACCOUNT_SHARE_WITH_INVOICES = 0.524
ACCOUNT_SHARE_WITHOUT_INVOICES = 0.155
# Account holders whose account is too young for the 3-6, 6-12 and 12-24 month windows.
ACCOUNT_TOO_YOUNG_3_6 = 0.071
ACCOUNT_TOO_YOUNG_6_12 = 0.131
ACCOUNT_TOO_YOUNG_12_24 = 0.278
ACCOUNT_DAYS_UNKNOWN = 0.212
ACCOUNT_DEBT_RATIO_UNKNOWN = 0.114
MAX_DAYS = 365

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

# The default mechanism: each term's weight on the log-odds scale, all sharpened by PD_SCALE so that the
# true pd ranks customers with a ROC AUC near 0.9.
PD_SCALE = 1.5
PD_WEIGHT_UNPAID = 0.30
PD_WEIGHT_UNPAID_YOUNG = 0.35
YOUNG_AGE = 25
PD_WEIGHT_YOUTH = 0.9
YOUTH_DECAY_YEARS = 6.0
PD_WEIGHT_AGE = -0.012
PD_REFERENCE_AGE = 35
PD_ARCHIVED_MAX = {0: 0.3, 1: 0.0, 2: 0.5, 3: 1.3, 5: 1.3}
PD_ARCHIVED_LAST = {0: 0.0, 1: 0.0, 2: 0.6, 3: 1.2, 5: 1.2}
PD_ACCOUNT_WORST = {1: 0.0, 2: 0.7, 3: 1.5, 4: 2.1}
PD_WEIGHT_SPAN = 1.0
PD_SPAN_KNEE_DAYS = 15.0
PD_SPAN_UNKNOWN = 0.35
PD_WEIGHT_NOT_PAID = 0.8
PD_WEIGHT_RECOVERY_DEBT = 1.5
PD_WEIGHT_REMINDER_DAYS = 0.22
PD_WEIGHT_GOOD_HISTORY = -0.18
PD_MERCHANT_GROUP = {
    "Automotive Products": 0.1,
    "Children Products": -0.3,
    "Clothing & Shoes": 0.2,
    "Electronics": 0.3,
    "Entertainment": -0.2,
    "Erotic Materials": 0.6,
    "Food & Beverage": 0.2,
    "Health & Beauty": 0.1,
    "Home & Garden": 0.0,
    "Intangible products": 0.7,
    "Jewelry & Accessories": 0.4,
    "Leisure, Sport & Hobby": 0.0,
}
INTERCEPT_BRACKET = (-40.0, 20.0)
INTERCEPT_STEPS = 80


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _ordinal(latent: np.ndarray, shares: Sequence[float], codes: Sequence[int]) -> np.ndarray:
    """Cut a standard normal latent into ordered codes with the given shares, keeping its ordering."""
    normal = NormalDist()
    cumulative = np.cumsum(shares)[:-1] / np.sum(shares)
    cuts = np.array([normal.inv_cdf(float(c)) for c in cumulative])
    return np.asarray(codes)[np.searchsorted(cuts, latent)]


def _lognormal(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    ids = [str(uuid.UUID(bytes=raw[16 * i : 16 * (i + 1)], version=4)) for i in range(n)]
    if len(set(ids)) != n:
        raise RuntimeError("uuid collision")
    return ids


def _pick(rng: np.random.Generator, n: int, weights: dict[str, float]) -> np.ndarray:
    values = np.asarray(list(weights), dtype=object)
    p = np.asarray(list(weights.values()), dtype=float)
    return values[rng.choice(len(values), size=n, p=p / p.sum())]


def _age(rng: np.random.Generator, n: int) -> np.ndarray:
    band = rng.choice(len(AGE_BAND_SHARES), size=n, p=np.asarray(AGE_BAND_SHARES) / sum(AGE_BAND_SHARES))
    low = np.asarray(AGE_BAND_EDGES[:-1])[band]
    high = np.asarray(AGE_BAND_EDGES[1:])[band]
    return rng.integers(low, high)


def _time_hours(rng: np.random.Generator, n: int) -> np.ndarray:
    hour = rng.choice(len(HOUR_SHARES), size=n, p=np.asarray(HOUR_SHARES) / sum(HOUR_SHARES))
    second = rng.integers(1, SECONDS_PER_HOUR, size=n)
    return (hour * SECONDS_PER_HOUR + second) / SECONDS_PER_HOUR


def _average_of_whole_days(raw: np.ndarray, invoices: np.ndarray) -> np.ndarray:
    """An average of whole days over the customer's invoices: whole when there is one invoice."""
    k = np.maximum(invoices, 1)
    return np.round(raw * k) / k


def _invoice_count(log_volume: np.ndarray) -> np.ndarray:
    return np.minimum(1 + np.floor(np.exp(log_volume)), MAX_INVOICES_PER_YEAR).astype(np.int64)


def _draw_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw every feature from a few latent traits, so related columns move together as in real data."""
    risk = rng.standard_normal(n)
    activity = rng.standard_normal(n)
    age = _age(rng, n)
    f: dict[str, np.ndarray] = {"age": age}

    # Archived invoices: none at all, only older ones, or recent ones too.
    history_latent = (activity + 0.6 * rng.standard_normal(n)) / np.sqrt(1.36)
    inv24 = history_latent > NormalDist().inv_cdf(1.0 - INVOICES_24M_SHARE)
    inv12 = inv24 & (rng.random(n) < INVOICES_12M_GIVEN_24M)
    inv6 = inv12 & (rng.random(n) < INVOICES_6M_GIVEN_12M)
    inv12_24 = inv24 & (~inv12 | (rng.random(n) < INVOICES_12_24M_GIVEN_12M))

    volume = 0.9 + 1.0 * activity
    n12 = np.where(inv12, _invoice_count(volume + 0.9 * rng.standard_normal(n)), 0)
    n12_24 = np.where(inv12_24, _invoice_count(volume + 0.9 * rng.standard_normal(n)), 0)
    p_reminder = _sigmoid(-3.0 + 1.0 * risk)
    p_collection = _sigmoid(-5.6 + 1.5 * risk)
    rem12 = rng.binomial(n12, p_reminder)
    dc12 = rng.binomial(n12 - rem12, p_collection)
    rem12_24 = rng.binomial(n12_24, p_reminder)
    dc12_24 = rng.binomial(n12_24 - rem12_24, p_collection)
    ok12 = n12 - rem12 - dc12
    f["num_arch_ok_0_12m"] = ok12
    f["num_arch_rem_0_12m"] = rem12
    f["num_arch_dc_0_12m"] = dc12
    f["num_arch_ok_12_24m"] = n12_24 - rem12_24 - dc12_24
    f["num_arch_dc_12_24m"] = dc12_24

    def window_status(present: np.ndarray, rem: np.ndarray, dc: np.ndarray) -> np.ndarray:
        return np.where(~present, 0, np.where(dc > 0, 3, np.where(rem > 0, 2, 1)))

    max12 = window_status(inv12, rem12, dc12)
    max24 = np.maximum(max12, window_status(inv12_24, rem12_24, dc12_24))
    max6 = np.where(~inv6, 0, np.where((max12 >= 2) & (rng.random(n) < 0.35), 1, max12))
    written_off = inv24 & (rng.random(n) < STATUS_FIVE_SHARE)
    max24 = np.where(written_off, 5, max24)
    max12 = np.where(written_off & inv12 & (rng.random(n) < 0.5), 5, max12)
    total = n12 + n12_24
    recent: dict[str, np.ndarray] = {}
    for rank, name in enumerate(
        ("status_last_archived_0_24m", "status_2nd_last_archived_0_24m", "status_3rd_last_archived_0_24m")
    ):
        troubled = (max24 >= 2) & (max24 != 5) & (rng.random(n) < 0.28)
        worst = np.where((max24 == 3) & (rng.random(n) < 0.6), 3, 2)
        recent[name] = np.where(total > rank, np.where(troubled, worst, 1), 0)
    f.update(recent)
    f["status_max_archived_0_6_months"] = max6
    f["status_max_archived_0_12_months"] = max12
    f["status_max_archived_0_24_months"] = max24

    # Amounts paid on invoices: the sum over the year, the largest single one.
    invoice_size = _lognormal(rng, 5500.0, 0.8, n)
    invoices12 = np.maximum(n12, 1).astype(float)
    sum12 = np.where(inv12, np.round(invoices12 * invoice_size * _lognormal(rng, 1.05, 0.15, n)), 0.0)
    largest = invoice_size * np.power(invoices12, INVOICE_LARGEST_GROWTH) * _lognormal(rng, 1.0, 0.2, n)
    max_paid12 = np.where(inv12, np.round(np.clip(largest, sum12 / invoices12, sum12)), 0.0)
    older_largest = np.round(
        invoice_size
        * np.power(np.maximum(n12_24, 1).astype(float), INVOICE_LARGEST_GROWTH)
        * _lognormal(rng, 1.0, 0.3, n)
    )
    f["sum_paid_inv_0_12m"] = sum12.astype(np.int64)
    f["max_paid_inv_0_12m"] = max_paid12
    f["max_paid_inv_0_24m"] = np.where(inv12_24, np.maximum(max_paid12, older_largest), max_paid12)
    f["has_paid"] = inv12 | (rng.random(n) < HAS_PAID_WITHOUT_PAYMENTS)

    # Payment spans: average days to pay, known only for customers who paid invoices.
    span12_known = inv12 & (rng.random(n) >= SPAN_12M_UNKNOWN)
    span12 = _average_of_whole_days(_lognormal(rng, 14.5, 0.5, n) * np.exp(0.3 * risk), n12)
    span12 = np.clip(span12, 0.0, MAX_SPAN_DAYS)
    span3_known = span12_known & inv6 & (rng.random(n) < SPAN_3M_KNOWN_GIVEN_6M)
    invoices3 = 1 + rng.binomial(np.maximum(n12 - 1, 0), 0.2)
    span3 = _average_of_whole_days(span12 * _lognormal(rng, 0.9, 0.4, n), invoices3)
    span3 = np.clip(span3, 0.0, MAX_SPAN_DAYS)
    f["avg_payment_span_0_12m"] = np.where(span12_known, span12, np.nan)
    f["avg_payment_span_0_3m"] = np.where(span3_known, span3, np.nan)

    written_off_unknown = rng.random(n) < np.where(
        span12_known, WRITTEN_OFF_UNKNOWN_WITH_SPAN, WRITTEN_OFF_UNKNOWN_WITHOUT_SPAN
    )
    f["num_arch_written_off_0_12m"] = np.where(written_off_unknown, np.nan, (rng.random(n) < 0.0003) * 1.0)
    f["num_arch_written_off_12_24m"] = np.where(
        written_off_unknown, np.nan, rng.choice(3, size=n, p=(0.9997, 0.0002, 0.0001)).astype(float)
    )

    # Invoices still open: every active invoice is unpaid, and some customers owe more bills.
    has_active = rng.random(n) < _sigmoid(-2.1 + 0.9 * np.log1p(n12))
    active = np.where(has_active, 1 + np.floor(_lognormal(rng, 0.6, 1.1, n)), 0).astype(np.int64)
    active = np.where(n12 > 0, np.minimum(active, MAX_ACTIVE_PER_PAID * n12), active)
    has_extra = rng.random(n) < _sigmoid(-1.05 + 0.7 * risk)
    extra = np.where(has_extra, np.ceil(_lognormal(rng, 1.6, 1.3, n)), 0).astype(np.int64)
    f["num_active_inv"] = active
    f["num_unpaid_bills"] = active + extra
    active_status = _ordinal(
        0.6 * risk + 0.8 * rng.standard_normal(n), ACTIVE_INVOICE_STATUS_SHARES, (1, 2, 3)
    ).astype(float)
    f["worst_status_active_inv"] = np.where(active > 0, active_status, np.nan)
    f["num_active_div_by_paid_inv_0_12m"] = np.where(n12 > 0, active / np.maximum(n12, 1), np.nan)

    # The account product: held by under half the customers, with its own history windows.
    account = rng.random(n) < np.where(inv24, ACCOUNT_SHARE_WITH_INVOICES, ACCOUNT_SHARE_WITHOUT_INVOICES)
    tenure = rng.random(n)
    account_risk = 0.7 * risk + 0.71 * rng.standard_normal(n)
    windows_open = {
        "account_worst_status_0_3m": account,
        "account_worst_status_3_6m": account & (tenure >= ACCOUNT_TOO_YOUNG_3_6),
        "account_worst_status_6_12m": account & (tenure >= ACCOUNT_TOO_YOUNG_6_12),
        "account_worst_status_12_24m": account & (tenure >= ACCOUNT_TOO_YOUNG_12_24),
    }
    for name, shares in ACCOUNT_WORST_SHARES.items():
        code = _ordinal(0.75 * account_risk + 0.66 * rng.standard_normal(n), shares, (1, 2, 3, 4))
        f[name] = np.where(windows_open[name], code, np.nan)
    worst03 = f["account_worst_status_0_3m"]
    p_status_two = np.where(worst03 == 2, 0.31, np.where(worst03 >= 3, 0.22, 0.0))
    f["account_status"] = np.where(account, np.where(rng.random(n) < p_status_two, 2.0, 1.0), np.nan)

    old_account = windows_open["account_worst_status_12_24m"]
    days_unknown = ~account & (rng.random(n) < ACCOUNT_DAYS_UNKNOWN)

    def account_days(base_rate: float, slope: float, median: float, sigma: float, cap: int) -> np.ndarray:
        late = old_account & (rng.random(n) < _sigmoid(_logit(base_rate) + slope * account_risk))
        days = np.clip(np.round(_lognormal(rng, median, sigma, n)), 1, cap)
        return np.where(days_unknown, np.nan, np.where(late, days, 0.0))

    f["account_days_in_rem_12_24m"] = account_days(0.20, 1.2, 28.0, 1.1, MAX_DAYS)
    f["account_days_in_dc_12_24m"] = account_days(0.004, 1.2, 44.0, 1.2, MAX_DAYS)
    f["account_days_in_term_12_24m"] = account_days(0.025, 0.8, 20.0, 0.7, 61)
    f["account_amount_added_12_24m"] = np.where(
        old_account & (rng.random(n) < 0.86), np.round(np.minimum(_lognormal(rng, 25000.0, 1.2, n), 1e6)), 0
    ).astype(np.int64)
    f["sum_capital_paid_account_0_12m"] = np.where(
        account & (rng.random(n) < 0.744), np.round(np.minimum(_lognormal(rng, 20000.0, 1.1, n), 6e5)), 0
    ).astype(np.int64)
    f["sum_capital_paid_account_12_24m"] = np.where(
        old_account & (rng.random(n) < 0.75), np.round(np.minimum(_lognormal(rng, 17000.0, 1.1, n), 4e5)), 0
    ).astype(np.int64)
    debt_known = account & (rng.random(n) >= ACCOUNT_DEBT_RATIO_UNKNOWN)
    debt_ratio = np.where(rng.random(n) < 0.325, 0.0, _lognormal(rng, 0.35, 1.5, n) * np.exp(0.3 * risk))
    f["account_incoming_debt_vs_paid_0_24m"] = np.where(debt_known, debt_ratio, np.nan)

    in_recovery = rng.random(n) < _sigmoid(-8.0 + 1.3 * risk)
    f["recovery_debt"] = np.where(
        in_recovery, np.clip(np.round(_lognormal(rng, 1500.0, 0.8, n)), 100, 15000), 0
    ).astype(np.int64)

    category = _pick(rng, n, {c: MERCHANT_CATEGORY_COUNTS[c] for c in GROUP_OF_CATEGORY})
    f["merchant_category"] = category
    f["merchant_group"] = np.asarray([GROUP_OF_CATEGORY[c] for c in category], dtype=object)
    f["name_in_email"] = _pick(rng, n, {v: NAME_IN_EMAIL_SHARES[v] for v in NAME_IN_EMAIL})
    f["time_hours"] = _time_hours(rng, n)
    return f


def _risk_score(df: pd.DataFrame) -> np.ndarray:
    """The log-odds of default without the intercept: what a perfect model would have to learn."""
    unpaid = np.log1p(df["num_unpaid_bills"].to_numpy(dtype=float))
    age = df["age"].to_numpy(dtype=float)
    young = age < YOUNG_AGE
    span = df["avg_payment_span_0_12m"].to_numpy(dtype=float)
    span_term = np.where(
        np.isnan(span),
        PD_SPAN_UNKNOWN,
        PD_WEIGHT_SPAN * np.maximum(np.log(np.maximum(span, 1.0) / PD_SPAN_KNEE_DAYS), 0.0),
    )
    worst03 = df["account_worst_status_0_3m"].map(PD_ACCOUNT_WORST).fillna(0.0).to_numpy(dtype=float)
    reminder_days = np.nan_to_num(df["account_days_in_rem_12_24m"].to_numpy(dtype=float))
    return PD_SCALE * (
        PD_WEIGHT_UNPAID * unpaid
        + PD_WEIGHT_UNPAID_YOUNG * unpaid * young
        + PD_WEIGHT_YOUTH * np.exp(-(age - AGE_BAND_EDGES[0]) / YOUTH_DECAY_YEARS)
        + PD_WEIGHT_AGE * (age - PD_REFERENCE_AGE)
        + df["status_max_archived_0_24_months"].map(PD_ARCHIVED_MAX).fillna(0.0).to_numpy(dtype=float)
        + df["status_last_archived_0_24m"].map(PD_ARCHIVED_LAST).fillna(0.0).to_numpy(dtype=float)
        + worst03
        + span_term
        + PD_WEIGHT_NOT_PAID * ~df["has_paid"].to_numpy(dtype=bool)
        + PD_WEIGHT_RECOVERY_DEBT * (df["recovery_debt"].to_numpy(dtype=float) > 0)
        + PD_WEIGHT_REMINDER_DAYS * np.log1p(reminder_days)
        + PD_WEIGHT_GOOD_HISTORY * np.log1p(df["num_arch_ok_0_12m"].to_numpy(dtype=float))
        + df["merchant_group"].map(PD_MERCHANT_GROUP).fillna(0.0).to_numpy(dtype=float)
    )


def _solve_intercept(score: np.ndarray, target: float = DEFAULT_RATE) -> float:
    """The intercept that makes the population's mean pd the target rate (the mean rises with it)."""
    low, high = INTERCEPT_BRACKET
    for _ in range(INTERCEPT_STEPS):
        mid = (low + high) / 2.0
        if _sigmoid(mid + score).mean() < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def true_default_probability(df: pd.DataFrame) -> np.ndarray:
    """Each customer's true probability of default, with the mean set to the real default rate."""
    score = _risk_score(df)
    if len(score) == 0:
        return score
    return _sigmoid(_solve_intercept(score) + score)


def generate_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` customers (`uuid` and the 41 features in schema order) and each one's true pd."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    ids = _uuids(rng, n)
    features = _draw_features(rng, n)
    columns: dict[str, object] = {UUID: pd.Series(ids, dtype=object)}
    for feature in FEATURES:
        values = features[feature.name]
        if feature.kind in WHOLE_KINDS and not np.isnan(np.asarray(values, dtype=float)).any():
            values = np.asarray(values).astype(np.int64)
        columns[feature.name] = values
    df = pd.DataFrame(columns, columns=[UUID, *FEATURE_NAMES])
    return df, true_default_probability(df)


def make_history(n: int, seed: int, unlabeled_fraction: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """A labelled table like the original file: customers plus `default` drawn from their true pd.

    A random `unlabeled_fraction` of rows get a missing `default`, like the unlabelled part of the file.
    """
    if not 0.0 <= unlabeled_fraction <= 1.0:
        raise ValueError(f"unlabeled_fraction must be in [0, 1], got {unlabeled_fraction}")
    df, pd_true = generate_customers(n, seed)
    rng = np.random.default_rng([seed, 1])
    labels = pd.array((rng.random(n) < pd_true).astype(np.int64), dtype="Int64")
    unlabeled = rng.random(n) < unlabeled_fraction
    labels[unlabeled] = pd.NA
    df[DEFAULT] = labels
    return df[list(INPUT_COLUMNS)], pd_true


def _as_object(df: pd.DataFrame, column: str) -> None:
    if df[column].dtype != object:
        df[column] = pd.Series(df[column].to_numpy().tolist(), index=df.index, dtype=object)


def make_snapshot(n: int, seed: int, bad_rows: int = 0) -> tuple[pd.DataFrame, dict]:
    """A nightly snapshot: `n` customers without `default`, plus `bad_rows` invalid rows spread through it.

    Bad rows cycle through `BAD_KINDS`. A duplicated uuid copies another customer's uuid, so both rows
    of the pair are invalid. A few valid customers carry a merchant category never seen before, which
    must be scored, not rejected. The returned dict holds `expected_rejected_rows`, `bad_kinds`,
    `rejected_rows` (row positions) and `true_pd` (per row, NaN for rejected rows).
    """
    if bad_rows < 0:
        raise ValueError(f"bad_rows must be >= 0, got {bad_rows}")
    total = n + bad_rows
    df, pd_true = generate_customers(total, seed)
    rng = np.random.default_rng([seed, 2])
    positions = rng.permutation(total)
    bad_positions = np.sort(positions[:bad_rows])
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad_rows)]
    duplicates = kinds.count(DUPLICATE_UUID)
    if duplicates > n:
        raise ValueError(f"{duplicates} duplicated uuids need at least as many customers, got n={n}")
    clean = positions[bad_rows:]
    duplicate_targets = clean[:duplicates]
    unseen_count = max(int(n >= UNSEEN_CATEGORY_MIN_ROWS), round(UNSEEN_CATEGORY_SHARE * n))
    unseen_rows = clean[duplicates : duplicates + unseen_count]

    category_col = df.columns.get_loc("merchant_category")
    df.iloc[unseen_rows, category_col] = UNSEEN_CATEGORY
    if NOT_A_NUMBER in kinds:
        _as_object(df, BAD_NUMBER_COLUMN)
    if NOT_WHOLE in kinds:
        _as_object(df, NOT_WHOLE_COLUMN)
    targets = iter(duplicate_targets)
    for i, (row, kind) in enumerate(zip(bad_positions, kinds, strict=True)):
        if kind == MALFORMED_UUID:
            df.iat[row, df.columns.get_loc(UUID)] = "not-a-uuid"
        elif kind == EMPTY_UUID:
            df.iat[row, df.columns.get_loc(UUID)] = ""
        elif kind == DUPLICATE_UUID:
            df.iat[row, df.columns.get_loc(UUID)] = df.iat[next(targets), df.columns.get_loc(UUID)]
        elif kind == NEGATIVE_COUNT:
            df.iat[row, df.columns.get_loc(NEGATIVE_COUNT_COLUMN)] = -1
        elif kind == AGE_OUT_OF_RANGE:
            df.iat[row, df.columns.get_loc("age")] = BAD_AGES[(i // len(BAD_KINDS)) % len(BAD_AGES)]
        elif kind == NOT_A_NUMBER:
            df.iat[row, df.columns.get_loc(BAD_NUMBER_COLUMN)] = "abc"
        elif kind == NOT_WHOLE:
            df.iat[row, df.columns.get_loc(NOT_WHOLE_COLUMN)] = 2.5

    rejected = np.sort(np.concatenate([bad_positions, duplicate_targets])).astype(np.int64)
    pd_rows = pd_true.copy()
    pd_rows[rejected] = np.nan
    info = {
        "expected_rejected_rows": len(rejected),
        "bad_kinds": kinds,
        "rejected_rows": rejected.tolist(),
        TRUE_PD: pd_rows,
    }
    return df, info


def _whole_columns_as_integers(df: pd.DataFrame) -> pd.DataFrame:
    """Whole-number columns without missing values written as `2`; with missing values pandas writes `2.0`."""
    out = df.copy()
    for name in WHOLE_COLUMNS:
        if name not in out or out[name].dtype.kind != "f":
            continue
        values = out[name].to_numpy()
        if not np.isnan(values).any() and np.all(values == np.floor(values)):
            out[name] = values.astype(np.int64)
    return out


def write_original_csv(df: pd.DataFrame, path: str | PathLike) -> None:
    """Write a table in the original file format: `;`-separated, header, `NA` for missing, `True`/`False`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _whole_columns_as_integers(df).to_csv(
        path, sep=CSV_SEPARATOR, na_rep=CSV_MISSING, index=False, lineterminator="\n", encoding="utf-8"
    )


def write_truth(uuids: Sequence[str], true_pd: Sequence[float], path: str | PathLike) -> None:
    """Write `uuid;true_pd`, kept apart from the data so an evaluation can score a model against it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = list(uuids)
    probabilities = np.asarray(true_pd, dtype=float)
    if len(ids) != len(probabilities):
        raise ValueError(f"{len(ids)} uuids but {len(probabilities)} probabilities")
    lines = [f"{UUID}{CSV_SEPARATOR}{TRUE_PD}"]
    lines.extend(f"{u}{CSV_SEPARATOR}{float(p)!r}" for u, p in zip(ids, probabilities, strict=True))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")


def snapshot_seed(seed: int, snapshot_date: date) -> int:
    """A seed of its own for each snapshot date, so every day brings different customers."""
    digest = hashlib.sha256(f"{seed}:{snapshot_date.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
