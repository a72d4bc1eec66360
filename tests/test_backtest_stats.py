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


def _brute_force_delong(outcome, score_a, score_b) -> dict:
    """DeLong et al. (1988) written out: every defaulter against every non-defaulter, O(n1 x n0)."""
    y = np.asarray(outcome).astype(bool)
    placements = []
    for score in (np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)):
        x, z = score[y][:, None], score[~y][None, :]
        psi = (x > z) + 0.5 * (x == z)  # psi[i, j]: defaulter i against non-defaulter j
        placements.append((psi.mean(axis=1), psi.mean(axis=0), psi.mean()))
    v10 = np.vstack([p[0] for p in placements])
    v01 = np.vstack([p[1] for p in placements])
    s = np.cov(v10) / y.sum() + np.cov(v01) / (~y).sum()  # the 2 x 2 covariance of the two AUCs
    return {"auc": [p[2] for p in placements], "variance": np.diag(s), "covariance": s[0, 1]}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paired_delong_equals_the_brute_force_computation(seed):
    rng = np.random.default_rng(seed)
    n = 300
    outcome = rng.random(n) < 0.2
    champion = np.round(outcome * 0.8 + rng.normal(size=n), 1)  # rounded: ties within and across classes
    challenger = np.round(champion + rng.normal(scale=0.7, size=n), 1)  # correlated with the champion
    got = stats.paired_auc_delong(outcome, champion, challenger)
    want = _brute_force_delong(outcome, champion, challenger)
    assert [got.auc_a, got.auc_b] == pytest.approx(want["auc"], abs=1e-12)
    assert [got.variance_a, got.variance_b] == pytest.approx(want["variance"], rel=1e-9)
    assert got.covariance == pytest.approx(want["covariance"], rel=1e-9)
    variance = want["variance"].sum() - 2 * want["covariance"]
    assert got.variance_delta == pytest.approx(variance, rel=1e-9)
    assert got.delta == pytest.approx(want["auc"][1] - want["auc"][0], abs=1e-12)
    assert got.z == pytest.approx(got.delta / math.sqrt(variance), rel=1e-9)
    assert got.p_value == pytest.approx(2 * sps.norm.sf(abs(got.z)), rel=1e-9)
    assert got.auc_a == pytest.approx(roc_auc_score(outcome, champion), abs=1e-12)
    # Each AUC's own variance is what the single-curve DeLong computation gives.
    assert (got.auc_b, got.variance_b) == pytest.approx(stats.auc_delong(outcome, challenger), rel=1e-12)


def test_paired_delong_on_identical_scores_says_no_difference():
    rng = np.random.default_rng(5)
    score = rng.random(500)
    outcome = rng.random(500) < score * 0.3
    same = stats.paired_auc_delong(outcome, score, score.copy())
    assert same.delta == 0.0 and same.variance_delta == 0.0
    assert (same.z, same.p_value) == (0.0, 1.0)
    # A monotone transform orders the customers alike: the same ROC curve, still no difference.
    assert stats.paired_auc_delong(outcome, score, score**3).p_value == 1.0
    one_class = stats.paired_auc_delong(np.zeros(10, bool), score[:10], score[:10])
    assert math.isnan(one_class.auc_a) and math.isnan(one_class.p_value)


def test_paired_delong_finds_a_clearly_better_score_and_not_a_noisy_copy():
    rng = np.random.default_rng(6)
    n = 4000
    true_pd = rng.beta(0.5, 20, size=n)
    outcome = rng.random(n) < true_pd
    weak = true_pd * np.exp(rng.normal(scale=1.5, size=n))  # the true pd, blurred
    better = stats.paired_auc_delong(outcome, weak, true_pd)
    assert better.delta > 0.03 and better.z > 3 and better.p_value < 0.001
    worse = stats.paired_auc_delong(outcome, true_pd, weak)
    assert worse.delta == pytest.approx(-better.delta) and worse.p_value == pytest.approx(better.p_value)
    # Two equally good scores: in 200 seeded draws the test rejects at 5% about 5% of the time.
    rejected = 0
    for _ in range(REPETITIONS):
        y = rng.random(1000) < true_pd[:1000]
        a = true_pd[:1000] * np.exp(rng.normal(scale=0.5, size=1000))
        b = true_pd[:1000] * np.exp(rng.normal(scale=0.5, size=1000))
        rejected += stats.paired_auc_delong(y, a, b).p_value < LEVEL
    assert abs(rejected / REPETITIONS - LEVEL) <= TOLERANCE


def test_paired_mean_difference_is_a_paired_z_test():
    rng = np.random.default_rng(7)
    d = rng.normal(0.01, 0.05, size=2000)
    mean, se, p = stats.paired_mean_difference(d.size, d.sum(), (d**2).sum())
    assert mean == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / math.sqrt(d.size))
    assert p == pytest.approx(2 * sps.norm.sf(abs(d.mean() / se)))
    assert stats.paired_mean_difference(10, 0.0, 0.0) == (0.0, 0.0, 1.0)
    assert all(math.isnan(v) for v in stats.paired_mean_difference(1, 0.1, 0.01))
