"""Training: stratified hold-out, cross-validated model choice, XGBoost, calibration, threshold, metrics.

The hold-out is set aside first and used only to check the chosen model and to set the threshold: the
imbalance strategy, the number of trees, the optional parameter search and the calibration are all
chosen by cross-validation on the training rows.

Rows whose non-defaulters were thinned in Spark (`negative_rate` < 1: sampling = "spark") are trained on
as they are, but judged as the real population: the calibration map carries the rate, so the pd is at
the real base rate, and every metric, the threshold and the reliability table weight each non-defaulter
by 1/negative_rate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

from defaultrisk.config import ThresholdRule, TrainConfig
from defaultrisk.errors import InputError
from defaultrisk.evaluation import (
    LOG_LOSS,
    CVResult,
    applicable_strategies,
    best_index,
    best_result,
    compare_calibrations,
    compare_strategies,
    fit_calibration,
    oracle_comparison,
    population_mean,
    probability_metrics,
    random_search,
    reliability_table,
    resample,
    strategies,
    stratified_folds,
    train_booster,
)
from defaultrisk.features import feature_matrix
from defaultrisk.model import apply_calibration
from defaultrisk.schema import DEFAULT, FEATURES, UUID

log = logging.getLogger(__name__)

MIN_DEFAULTS = 10  # fewer labelled defaults than this cannot give a stratified split and a threshold
TARGET_PRECISION = "target_precision"
TARGET_RECALL = "target_recall"
COST_RATIO = "cost_ratio"
MAX_F1 = "max_f1"
IMPORTANCE_TYPES = ("total_gain", "gain", "weight")


@dataclass(frozen=True)
class TrainingResult:
    booster: xgb.Booster
    calibration: dict
    threshold: dict
    metrics: dict  # hold-out metrics of the calibrated pd
    row_counts: dict
    holdout_labels: np.ndarray
    holdout_pd: np.ndarray
    selection: dict  # how the model was chosen: strategies, trees, search, calibrations (plain data)
    reliability: list[dict]
    feature_importance: list[dict]
    timings: dict
    holdout_true_pd: np.ndarray | None = None  # the oracle's pd on the hold-out rows, when known
    oracle: dict | None = None  # oracle metrics and the model's gap to them on the same rows
    # Fraction of the population's non-defaulters the rows kept (thinned in Spark); 1.0: all of them.
    negative_rate: float = 1.0


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


def feature_importance(booster: xgb.Booster) -> list[dict]:
    """Every feature's total gain, share of the total, mean gain per split and number of splits."""
    scores = {kind: booster.get_score(importance_type=kind) for kind in IMPORTANCE_TYPES}
    total = sum(scores["total_gain"].values()) or 1.0
    rows = [
        {
            "feature": f.name,
            "total_gain": float(scores["total_gain"].get(f.name, 0.0)),
            "gain_share": float(scores["total_gain"].get(f.name, 0.0)) / total,
            "gain": float(scores["gain"].get(f.name, 0.0)),
            "splits": int(scores["weight"].get(f.name, 0)),
        }
        for f in FEATURES
    ]
    return sorted(rows, key=lambda r: (-r["total_gain"], r["feature"]))


def _choose_model(
    matrix: np.ndarray, labels: np.ndarray, cfg: TrainConfig, negative_rate: float
) -> tuple[CVResult, dict, list]:
    """Cross-validate the strategies (and, if enabled, a parameter search); return the winner."""
    selection = cfg.selection
    folds = stratified_folds(labels, selection.cv_folds, cfg.seed)
    started = time.monotonic()
    candidates, skipped = applicable_strategies(strategies(selection), labels, folds)
    compared = compare_strategies(
        matrix,
        labels,
        folds,
        candidates,
        cfg.xgboost,
        cfg.seed,
        selection.metric,
        selection.round_step,
        selection.patience,
        negative_rate,
    )
    best = best_result(compared, selection.metric)
    report = {
        "metric": selection.metric,
        "cv_folds": selection.cv_folds,
        "comparison": [r.summary() for r in compared],
        "cv_seconds": round(time.monotonic() - started, 2),
    }
    if skipped:
        report["skipped_strategies"] = skipped
    if cfg.search.enabled:
        outcome = random_search(
            matrix,
            labels,
            folds,
            best.strategy,
            cfg.xgboost,
            cfg.seed,
            selection.metric,
            selection.round_step,
            selection.patience,
            cfg.search.candidates,
            cfg.search.time_budget_seconds,
            negative_rate,
        )
        report["search"] = {"strategy": best.strategy.name, **outcome.summary()}
        contenders = [best, *outcome.results]
        best = contenders[best_index([r.score for r in contenders], selection.metric)]
    return best, report, folds


def fit(
    pdf: pd.DataFrame, cfg: TrainConfig, true_pd: pd.Series | None = None, negative_rate: float = 1.0
) -> TrainingResult:
    """Train on labelled rows (`uuid`, features, `default`), in a fixed row order for reproducibility.

    `true_pd` (by uuid) is the truth of generated data: given, the hold-out metrics are set beside
    the metrics the true pd reaches on the same rows. `negative_rate` is the fraction of the real
    population's non-defaulters the rows hold (thinned in Spark); 1.0 when they are all there.
    """
    started = time.monotonic()
    labels = pdf[DEFAULT].to_numpy(dtype=np.int64)
    defaults = int(labels.sum())
    if defaults < MIN_DEFAULTS or len(labels) - defaults < MIN_DEFAULTS:
        raise InputError(
            f"training needs at least {MIN_DEFAULTS} defaults and {MIN_DEFAULTS} non-defaults; "
            f"got {defaults} and {len(labels) - defaults}"
        )
    matrix = feature_matrix(pdf, FEATURES)
    train_idx, holdout_idx = train_test_split(
        np.arange(len(labels)), test_size=cfg.holdout_fraction, stratify=labels, random_state=cfg.seed
    )
    train_idx = np.sort(train_idx)
    holdout_idx = np.sort(holdout_idx)
    train_matrix, train_labels = matrix[train_idx], labels[train_idx]
    if int(train_labels.sum()) < cfg.selection.cv_folds:
        raise InputError(
            f"{cfg.selection.cv_folds}-fold cross-validation needs at least {cfg.selection.cv_folds} "
            f"defaults among the training rows; got {int(train_labels.sum())}"
        )

    best, selection, folds = _choose_model(train_matrix, train_labels, cfg, negative_rate)
    chosen_at = time.monotonic()
    calibrations = compare_calibrations(
        best, train_labels, folds, cfg.selection.calibration_methods, negative_rate
    )
    method = calibrations[best_index([c[LOG_LOSS] for c in calibrations], LOG_LOSS)]["method"]

    sample = resample(train_labels, best.strategy, cfg.seed)
    booster = train_booster(
        train_matrix[sample.rows],
        train_labels[sample.rows],
        best.params,
        cfg.seed,
        best.rounds,
        sample.scale_pos_weight,
    )
    fitted = {
        row["method"]: fit_calibration(
            row["method"], best.oof_raw, train_labels, sample.negative_sampling_rate, negative_rate
        )
        for row in calibrations
    }
    calibration = fitted[method]
    fitted_at = time.monotonic()

    holdout_labels = labels[holdout_idx]
    raw = booster.inplace_predict(matrix[holdout_idx], validate_features=False)
    holdout_pd = apply_calibration(raw, calibration)
    for row in calibrations:  # for the record only: the choice above did not see the hold-out
        pds = apply_calibration(raw, fitted[row["method"]])
        row.update(holdout_log_loss=probability_metrics(holdout_labels, pds, negative_rate)[LOG_LOSS])
        row.update(holdout_mean_pd=population_mean(pds, holdout_labels, negative_rate))
    threshold = choose_threshold(holdout_labels, holdout_pd, cfg.threshold, negative_rate)
    metrics = evaluate(holdout_labels, holdout_pd, threshold["value"], negative_rate)
    metrics["mean_pd_before_correction"] = population_mean(raw, holdout_labels, negative_rate)
    if negative_rate != 1.0:
        metrics["non_defaulter_weight"] = 1.0 / negative_rate

    selection.update(
        strategy=best.strategy.name,
        rounds=best.rounds,
        cv_score=best.score,
        params=asdict(best.params),
        calibration_method=method,
        calibration_comparison=calibrations,
    )
    holdout_true_pd, oracle = _oracle(
        pdf[UUID].to_numpy()[holdout_idx], holdout_labels, holdout_pd, true_pd, negative_rate
    )
    row_counts = {
        "labelled_rows": len(labels),
        "train_rows": len(train_idx),
        "train_rows_after_resampling": len(sample.rows),
        "holdout_rows": len(holdout_idx),
        "train_defaults": int(train_labels.sum()),
        "holdout_defaults": int(holdout_labels.sum()),
    }
    timings = {
        "model_choice": round(chosen_at - started, 2),
        "final_fit": round(fitted_at - chosen_at, 2),
        "fit_total": round(time.monotonic() - started, 2),
    }
    log.info(
        "chose %s, %d trees, %s calibration; hold-out log loss %.5f, ROC AUC %.4f; fit in %.1fs",
        best.strategy.name,
        best.rounds,
        method,
        metrics[LOG_LOSS],
        metrics["roc_auc"],
        timings["fit_total"],
    )
    return TrainingResult(
        booster=booster,
        calibration=calibration,
        threshold=threshold,
        metrics=metrics,
        row_counts=row_counts,
        holdout_labels=holdout_labels,
        holdout_pd=holdout_pd,
        selection=selection,
        reliability=reliability_table(
            holdout_labels, holdout_pd, holdout_true_pd, negative_rate=negative_rate
        ),
        feature_importance=feature_importance(booster),
        timings=timings,
        holdout_true_pd=holdout_true_pd,
        oracle=oracle,
        negative_rate=negative_rate,
    )


def _oracle(
    uuids: np.ndarray, labels: np.ndarray, pds: np.ndarray, true_pd: pd.Series | None, negative_rate: float
) -> tuple[np.ndarray | None, dict | None]:
    """The true pd of the hold-out rows and the oracle's metrics beside the model's, on the same rows."""
    if true_pd is None:
        return None, None
    truth = true_pd.reindex(uuids).to_numpy(dtype=np.float64)
    known = ~np.isnan(truth)
    if not known.any() or labels[known].min() == labels[known].max():
        raise InputError("the truth file gives a true pd for too few hold-out rows to compare with")
    if not known.all():
        log.warning(
            "the truth file lacks %d of %d hold-out rows; compared on the rest", (~known).sum(), len(known)
        )
    oracle_metrics = probability_metrics(labels[known], truth[known], negative_rate)
    model_metrics = probability_metrics(labels[known], pds[known], negative_rate)
    return (
        truth if known.all() else None,
        {
            "rows": int(known.sum()),
            "metrics": oracle_metrics,
            "vs_model": oracle_comparison(model_metrics, oracle_metrics),
        },
    )
