"""Fitting: the hold-out set aside, the model chosen by cross-validation, the final booster fitted,
calibrated and given its threshold, and the hold-out metrics of the result.

The hold-out is used only to check the chosen model and to set the threshold: the imbalance strategy,
the number of trees, the parameter search, the baseline challenger and the calibration are all
chosen by cross-validation on the training rows. Rows whose non-defaulters were thinned in Spark
(`negative_rate` < 1) are trained on as they are but judged as the real population.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

from defaultrisk.calibration import PRIOR_CORRECTION, apply_calibration, fit_calibration
from defaultrisk.errors import InputError
from defaultrisk.features import feature_matrix
from defaultrisk.schema import DEFAULT, FEATURES, UUID
from defaultrisk.training.calibration import compare_calibrations
from defaultrisk.training.challenger import Holdout, challenge, side_by_side
from defaultrisk.training.choice import choose_model
from defaultrisk.training.config import ALL_ROWS, TRAINING_ROWS, TrainConfig
from defaultrisk.training.metrics import (
    LOG_LOSS,
    evaluate,
    oracle_comparison,
    population_mean,
    probability_metrics,
    reliability_table,
)
from defaultrisk.training.selection import CVResult, CVRows, best_index, fit_recipe
from defaultrisk.training.threshold import choose_threshold

log = logging.getLogger(__name__)

MIN_DEFAULTS = 10  # fewer labelled defaults than this cannot give a stratified split and a threshold
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
    baseline: dict | None = None  # the untuned challenger: cross-validated score, hold-out metrics
    holdout_baseline_pd: np.ndarray | None = None
    monotone: dict | None = None  # stated constraints, their sweep check and their cost in AUC


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


def _split(labels: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The stratified training and hold-out rows (positions, ascending), after checking there are enough."""
    defaults = int(labels.sum())
    if defaults < MIN_DEFAULTS or len(labels) - defaults < MIN_DEFAULTS:
        raise InputError(
            f"training needs at least {MIN_DEFAULTS} defaults and {MIN_DEFAULTS} non-defaults; "
            f"got {defaults} and {len(labels) - defaults}"
        )
    train_idx, holdout_idx = train_test_split(
        np.arange(len(labels)), test_size=cfg.holdout_fraction, stratify=labels, random_state=cfg.seed
    )
    train_defaults = int(labels[train_idx].sum())
    if train_defaults < cfg.selection.cv_folds:
        raise InputError(
            f"{cfg.selection.cv_folds}-fold cross-validation needs at least {cfg.selection.cv_folds} "
            f"defaults among the training rows; got {train_defaults}"
        )
    return np.sort(train_idx), np.sort(holdout_idx)


@dataclass(frozen=True)
class _Fitted:
    """The chosen model fitted on all training rows, with every calibration map fitted on its
    out-of-fold predictions and their cross-validated comparison."""

    booster: xgb.Booster
    maps: dict[str, dict]
    comparison: list[dict]
    resampled_rows: int


def _final_fit(rows: CVRows, best: CVResult, methods) -> _Fitted:
    calibrations = compare_calibrations(best, rows, methods)
    booster, sample = fit_recipe(best, rows, rows.matrix, rows.labels)
    fitted = {
        row["method"]: fit_calibration(
            row["method"], best.oof_raw, rows.labels, sample.negative_sampling_rate, rows.negative_rate
        )
        for row in calibrations
    }
    return _Fitted(booster, fitted, calibrations, len(sample.rows))


def _fit_on_all_rows(matrix: np.ndarray, labels: np.ndarray, best: CVResult, fitted: _Fitted, rows: CVRows):
    """The kept recipe (strategy, parameters, trees) fitted again on every labelled row, once the
    hold-out has checked it; its calibration maps are the same out-of-fold fits, with prior correction
    taking this fit's own sampling rate."""
    booster, sample = fit_recipe(best, rows, matrix, labels)
    maps = {
        method: (
            fit_calibration(method, None, None, sample.negative_sampling_rate, rows.negative_rate)
            if method == PRIOR_CORRECTION
            else calibration
        )
        for method, calibration in fitted.maps.items()
    }
    return _Fitted(booster, maps, fitted.comparison, len(sample.rows))


def _final_fit_record(labels: np.ndarray, shipped: _Fitted) -> dict:
    return {
        "rows": ALL_ROWS,
        "labelled_rows": len(labels),
        "defaults": int(labels.sum()),
        "rows_after_resampling": shipped.resampled_rows,
        "trees": shipped.booster.num_boosted_rounds(),
    }


def _on_holdout(
    fitted: _Fitted, matrix: np.ndarray, labels: np.ndarray, cfg: TrainConfig, negative_rate: float
):
    """The chosen calibration's hold-out pd, threshold and metrics; every map's hold-out figures, for
    the record only (the choice did not see the hold-out)."""
    calibrations = fitted.comparison
    method = calibrations[best_index([c[LOG_LOSS] for c in calibrations], LOG_LOSS)]["method"]
    raw = fitted.booster.inplace_predict(matrix, validate_features=False)
    holdout_pd = apply_calibration(raw, fitted.maps[method])
    for row in calibrations:
        pds = apply_calibration(raw, fitted.maps[row["method"]])
        row.update(holdout_log_loss=probability_metrics(labels, pds, negative_rate)[LOG_LOSS])
        row.update(holdout_mean_pd=population_mean(pds, labels, negative_rate))
    threshold = choose_threshold(labels, holdout_pd, cfg.threshold, negative_rate)
    metrics = evaluate(labels, holdout_pd, threshold["value"], negative_rate)
    metrics["mean_pd_before_correction"] = population_mean(raw, labels, negative_rate)
    if negative_rate != 1.0:
        metrics["non_defaulter_weight"] = 1.0 / negative_rate
    return method, holdout_pd, threshold, metrics


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
    train_idx, holdout_idx = _split(labels, cfg)
    matrix = feature_matrix(pdf, FEATURES)
    rows = CVRows.split(matrix[train_idx], labels[train_idx], cfg.selection.cv_folds, cfg.seed, negative_rate)
    best, selection, baseline = choose_model(rows, cfg)
    chosen_at = time.monotonic()
    fitted = _final_fit(rows, best, cfg.selection.calibration_methods)
    fitted_at = time.monotonic()
    holdout_labels = labels[holdout_idx]
    method, holdout_pd, threshold, metrics = _on_holdout(
        fitted, matrix[holdout_idx], holdout_labels, cfg, negative_rate
    )
    selection.update(
        strategy=best.strategy.name,
        rounds=best.rounds,
        cv_score=best.score,
        fold_scores=list(best.fold_scores),
        params=asdict(best.params),
        calibration_method=method,
        calibration_comparison=fitted.comparison,
    )
    shipped = fitted
    if cfg.final_fit == ALL_ROWS:
        shipped = _fit_on_all_rows(matrix, labels, best, fitted, rows)
        selection["final_fit"] = _final_fit_record(labels, shipped)
    else:
        trees = fitted.booster.num_boosted_rounds()
        selection["final_fit"] = {"rows": TRAINING_ROWS, "labelled_rows": len(train_idx), "trees": trees}
    holdout = Holdout(matrix[holdout_idx], holdout_labels)
    challenges = challenge(rows, best, baseline, fitted.booster, holdout, shipped=shipped.booster)
    if challenges.baseline is not None:
        challenges.baseline["vs_model"] = side_by_side(metrics, challenges.baseline["holdout"])
    holdout_true_pd, oracle = _oracle(
        pdf[UUID].to_numpy()[holdout_idx], holdout_labels, holdout_pd, true_pd, negative_rate
    )
    row_counts = _row_counts(labels, train_idx, holdout_idx, fitted.resampled_rows)
    timings = _timings(started, chosen_at, fitted_at)
    _log_choice(best, method, metrics, timings)
    return TrainingResult(
        booster=shipped.booster,
        calibration=shipped.maps[method],
        threshold=threshold,
        metrics=metrics,
        row_counts=row_counts,
        holdout_labels=holdout_labels,
        holdout_pd=holdout_pd,
        selection=selection,
        reliability=reliability_table(
            holdout_labels, holdout_pd, holdout_true_pd, negative_rate=negative_rate
        ),
        feature_importance=feature_importance(shipped.booster),
        timings=timings,
        holdout_true_pd=holdout_true_pd,
        oracle=oracle,
        negative_rate=negative_rate,
        baseline=challenges.baseline,
        holdout_baseline_pd=challenges.baseline_pd,
        monotone=challenges.monotone,
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


def _log_choice(best: CVResult, method: str, metrics: dict, timings: dict) -> None:
    log.info(
        "chose %s, %d trees, %s calibration; hold-out log loss %.5f, ROC AUC %.4f; fit in %.1fs",
        best.strategy.name,
        best.rounds,
        method,
        metrics[LOG_LOSS],
        metrics["roc_auc"],
        timings["fit_total"],
    )


def _row_counts(labels: np.ndarray, train_idx: np.ndarray, holdout_idx: np.ndarray, resampled: int) -> dict:
    return {
        "labelled_rows": len(labels),
        "train_rows": len(train_idx),
        "train_rows_after_resampling": resampled,
        "holdout_rows": len(holdout_idx),
        "train_defaults": int(labels[train_idx].sum()),
        "holdout_defaults": int(labels[holdout_idx].sum()),
    }


def _timings(started: float, chosen_at: float, fitted_at: float) -> dict:
    now = time.monotonic()
    return {
        "model_choice": round(chosen_at - started, 2),
        "final_fit": round(fitted_at - chosen_at, 2),
        "challengers": round(now - fitted_at, 2),
        "fit_total": round(now - started, 2),
    }
