"""The sample data's default mechanism has interactions and thresholds, not only additive smooth effects."""

import numpy as np
import pytest
from sampledata import generate_customers
from sampledata.risk import PD_SCALE, PD_WEIGHT_SPAN_DUE, PD_WEIGHT_SPAN_REMINDER, _risk_score


@pytest.fixture(scope="module")
def customers():
    frame, _ = generate_customers(500, seed=17)
    return frame


def _score_change(frame, column, before, after):
    low, high = frame.copy(), frame.copy()
    low[column], high[column] = before, after
    return _risk_score(high) - _risk_score(low)


def test_days_in_debt_collection_weigh_more_on_an_account_in_a_bad_status(customers):
    good, bad = customers.copy(), customers.copy()
    good["account_status"], good["account_worst_status_0_3m"] = 1.0, 1.0
    bad["account_status"], bad["account_worst_status_0_3m"] = 2.0, 1.0
    on_good = _score_change(good, "account_days_in_dc_12_24m", 0.0, 90.0)
    on_bad = _score_change(bad, "account_days_in_dc_12_24m", 0.0, 90.0)
    assert (on_good > 0).all()
    assert (on_bad > 3 * on_good).all()


def test_payment_spans_jump_at_the_due_date_and_the_second_reminder(customers):
    frame = customers.assign(avg_payment_span_0_3m=np.nan)
    below_due = _score_change(frame, "avg_payment_span_0_12m", 28.0, 29.0)
    across_due = _score_change(frame, "avg_payment_span_0_12m", 29.5, 30.5)
    across_reminder = _score_change(frame, "avg_payment_span_0_12m", 44.5, 45.5)
    assert (across_due - below_due > 0.9 * PD_SCALE * PD_WEIGHT_SPAN_DUE).all()
    assert (across_reminder - below_due > 0.9 * PD_SCALE * PD_WEIGHT_SPAN_REMINDER).all()
