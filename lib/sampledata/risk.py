"""The true default mechanism: a logistic model of a handful of features with the interactions and
thresholds real credit data has (days in debt collection weigh more on an account already in a bad
status; payment spans that cross a due date and a second reminder; unpaid bills that hurt young
customers more), whose intercept is solved so the mean pd is the real default rate.

Several effects need two or three splits on different features to express, so a model of shallow
trees cannot reach the truth by adding trees alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sampledata.population import AGE_BAND_EDGES, sigmoid

# The share of customers who default in the real data.
DEFAULT_RATE = 0.0143

# The default mechanism: each term's weight on the log-odds scale, all sharpened by PD_SCALE so that the
# true pd ranks customers with a ROC AUC near 0.9.
PD_SCALE = 1.3
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
# Days in debt collection: a small effect on its own, a large one when the account's current status
# is bad (2) or its worst status in the last three months is 3 or more.
PD_WEIGHT_DC_DAYS = 0.08
PD_WEIGHT_DC_DAYS_BAD_ACCOUNT = 0.45
# Payment spans: steps where the average span crosses the due date (30 days) and a second reminder
# (45 days), sharper when recent payments (0-3 months) are late too.
PD_SPAN_DUE_DAYS = 30.0
PD_SPAN_REMINDER_DAYS = 45.0
PD_WEIGHT_SPAN_DUE = 0.5
PD_WEIGHT_SPAN_REMINDER = 0.6
PD_WEIGHT_RECENT_AND_LONG_LATE = 0.7
# Many active invoices with nothing paid yet: risk rises only past a threshold.
PD_ACTIVE_INVOICES_KNEE = 3
PD_WEIGHT_ACTIVE_UNPAID = 0.6
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
        _interactions(df, span)
        + (
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
    )


def _interactions(df: pd.DataFrame, span12: np.ndarray) -> np.ndarray:
    """The effects that depend on two features at once, or jump at a threshold."""
    dc_days = np.log1p(np.nan_to_num(df["account_days_in_dc_12_24m"].to_numpy(dtype=float)))
    bad_account = (df["account_status"].to_numpy(dtype=float) >= 2) | (
        df["account_worst_status_0_3m"].to_numpy(dtype=float) >= 3
    )
    span3 = df["avg_payment_span_0_3m"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):  # NaN compares False: an unknown span is not late
        past_due = span12 > PD_SPAN_DUE_DAYS
        past_reminder = span12 > PD_SPAN_REMINDER_DAYS
        recent_late = span3 > PD_SPAN_DUE_DAYS
    active = df["num_active_inv"].to_numpy(dtype=float)
    not_paid = ~df["has_paid"].to_numpy(dtype=bool)
    return (
        PD_WEIGHT_DC_DAYS * dc_days
        + PD_WEIGHT_DC_DAYS_BAD_ACCOUNT * dc_days * bad_account
        + PD_WEIGHT_SPAN_DUE * past_due
        + PD_WEIGHT_SPAN_REMINDER * past_reminder
        + PD_WEIGHT_RECENT_AND_LONG_LATE * (recent_late & past_due)
        + PD_WEIGHT_ACTIVE_UNPAID * not_paid * (active > PD_ACTIVE_INVOICES_KNEE)
    )


def _solve_intercept(score: np.ndarray, target: float = DEFAULT_RATE) -> float:
    """The intercept that makes the population's mean pd the target rate (the mean rises with it)."""
    low, high = INTERCEPT_BRACKET
    for _ in range(INTERCEPT_STEPS):
        mid = (low + high) / 2.0
        if sigmoid(mid + score).mean() < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def true_default_probability(df: pd.DataFrame) -> np.ndarray:
    """Each customer's true probability of default, with the mean set to the real default rate."""
    score = _risk_score(df)
    if len(score) == 0:
        return score
    return sigmoid(_solve_intercept(score) + score)
