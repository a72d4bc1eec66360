"""The `is_high_risk` threshold: the decision curve on the hold-out and the business rules over it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from defaultrisk.training.config import ThresholdRule

log = logging.getLogger(__name__)

TARGET_PRECISION = "target_precision"
TARGET_RECALL = "target_recall"
COST_RATIO = "cost_ratio"
MAX_F1 = "max_f1"


@dataclass(frozen=True)
class DecisionCurve:
    """Precision, recall, alert rate and counts at every distinct pd used as a threshold (ascending).

    On rows with thinned non-defaulters, false positives and rows count each non-defaulter 1/rate
    times: the curve is the real population's.
    """

    thresholds: np.ndarray
    true_positives: np.ndarray
    false_positives: np.ndarray
    positives: int
    rows: float

    @property
    def flagged(self) -> np.ndarray:
        return self.true_positives + self.false_positives

    @property
    def precision(self) -> np.ndarray:
        return self.true_positives / self.flagged

    @property
    def recall(self) -> np.ndarray:
        return self.true_positives / max(self.positives, 1)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(p + r > 0, 2 * p * r / (p + r), 0.0)

    @property
    def alert_rate(self) -> np.ndarray:
        return self.flagged / self.rows

    def cost(self, cost_ratio: float) -> np.ndarray:
        """False alarms weighted by `cost_ratio` plus missed defaults, per customer."""
        missed = self.positives - self.true_positives
        return (cost_ratio * self.false_positives + missed) / self.rows


def decision_curve(labels: np.ndarray, pds: np.ndarray, negative_rate: float = 1.0) -> DecisionCurve:
    """What flagging `pd >= t` does, for every distinct pd `t` (the customers flagged are counted once)."""
    labels = np.asarray(labels)
    order = np.argsort(-np.asarray(pds, dtype=np.float64), kind="stable")
    sorted_pd = np.asarray(pds, dtype=np.float64)[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_pd)), len(sorted_pd) - 1]
    true_positives = np.cumsum(labels[order])[last_of_value]
    false_positives = last_of_value + 1 - true_positives
    positives = int(labels.sum())
    rows = len(labels)
    if negative_rate != 1.0:
        false_positives = false_positives / negative_rate
        rows = positives + (rows - positives) / negative_rate
    return DecisionCurve(
        thresholds=sorted_pd[last_of_value][::-1],
        true_positives=true_positives[::-1],
        false_positives=false_positives[::-1],
        positives=positives,
        rows=rows,
    )


def choose_threshold(
    labels: np.ndarray, pds: np.ndarray, rule: ThresholdRule, negative_rate: float = 1.0
) -> dict:
    """Apply the configured business rule on the hold-out; fall back to the best F1 if unreachable.

    target_precision: the lowest threshold whose precision reaches the target (the most defaults
    caught at that precision); target_recall: the highest threshold whose recall reaches it (the fewest
    alerts); cost_ratio: the threshold with the lowest cost of false alarms (weighted by the ratio) plus
    missed defaults, the higher one on a tie. Precision and alert rate are the real population's
    (non-defaulters weighted by 1/negative_rate): both depend on the base rate.
    """
    curve = decision_curve(labels, pds, negative_rate)
    chosen = None
    if rule.rule == TARGET_PRECISION:
        ok = np.flatnonzero((curve.precision >= rule.target) & (curve.recall > 0))
        chosen = ok[0] if ok.size else None
    elif rule.rule == TARGET_RECALL:
        ok = np.flatnonzero(curve.recall >= rule.target)
        chosen = ok[-1] if ok.size else None
    elif rule.rule == COST_RATIO:
        cost = curve.cost(rule.cost_ratio)
        chosen = np.flatnonzero(cost == cost.min())[-1]
    met = chosen is not None or rule.rule == MAX_F1
    if chosen is None:
        if rule.rule != MAX_F1:
            log.warning(
                "threshold rule %s %s not reachable on the hold-out; best F1 used", rule.rule, rule.target
            )
        chosen = int(np.argmax(curve.f1))
    threshold = {"value": float(curve.thresholds[chosen]), "rule": rule.rule, "rule_met": bool(met)}
    if rule.rule in (TARGET_PRECISION, TARGET_RECALL):
        threshold["target"] = rule.target
    if rule.rule == COST_RATIO:
        threshold["cost_ratio"] = rule.cost_ratio
        threshold["cost_per_customer"] = float(curve.cost(rule.cost_ratio)[chosen])
    threshold.update(
        precision=float(curve.precision[chosen]),
        recall=float(curve.recall[chosen]),
        f1=float(curve.f1[chosen]),
        alert_rate=float(curve.alert_rate[chosen]),
    )
    return threshold
