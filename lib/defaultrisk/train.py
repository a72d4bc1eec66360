"""Training: stratified hold-out, random undersampling, XGBoost, prior correction, threshold, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from imblearn.under_sampling import RandomUnderSampler
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from defaultrisk.config import ThresholdRule, TrainConfig
from defaultrisk.errors import ConfigError, InputError
from defaultrisk.features import feature_matrix, xgb_feature_types
from defaultrisk.model import PRIOR_CORRECTION, prior_correction
from defaultrisk.schema import DEFAULT, FEATURE_NAMES, FEATURES

log = logging.getLogger(__name__)

MIN_DEFAULTS = 10  # fewer labelled defaults than this cannot give a stratified split and a threshold


@dataclass(frozen=True)
class TrainingResult:
    booster: xgb.Booster
    calibration: dict
    threshold: dict
    metrics: dict
    row_counts: dict
    holdout_labels: np.ndarray
    holdout_pd: np.ndarray


def undersample(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Indices kept by imbalanced-learn's random undersampling of the non-defaulters, in input order."""
    sampler = RandomUnderSampler(sampling_strategy=ratio, random_state=seed)
    try:
        kept, _ = sampler.fit_resample(np.arange(len(labels)).reshape(-1, 1), labels)
    except ValueError as exc:
        raise ConfigError(f"undersampling_ratio {ratio} cannot be applied: {exc}") from exc
    return np.sort(kept.ravel())


def choose_threshold(labels: np.ndarray, pds: np.ndarray, rule: ThresholdRule) -> dict:
    """Apply the configured business rule on the hold-out; fall back to the best F1 if unreachable."""
    precision, recall, thresholds = precision_recall_curve(labels, pds)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    chosen = None
    if rule.rule == "target_precision":
        ok = np.flatnonzero((precision >= rule.target) & (recall > 0))
        chosen = ok[0] if ok.size else None  # thresholds ascend: the first is the lowest
    elif rule.rule == "target_recall":
        ok = np.flatnonzero(recall >= rule.target)
        chosen = ok[-1] if ok.size else None
    met = chosen is not None or rule.rule == "max_f1"
    if chosen is None:
        if rule.rule != "max_f1":
            log.warning(
                "threshold rule %s %s not reachable on the hold-out; best F1 used", rule.rule, rule.target
            )
        chosen = int(np.argmax(f1))
    return {
        "value": float(thresholds[chosen]),
        "rule": rule.rule,
        "target": rule.target,
        "rule_met": bool(met),
    }


def evaluate(labels: np.ndarray, pds: np.ndarray, threshold: float) -> dict:
    """Hold-out metrics of calibrated pds: ranking, calibration, and the decision at the threshold."""
    flagged = pds >= threshold
    tp = int(np.sum(flagged & (labels == 1)))
    fp = int(np.sum(flagged & (labels == 0)))
    fn = int(np.sum(~flagged & (labels == 1)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "rows": len(labels),
        "defaults": int(labels.sum()),
        "default_rate": float(labels.mean()),
        "mean_pd": float(pds.mean()),
        "roc_auc": float(roc_auc_score(labels, pds)),
        "pr_auc": float(average_precision_score(labels, pds)),
        "brier": float(brier_score_loss(labels, pds)),
        "log_loss": float(log_loss(labels, np.clip(pds, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "threshold": float(threshold),
        "precision_at_threshold": precision,
        "recall_at_threshold": recall,
        "f1_at_threshold": f1,
        "alert_rate": float(flagged.mean()),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
    }


def fit(pdf: pd.DataFrame, cfg: TrainConfig) -> TrainingResult:
    """Train on labelled rows (`uuid`, features, `default`), in a fixed row order for reproducibility."""
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
    train_labels = labels[train_idx]
    kept = train_idx[undersample(train_labels, cfg.undersampling_ratio, cfg.seed)]
    negatives_before = int(np.sum(train_labels == 0))
    negatives_kept = int(np.sum(labels[kept] == 0))
    negative_sampling_rate = negatives_kept / negatives_before

    dtrain = xgb.DMatrix(
        matrix[kept],
        label=labels[kept],
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )
    booster = xgb.train(
        cfg.xgboost.booster_params(cfg.seed), dtrain, num_boost_round=cfg.xgboost.n_estimators
    )

    holdout_labels = labels[holdout_idx]
    raw = booster.inplace_predict(matrix[holdout_idx], validate_features=False)
    holdout_pd = prior_correction(raw, negative_sampling_rate)
    threshold = choose_threshold(holdout_labels, holdout_pd, cfg.threshold)
    metrics = evaluate(holdout_labels, holdout_pd, threshold["value"])
    metrics["mean_pd_before_correction"] = float(np.mean(raw))
    calibration = {
        "method": PRIOR_CORRECTION,
        "negative_sampling_rate": negative_sampling_rate,
        "train_default_rate": float(train_labels.mean()),
        "undersampled_default_rate": float(labels[kept].mean()),
    }
    row_counts = {
        "labelled_rows": len(labels),
        "train_rows": len(train_idx),
        "train_rows_after_undersampling": len(kept),
        "holdout_rows": len(holdout_idx),
        "train_defaults": int(train_labels.sum()),
        "holdout_defaults": int(holdout_labels.sum()),
    }
    return TrainingResult(
        booster=booster,
        calibration=calibration,
        threshold=threshold,
        metrics=metrics,
        row_counts=row_counts,
        holdout_labels=holdout_labels,
        holdout_pd=holdout_pd,
    )
