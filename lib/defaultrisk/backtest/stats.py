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
    y = np.asarray(outcome).astype(bool)
    s = np.asarray(score, dtype=float)
    values, inverse = np.unique(s, return_inverse=True)
    positives = np.bincount(inverse, weights=y, minlength=len(values))
    negatives = np.bincount(inverse, weights=~y, minlength=len(values))
    return auc_from_tally(positives, negatives)


def auc_from_tally(positives, negatives) -> tuple[float, float]:
    """AUC and DeLong variance from counts of defaulters and non-defaulters per distinct score, ascending."""
    pos, neg = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    n1, n0 = pos.sum(), neg.sum()
    neg_below = np.cumsum(neg) - neg
    pos_above = n1 - np.cumsum(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        v10 = (neg_below + 0.5 * neg) / n0  # per defaulter: share of non-defaulters scored lower
        v01 = (pos_above + 0.5 * pos) / n1  # per non-defaulter: share of defaulters scored higher
    return auc_from_sums(n1, n0, (pos * v10).sum(), (pos * v10**2).sum(), (neg * v01**2).sum())


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
