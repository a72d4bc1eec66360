"""The backtest's statistics: plain numpy/scipy on counts, so they are tested without Spark.

Conventions (see docs/backtest.md):
- n customers, d observed defaults, `pd_mean` the mean predicted pd of the same customers.
- Jeffreys test (ECB, instructions for reporting the validation results of internal models, PD
  back-testing): with the Jeffreys prior Beta(1/2, 1/2), the default rate's posterior is
  Beta(d + 1/2, n - d + 1/2); the p-value is that distribution's CDF at `pd_mean`, i.e. the posterior
  probability that the true default rate is at most the predicted pd. H0: the pd is not too low;
  a small p-value says the defaults observed are too many for the pd (pd too low).
- Binomial tests treat the n outcomes as independent draws with probability `pd_mean`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score


def jeffreys_interval(defaults, customers, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed Jeffreys interval for the default rate: Beta(d + 1/2, n - d + 1/2) quantiles.

    Plain quantiles at both ends, also for d = 0 or d = n (no clamping to 0 or 1), as the ECB's
    definition reads. NaN where n = 0.
    """
    d, n = _counts(defaults, customers)
    alpha = 1.0 - confidence
    a, b = d + 0.5, n - d + 0.5
    with np.errstate(invalid="ignore"):
        lower = np.where(n > 0, stats.beta.ppf(alpha / 2.0, a, b), np.nan)
        upper = np.where(n > 0, stats.beta.ppf(1.0 - alpha / 2.0, a, b), np.nan)
    return lower, upper


def jeffreys_p_value(defaults, customers, pd_mean) -> np.ndarray:
    """P[Beta(d + 1/2, n - d + 1/2) <= pd_mean]: small when the pd is too low. NaN where n = 0."""
    d, n = _counts(defaults, customers)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, stats.beta.cdf(np.asarray(pd_mean, dtype=float), d + 0.5, n - d + 0.5), np.nan)


def binomial_p_values(defaults: int, customers: int, pd_mean: float) -> dict[str, float]:
    """Exact binomial tests of d defaults among n at probability `pd_mean`.

    `too_low`: H1 the true rate is above the pd (alternative "greater"); `too_high`: below it
    ("less"); `two_sided`. NaN when there are no customers or no usable pd.
    """
    if customers <= 0 or not 0.0 <= pd_mean <= 1.0:
        return {"too_low": math.nan, "too_high": math.nan, "two_sided": math.nan}
    d, n = int(defaults), int(customers)
    return {
        "too_low": float(stats.binomtest(d, n, pd_mean, alternative="greater").pvalue),
        "too_high": float(stats.binomtest(d, n, pd_mean, alternative="less").pvalue),
        "two_sided": float(stats.binomtest(d, n, pd_mean, alternative="two-sided").pvalue),
    }


def roc_auc(outcome, score) -> float:
    """ROC AUC (sklearn); NaN when only one class was observed."""
    y = np.asarray(outcome)
    if y.size == 0 or y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, np.asarray(score, dtype=float)))


def gini(auc: float) -> float:
    """The accuracy ratio / Gini coefficient: 2 AUC - 1."""
    return 2.0 * auc - 1.0


def auc_delong(outcome, score) -> tuple[float, float]:
    """ROC AUC and its DeLong variance, from the scores' tally (ties count one half).

    The reference the Spark aggregation (`measures.discrimination`) is tested against.
    """
    _, _, positives, negatives = _tally(outcome, score)
    return auc_from_tally(positives, negatives)


def _tally(outcome, score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(outcome as bool, each row's index among the distinct scores, defaulters and non-defaulters per
    distinct score, ascending)."""
    y = np.asarray(outcome).astype(bool)
    values, inverse = np.unique(np.asarray(score, dtype=float), return_inverse=True)
    positives = np.bincount(inverse, weights=y, minlength=len(values))
    negatives = np.bincount(inverse, weights=~y, minlength=len(values))
    return y, inverse, positives, negatives


def row_placements(outcome, score) -> tuple[np.ndarray, np.ndarray]:
    """Each row's placement (`tally_placements`): V10 of the defaulters, V01 of the non-defaulters, in
    row order. O(n log n): the tally of distinct scores, not the n1 x n0 comparisons."""
    y, inverse, positives, negatives = _tally(outcome, score)
    v10, v01 = tally_placements(positives, negatives)
    return v10[inverse][y], v01[inverse][~y]


def auc_from_tally(positives, negatives) -> tuple[float, float]:
    """AUC and DeLong variance from counts of defaulters and non-defaulters per distinct score, ascending."""
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    v10, v01 = tally_placements(pos, neg)
    return auc_from_sums(pos.sum(), neg.sum(), (pos * v10).sum(), (pos * v10**2).sum(), (neg * v01**2).sum())


def tally_placements(positives, negatives) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placements of each distinct score (ascending), from the counts per score.

    V10: for a defaulter with that score, the share of non-defaulters scored lower; V01: for a
    non-defaulter, the share of defaulters scored higher; ties count one half. The AUC is the mean
    V10 over defaulters (and the mean V01 over non-defaulters).
    """
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    n1, n0 = pos.sum(), neg.sum()
    neg_below = np.cumsum(neg) - neg
    pos_above = n1 - np.cumsum(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (neg_below + 0.5 * neg) / n0, (pos_above + 0.5 * pos) / n1


def auc_from_sums(n1: float, n0: float, sum_v10: float, sum_v10_sq: float, sum_v01_sq: float):
    """AUC and DeLong variance from the placement sums (per defaulter V10, per non-defaulter V01).

    The one formula both the numpy tally and the Spark aggregation (`measures.discrimination`) end in.
    NaN when either class has fewer than two customers.
    """
    if n1 < 2 or n0 < 2:
        return math.nan, math.nan
    auc = float(sum_v10 / n1)
    s10 = (sum_v10_sq - n1 * auc**2) / (n1 - 1)
    s01 = (sum_v01_sq - n0 * auc**2) / (n0 - 1)
    return auc, float(s10 / n1 + s01 / n0)


@dataclass(frozen=True)
class PairedAuc:
    """Two correlated ROC AUCs on the same rows (a: the champion, b: the challenger) and DeLong's test
    of their difference: `delta` = b - a, `z` = delta / sqrt(`variance_delta`), two-sided `p_value`."""

    auc_a: float
    auc_b: float
    variance_a: float
    variance_b: float
    covariance: float
    delta: float
    variance_delta: float
    z: float
    p_value: float


def paired_auc_delong(outcome, score_a, score_b) -> PairedAuc:
    """DeLong's test for two correlated ROC curves (DeLong, DeLong & Clarke-Pearson, Biometrics 1988)
    on the same rows, from each row's placements under both scores.

    The reference the Spark aggregation (`measures.paired_discrimination`) is tested against.
    """
    a10, a01 = row_placements(outcome, score_a)
    b10, b01 = row_placements(outcome, score_b)
    return paired_auc_from_sums(
        a10.size,
        a01.size,
        (a10.sum(), (a10**2).sum(), (a01**2).sum()),
        (b10.sum(), (b10**2).sum(), (b01**2).sum()),
        (((b10 - a10) ** 2).sum(), ((b01 - a01) ** 2).sum()),
    )


def paired_auc_from_sums(n1: float, n0: float, sums_a: tuple, sums_b: tuple, sums_diff: tuple) -> PairedAuc:
    """`PairedAuc` from placement sums: `sums_a`, `sums_b` each score's (sum V10, sum V10², sum V01²) as
    `auc_from_sums` takes them; `sums_diff` the sums of the squared per-row differences of placements
    (b - a) over defaulters and over non-defaulters.

    The variance of the difference comes from the differences themselves, not as var a + var b - 2 cov:
    it is then exactly 0 for identical scores, where the test says nothing (z 0, p-value 1). The
    one formula both the numpy reference and the Spark aggregation end in; NaN when either class has
    fewer than two customers.
    """
    sum_d10_sq, sum_d01_sq = sums_diff
    auc_a, variance_a = auc_from_sums(n1, n0, *sums_a)
    auc_b, variance_b = auc_from_sums(n1, n0, *sums_b)
    if math.isnan(auc_a) or math.isnan(auc_b):
        return PairedAuc(*(math.nan,) * 9)
    delta = auc_b - auc_a
    variance = max(
        (sum_d10_sq - n1 * delta**2) / (n1 - 1) / n1 + (sum_d01_sq - n0 * delta**2) / (n0 - 1) / n0, 0.0
    )
    covariance = (variance_a + variance_b - variance) / 2.0
    if variance > 0:
        z = delta / math.sqrt(variance)
        p_value = float(2.0 * stats.norm.sf(abs(z)))
    else:  # every row placed alike by both scores: no difference to test
        z, p_value = (0.0, 1.0) if delta == 0 else (math.nan, math.nan)
    return PairedAuc(auc_a, auc_b, variance_a, variance_b, covariance, delta, variance, z, p_value)


def paired_mean_difference(n: float, sum_d: float, sum_d_sq: float) -> tuple[float, float, float]:
    """Mean of per-row differences (challenger - champion, e.g. of log loss), its standard error and
    the two-sided p-value of a paired z test (n large: the rows are a portfolio's customers).

    NaN where n < 2; p-value 1 when every difference is 0.
    """
    if n < 2:
        return math.nan, math.nan, math.nan
    mean = sum_d / n
    variance = max((sum_d_sq - n * mean**2) / (n - 1), 0.0)
    se = math.sqrt(variance / n)
    if se == 0:
        return mean, 0.0, 1.0 if mean == 0 else math.nan
    return mean, se, float(2.0 * stats.norm.sf(abs(mean / se)))


def auc_drop_p_value(auc_now: float, variance_now: float, auc_reference: float) -> float:
    """One-sided test that discriminatory power fell below its value at development (ECB).

    S = (AUC_reference - AUC_now) / sd(AUC_now); p = 1 - Phi(S). Small: the AUC has dropped.
    NaN when either AUC or the variance is unknown.
    """
    if not all(math.isfinite(x) for x in (auc_now, variance_now, auc_reference)) or variance_now <= 0:
        return math.nan
    statistic = (auc_reference - auc_now) / math.sqrt(variance_now)
    return float(stats.norm.sf(statistic))


def brier(outcome, pd_values) -> float:
    """Mean squared difference between outcome (0/1) and pd."""
    y, p = np.asarray(outcome, dtype=float), np.asarray(pd_values, dtype=float)
    return float(np.mean((p - y) ** 2)) if y.size else math.nan


def calibration_ratio(defaults: float, expected: float) -> float:
    """Calibration in the large: observed / expected defaults (1 = right on average, > 1 pd too low)."""
    return float(defaults) / expected if expected > 0 else math.nan


def herfindahl(counts) -> tuple[float, float]:
    """Concentration of customers over grades: (Σ share², its normalised form 1 + ln(Σ share²) / ln K).

    The plain index runs from 1/K (even) to 1 (all in one grade); the normalised one, the ECB's form
    via the coefficient of variation, from 0 to 1. K is the number of grades of the scale, so empty
    grades count as concentration.
    """
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0 or c.size < 2:
        return math.nan, math.nan
    index = float(((c / total) ** 2).sum())
    return index, 1.0 + math.log(index) / math.log(c.size)


def migration_matrix(grades_from, grades_to, grades: int, counts=1) -> np.ndarray:
    """Customers by (grade at the first date, grade at the second), 0 = absent at that date.

    `counts`: how many customers each (from, to) pair stands for (1 each by default, or the counts
    of a grouped table). Shape (grades + 1, grades + 1): row 0 holds customers new at the second
    date, column 0 those gone from it. Row sums are the first date's customers per grade, column
    sums the second's.
    """
    matrix = np.zeros((grades + 1, grades + 1), dtype=np.int64)
    np.add.at(matrix, (np.asarray(grades_from), np.asarray(grades_to)), np.asarray(counts, dtype=np.int64))
    return matrix


def migration_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row as shares of its total (where the first date's customers went); NaN for an empty row."""
    totals = matrix.sum(axis=1, keepdims=True).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, matrix / totals, np.nan)


def _counts(defaults, customers) -> tuple[np.ndarray, np.ndarray]:
    d, n = np.asarray(defaults, dtype=float), np.asarray(customers, dtype=float)
    if np.any(d < 0) or np.any(d > n):
        raise ValueError("defaults must be between 0 and the number of customers")
    return d, n
