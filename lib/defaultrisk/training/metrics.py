"""How good a pd is: probability metrics, the reliability table, hold-out evaluation at a threshold.

Rows whose non-defaulters were thinned in Spark before training (only a fraction `negative_rate` of them
kept) still describe the real population: every metric weights each non-defaulter by 1/negative_rate.
With negative_rate 1 nothing is weighted and the code paths are the unweighted ones.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import beta
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

ROC_AUC = "roc_auc"
PR_AUC = "pr_auc"
BRIER = "brier"
LOG_LOSS = "log_loss"
PROBABILITY_METRICS = (ROC_AUC, PR_AUC, BRIER, LOG_LOSS)
LOWER_IS_BETTER = {ROC_AUC: False, PR_AUC: False, BRIER: True, LOG_LOSS: True}
PD_CLIP = 1e-15  # a pd of exactly 0 or 1 would make one wrong row's log loss infinite
RELIABILITY_BINS = 10
GINI = "gini"
KS = "ks"
JEFFREYS_LEVEL = 0.95  # two-sided: the 2.5% and 97.5% quantiles of Beta(d + 1/2, n - d + 1/2)


def population_weights(labels: np.ndarray, negative_rate: float = 1.0) -> np.ndarray | None:
    """Each row's weight in the real population: a non-defaulter kept at rate b stands for 1/b of them.

    None when nothing was thinned, so that unweighted rows take the unweighted (bit-identical) path.
    """
    if negative_rate == 1.0:
        return None
    return np.where(np.asarray(labels) == 1, 1.0, 1.0 / negative_rate)


def _mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    return float(np.mean(values)) if weights is None else float(np.average(values, weights=weights))


def population_mean(values: np.ndarray, labels: np.ndarray, negative_rate: float = 1.0) -> float:
    """The mean of per-row values over the real population the rows stand for."""
    return _mean(values, population_weights(labels, negative_rate))


def log_loss(labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> float:
    p = np.clip(np.asarray(pds, dtype=np.float64), PD_CLIP, 1.0 - PD_CLIP)
    weights = population_weights(labels, negative_rate)
    if weights is None:
        return float(-np.mean(np.where(np.asarray(labels) == 1, np.log(p), np.log1p(-p))))
    return -_mean(np.where(np.asarray(labels) == 1, np.log(p), np.log1p(-p)), weights)


def brier(labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> float:
    squared = (np.asarray(pds, dtype=np.float64) - np.asarray(labels)) ** 2
    return _mean(squared, population_weights(labels, negative_rate))


def metric_value(name: str, labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> float:
    if name == LOG_LOSS:
        return log_loss(labels, pds, negative_rate)
    if name == BRIER:
        return brier(labels, pds, negative_rate)
    weights = population_weights(labels, negative_rate)
    if name == PR_AUC:  # precision depends on the base rate: weighted back to the real one
        return float(average_precision_score(labels, pds, sample_weight=weights))
    if name == ROC_AUC:
        return float(roc_auc_score(labels, pds, sample_weight=weights))
    raise ValueError(f"unknown metric {name!r}")


def probability_metrics(labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> dict:
    """Ranking (ROC AUC, PR AUC) and calibration (Brier, log loss, mean pd) of pds against outcomes.

    `rows` and `defaults` count the rows given; with thinned non-defaulters (`negative_rate` < 1) the
    rates and metrics are those of the real population the rows stand for.
    """
    labels = np.asarray(labels)
    pds = np.asarray(pds, dtype=np.float64)
    weights = population_weights(labels, negative_rate)
    metrics = {
        "rows": len(labels),
        "defaults": int(labels.sum()),
        "default_rate": _mean(labels, weights),
        "mean_pd": _mean(pds, weights),
        **{name: metric_value(name, labels, pds, negative_rate) for name in PROBABILITY_METRICS},
    }
    metrics[GINI] = 2.0 * metrics[ROC_AUC] - 1.0
    metrics[KS] = ks_statistic(labels, pds, negative_rate)
    return metrics


def ks_statistic(labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> float:
    """Kolmogorov-Smirnov: the largest gap between the pd's distributions among defaulters and the rest."""
    fpr, tpr, _ = roc_curve(labels, pds, sample_weight=population_weights(labels, negative_rate))
    return float(np.max(tpr - fpr))


def jeffreys_interval(defaults: float, rows: float, level: float = JEFFREYS_LEVEL) -> tuple[float, float]:
    """The Jeffreys interval of a default rate: Beta(d + 1/2, n - d + 1/2) quantiles; 0 and 1 at the edges."""
    tail = (1.0 - level) / 2.0
    low = 0.0 if defaults <= 0 else float(beta.ppf(tail, defaults + 0.5, rows - defaults + 0.5))
    high = 1.0 if defaults >= rows else float(beta.ppf(1.0 - tail, defaults + 0.5, rows - defaults + 0.5))
    return low, high


def oracle_comparison(model: dict, oracle: dict) -> dict:
    """Per metric, how far the model is from the true pd on the same rows (relative = gap / oracle)."""
    names = (*PROBABILITY_METRICS, "mean_pd")
    return {
        name: {
            "model": model[name],
            "oracle": oracle[name],
            "difference": model[name] - oracle[name],
            "relative": (model[name] - oracle[name]) / oracle[name] if oracle[name] else math.nan,
        }
        for name in names
    }


def reliability_table(
    labels: np.ndarray,
    pds: np.ndarray,
    true_pd: np.ndarray | None = None,
    bins: int = RELIABILITY_BINS,
    negative_rate: float = 1.0,
) -> list[dict]:
    """Mean pd against the observed default rate in equal-sized bins of pd (deciles by default).

    With the true pd of generated data, each bin also shows its mean true pd: the rate the bin would
    show without the noise of a finite sample. With thinned non-defaulters (`negative_rate` < 1) the
    bins are deciles of the real population and their means and rates are weighted back to it; `rows`
    and `defaults` still count the rows given.
    """
    labels = np.asarray(labels)
    pds = np.asarray(pds, dtype=np.float64)
    order = np.argsort(pds, kind="stable")
    weights = population_weights(labels, negative_rate)
    if weights is None:
        groups = np.array_split(order, bins)
    else:
        ordered = weights[order]
        before = np.cumsum(ordered) - ordered  # the population weight below each row
        groups = np.split(order, np.searchsorted(before, ordered.sum() * np.arange(1, bins) / bins))
    table = []
    for number, rows in enumerate(groups, start=1):
        if not len(rows):
            continue
        w = None if weights is None else weights[rows]
        entry = {
            "bin": number,
            "rows": len(rows),
            "defaults": int(labels[rows].sum()),
            "pd_min": float(pds[rows].min()),
            "pd_max": float(pds[rows].max()),
            "mean_pd": _mean(pds[rows], w),
            "observed_rate": _mean(labels[rows], w),
        }
        entry.update(_expected_against_observed(entry, w))
        if true_pd is not None:
            entry["mean_true_pd"] = _mean(np.asarray(true_pd, dtype=np.float64)[rows], w)
        table.append(entry)
    return table


def _expected_against_observed(entry: dict, weights: np.ndarray | None) -> dict:
    """A bin's expected defaults (its pd summed) beside the observed, with the observed rate's Jeffreys
    interval; flagged when the bin's mean pd falls outside it. Thinned rows count as the population."""
    rows = entry["rows"] if weights is None else float(weights.sum())
    low, high = jeffreys_interval(entry["defaults"], rows)
    return {
        "population_rows": rows,
        "expected_defaults": entry["mean_pd"] * rows,
        "jeffreys_low": low,
        "jeffreys_high": high,
        "outside_interval": not low <= entry["mean_pd"] <= high,
    }


def evaluate(labels: np.ndarray, pds: np.ndarray, threshold: float, negative_rate: float = 1.0) -> dict:
    """Hold-out metrics of calibrated pds: ranking, calibration, and the decision at the threshold.

    The counts are the hold-out's rows; with thinned non-defaulters the rates (precision, alert rate
    and the probability metrics) are the real population's.
    """
    flagged = pds >= threshold
    tp = int(np.sum(flagged & (labels == 1)))
    fp = int(np.sum(flagged & (labels == 0)))
    fn = int(np.sum(~flagged & (labels == 1)))
    weighted_fp = fp if negative_rate == 1.0 else fp / negative_rate
    precision = tp / (tp + weighted_fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        **probability_metrics(labels, pds, negative_rate),
        "threshold": float(threshold),
        "precision_at_threshold": precision,
        "recall_at_threshold": recall,
        "f1_at_threshold": f1,
        "alert_rate": population_mean(flagged, labels, negative_rate),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }
