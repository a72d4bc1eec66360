"""The backtest's statistics on plain numpy: definitions, and how often they alarm on generated data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sampledata import generate_customers
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from defaultrisk.backtest import evaluate, stats

REPETITIONS = 200
LEVEL = 0.05
# Three binomial standard deviations of a 5% rate over 200 repetitions: ±0.046.
TOLERANCE = 3 * math.sqrt(LEVEL * (1 - LEVEL) / REPETITIONS)


@pytest.fixture(scope="module")
def population():
    """40,000 generated customers' true pd (base rate ~1.4%) and the AUC the true pd reaches on them."""
    _, true_pd = generate_customers(40_000, seed=3)
    rng = np.random.default_rng(11)
    draws = [stats.auc_delong(rng.random(true_pd.size) < true_pd, true_pd)[0] for _ in range(30)]
    return true_pd, float(np.mean(draws))


def verdicts(pd_model: np.ndarray, outcome: np.ndarray, auc_reference: float) -> set[str]:
    """The tests a snapshot fails, through the same functions the job uses on Spark's counts."""
    counts = {
        "customers": outcome.size,
        "observed_defaults": int(outcome.sum()),
        "expected_defaults": float(pd_model.sum()),
    }
    failed = set(evaluate.group_row(counts, LEVEL, 0.95)["tests_failed"])
    auc, variance = stats.auc_delong(outcome, pd_model)
    if stats.auc_drop_p_value(auc, variance, auc_reference) < LEVEL:
        failed.add("auc_drop")
    return failed


def alarm_rates(true_pd, auc_reference, size: int, model=lambda p, rng: p, seed: int = 5) -> dict[str, float]:
    """Share of seeded repetitions in which each test fails, outcomes drawn from the true pd."""
    rng = np.random.default_rng(seed)
    hits: dict[str, int] = {}
    for _ in range(REPETITIONS):
        rows = rng.choice(true_pd.size, size, replace=False) if size < true_pd.size else slice(None)
        p = true_pd[rows]
        outcome = rng.random(p.size) < p
        for name in verdicts(model(p, rng), outcome, auc_reference):
            hits[name] = hits.get(name, 0) + 1
    return {name: hits.get(name, 0) / REPETITIONS for name in ("jeffreys", "binomial_too_low",
            "binomial_too_high", "binomial_two_sided", "auc_drop")}  # fmt: skip


def test_jeffreys_interval_is_the_beta_quantiles():
    d, n = np.array([0, 3, 14, 40]), np.array([50, 400, 1000, 40])
    lower, upper = stats.jeffreys_interval(d, n, confidence=0.9)
    assert lower == pytest.approx(sps.beta.ppf(0.05, d + 0.5, n - d + 0.5), rel=1e-12)
    assert upper == pytest.approx(sps.beta.ppf(0.95, d + 0.5, n - d + 0.5), rel=1e-12)
    assert np.all(lower < (d + 0.5) / (n + 1)) and np.all((d + 0.5) / (n + 1) < upper)
    low, high = stats.jeffreys_interval(14, 1000)  # the default: 95%, 2.5% of the posterior each side
    assert sps.beta.cdf([low, high], 14.5, 986.5) == pytest.approx([0.025, 0.975])
    assert np.isnan(stats.jeffreys_interval(0, 0)[0])


def test_jeffreys_p_value_is_the_posterior_probability_that_the_rate_is_at_most_the_pd():
    assert stats.jeffreys_p_value(14, 1000, 0.014) == pytest.approx(sps.beta.cdf(0.014, 14.5, 986.5))
    # Many more defaults than the pd says: the pd is too low, p small; far fewer: p near 1.
    assert stats.jeffreys_p_value(30, 1000, 0.014) < 0.001
    assert stats.jeffreys_p_value(2, 1000, 0.014) > 0.999


def test_binomial_tests_both_ways():
    p = stats.binomial_p_values(30, 1000, 0.014)
    assert p["too_low"] == pytest.approx(sps.binomtest(30, 1000, 0.014, alternative="greater").pvalue)
    assert p["too_low"] < 0.001 and p["too_high"] > 0.999
    assert p["two_sided"] == pytest.approx(sps.binomtest(30, 1000, 0.014).pvalue)
    assert all(math.isnan(v) for v in stats.binomial_p_values(0, 0, 0.01).values())


def test_delong_auc_equals_sklearn_with_ties_and_its_variance_the_bootstrap():
    rng = np.random.default_rng(2)
    score = np.round(rng.random(3000), 2)  # many ties
    outcome = rng.random(3000) < score * 0.2
    auc, variance = stats.auc_delong(outcome, score)
    assert auc == pytest.approx(roc_auc_score(outcome, score), abs=1e-12)
    boot = [stats.roc_auc(outcome[i], score[i]) for i in rng.integers(0, 3000, size=(300, 3000))]
    assert math.sqrt(variance) == pytest.approx(np.std(boot), rel=0.2)
    assert stats.gini(auc) == pytest.approx(2 * auc - 1)


def test_calibration_brier_and_concentration():
    assert stats.calibration_ratio(21, 14.0) == pytest.approx(1.5)
    assert stats.brier([0, 1], [0.1, 0.7]) == pytest.approx((0.01 + 0.09) / 2)
    assert stats.herfindahl([5, 5, 5, 5]) == pytest.approx((0.25, 0.0))
    assert stats.herfindahl([0, 0, 7, 0]) == pytest.approx((1.0, 1.0))


def test_true_pd_raises_false_alarms_at_about_the_level(population):
    true_pd, auc_reference = population
    rates = alarm_rates(true_pd, auc_reference, size=true_pd.size)
    print("false alarm rates, 40,000 customers, 200 repetitions:", rates)
    for name, rate in rates.items():
        assert abs(rate - LEVEL) <= TOLERANCE, (name, rate)


def test_pd_times_0_6_is_flagged_too_low(population):
    true_pd, auc_reference = population
    large = alarm_rates(true_pd, auc_reference, size=40_000, model=lambda p, rng: 0.6 * p)
    medium = alarm_rates(true_pd, auc_reference, size=5_000, model=lambda p, rng: 0.6 * p)
    print("detection of pd x 0.6, 40,000 / 5,000 customers:", large, medium)
    assert large["jeffreys"] == large["binomial_too_low"] == 1.0
    assert medium["jeffreys"] >= 0.95 and medium["binomial_too_low"] >= 0.95
    assert large["binomial_too_high"] == 0.0
    # Scaling every pd keeps their order: discrimination is untouched.
    assert large["auc_drop"] <= LEVEL + TOLERANCE


def test_a_random_score_has_lost_its_discriminatory_power(population):
    true_pd, auc_reference = population
    rates = alarm_rates(true_pd, auc_reference, size=40_000, model=lambda p, rng: rng.random(p.size) * 0.03)
    print("detection of a random score:", rates)
    assert rates["auc_drop"] == 1.0
