"""Cross-validation without the hold-out: stratified folds, the imbalance strategies and the number of
trees, and the out-of-fold predictions the model choice and the calibration comparison read.

`CVRows` carries the training rows, their folds, the seed and `negative_rate`, the share of the real
population's non-defaulters the rows hold (below 1 when thinned in Spark): every pd is corrected and
every metric weighted back by it, so scores and choices are those of the real base rate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from sklearn.model_selection import StratifiedKFold

from defaultrisk.calibration import prior_correction
from defaultrisk.features import dmatrix
from defaultrisk.training.config import SelectionConfig, XGBoostParams
from defaultrisk.training.metrics import (
    LOWER_IS_BETTER,
    PROBABILITY_METRICS,
    metric_value,
    probability_metrics,
)
from defaultrisk.training.resampling import Resampled, Strategy, resample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CVRows:
    """The rows cross-validation works on: features, labels, stratified folds, seed, non-defaulter rate."""

    matrix: np.ndarray
    labels: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    seed: int
    negative_rate: float = 1.0

    @classmethod
    def split(cls, matrix: np.ndarray, labels: np.ndarray, n_folds: int, seed: int, negative_rate: float):
        return cls(matrix, labels, stratified_folds(labels, n_folds, seed), seed, negative_rate)


@dataclass(frozen=True)
class CVResult:
    """One strategy and parameter set, cross-validated; its pds corrected to the base rate."""

    strategy: Strategy
    params: XGBoostParams
    metric: str
    rounds: int  # the number of trees with the best mean score over the folds
    score: float
    score_std: float
    fold_metrics: dict  # every probability metric at `rounds`, averaged over the folds
    oof_raw: np.ndarray  # each row's raw probability from the fold model that did not train on it
    oof_sampling_rate: np.ndarray  # that fold model's negative sampling rate
    seconds: float
    # True when patience stopped the growth before n_estimators: more trees would not change the result.
    stopped_early: bool = False
    fold_scores: tuple[float, ...] = ()  # each fold's score at `rounds` (the same folds for every result)

    def summary(self) -> dict:
        """The row of the comparison table (plain data, for the manifest and the report)."""
        return {
            "strategy": self.strategy.name,
            "kind": self.strategy.kind,
            "ratio": self.strategy.ratio,
            "rounds": self.rounds,
            "metric": self.metric,
            "score": self.score,
            "score_std": self.score_std,
            "fold_scores": list(self.fold_scores),
            **{name: self.fold_metrics[name] for name in (*PROBABILITY_METRICS, "mean_pd")},
            "seconds": round(self.seconds, 2),
        }


def stratified_folds(labels: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(np.sort(fit), np.sort(valid)) for fit, valid in splitter.split(np.zeros(len(labels)), labels)]


def round_checkpoints(n_estimators: int, step: int) -> np.ndarray:
    return np.unique(np.append(np.arange(step, n_estimators + 1, step), n_estimators))


def best_index(scores: Sequence[float], metric: str) -> int:
    """The first best: fewer trees, or the earlier strategy, on a tie."""
    values = np.asarray(scores, dtype=np.float64)
    return int(np.argmin(values) if LOWER_IS_BETTER[metric] else np.argmax(values))


def booster_params(params: XGBoostParams, seed: int, scale_pos_weight: float = 1.0) -> dict:
    chosen = params.booster_params(seed)
    if scale_pos_weight != 1.0:
        chosen["scale_pos_weight"] = scale_pos_weight
    return chosen


class _FoldRun:
    """One fold's booster, grown tree by tree, and its validation margin, updated per checkpoint.

    Only the trees added since the last checkpoint are evaluated, so reading the score every few
    trees costs about one prediction of the whole ensemble.
    """

    def __init__(self, rows: CVRows, fold: tuple[np.ndarray, np.ndarray], strategy: Strategy, params):
        fit_rows, valid_rows = fold
        sample = resample(rows.labels[fit_rows], strategy, rows.seed)
        kept = fit_rows[sample.rows]
        self.dtrain = dmatrix(rows.matrix[kept], rows.labels[kept])
        self.booster = xgb.Booster(
            booster_params(params, rows.seed, sample.scale_pos_weight), cache=[self.dtrain]
        )
        self.valid_rows = valid_rows
        self.valid_matrix = rows.matrix[valid_rows]
        self.sampling_rate = sample.negative_sampling_rate
        self.trees = 0
        self.margin: np.ndarray | None = None
        self.base_margin: np.ndarray | None = None

    def _margin(self, start: int, end: int) -> np.ndarray:
        margin = self.booster.inplace_predict(
            self.valid_matrix, iteration_range=(start, end), predict_type="margin", validate_features=False
        )
        return np.asarray(margin, dtype=np.float64)

    def grow_to(self, trees: int) -> np.ndarray:
        """Add trees up to `trees` and return the raw probability of the validation rows."""
        start = self.trees
        while self.trees < trees:
            self.booster.update(self.dtrain, self.trees)
            self.trees += 1
        if self.margin is None:
            self.margin = self._margin(0, trees)
        else:
            if self.base_margin is None:  # each range's margin carries the base score once
                self.base_margin = self._margin(0, 1) + self._margin(1, 2) - self._margin(0, 2)
            self.margin = self.margin + self._margin(start, trees) - self.base_margin
        return 1.0 / (1.0 + np.exp(-self.margin))


def _fold_metrics(rows: CVRows, oof_raw: np.ndarray, sampling_rate: np.ndarray) -> dict:
    """Every probability metric of the out-of-fold pds, averaged over the folds."""
    per_fold = [
        probability_metrics(
            rows.labels[valid],
            prior_correction(oof_raw[valid], sampling_rate[valid] * rows.negative_rate),
            rows.negative_rate,
        )
        for _, valid in rows.folds
    ]
    names = (*PROBABILITY_METRICS, "mean_pd")
    return {name: float(np.mean([m[name] for m in per_fold])) for name in names}


def cross_validate(
    rows: CVRows,
    strategy: Strategy,
    params: XGBoostParams,
    selection: SelectionConfig,
    deadline: float | None = None,
) -> CVResult | None:
    """Score a strategy on every fold (its pd prior-corrected) each `round_step` trees, folds in step.

    Each fold's training rows are resampled, never its validation rows, so every score is measured at
    the real base rate. Growing stops when the mean score over the folds has not improved for
    `patience` checkpoints. Returns None if `deadline` (time.monotonic) passes first.
    """
    run = CVRun(rows, strategy, params, selection)
    try:
        return run.advance(params.n_estimators, deadline)
    finally:
        run.close()


class CVRun:
    """One strategy and parameter set cross-validated in steps: `advance(trees)` grows every fold up to
    `trees` (read every `round_step` trees, early stopping as it goes) and can be called again with more;
    the result equals that of one call with the larger number. `close()` frees the folds' threads."""

    def __init__(self, rows: CVRows, strategy: Strategy, params: XGBoostParams, selection: SelectionConfig):
        self.rows, self.strategy, self.params, self.selection = rows, strategy, params, selection
        # The folds grow side by side, each on its own thread from start to end (XGBoost releases the
        # GIL). XGBoost's random engine is per thread: a fold that always runs on its own thread draws
        # the same subsamples whatever the scheduling, so the result is the same on any machine.
        self.threads = [ThreadPoolExecutor(max_workers=1) for _ in rows.folds]
        self.seconds = 0.0
        started = time.monotonic()
        self.runs = [
            t.submit(_FoldRun, rows, fold, strategy, params).result()
            for t, fold in zip(self.threads, rows.folds, strict=True)
        ]
        self.sampling_rate = np.ones(len(rows.labels))
        for run in self.runs:
            self.sampling_rate[run.valid_rows] = run.sampling_rate
        self.checkpoints: list[int] = []
        self.scores: list[np.ndarray] = []  # per checkpoint, each fold's score
        self.best = -1
        self.oof_raw = np.empty(len(rows.labels))
        self.stopped = False  # patience ran out: more trees change nothing
        self.seconds += time.monotonic() - started

    def _read(self, trees: int) -> None:
        rows = self.rows
        futures = [t.submit(run.grow_to, trees) for t, run in zip(self.threads, self.runs, strict=True)]
        raw = np.empty(len(rows.labels))
        fold_scores = np.empty(len(self.runs))
        for f, (run, future) in enumerate(zip(self.runs, futures, strict=True)):
            raw[run.valid_rows] = future.result()
            pds = prior_correction(raw[run.valid_rows], run.sampling_rate * rows.negative_rate)
            labels = rows.labels[run.valid_rows]
            fold_scores[f] = metric_value(self.selection.metric, labels, pds, rows.negative_rate)
        self.checkpoints.append(trees)
        self.scores.append(fold_scores)
        c = len(self.checkpoints) - 1
        if best_index([s.mean() for s in self.scores], self.selection.metric) == c:
            self.best, self.oof_raw = c, raw
        elif c - self.best >= self.selection.patience:
            self.stopped = True

    def advance(self, trees: int, deadline: float | None = None) -> CVResult | None:
        """Grow up to `trees` (at most n_estimators) unless stopped; None if `deadline` passes first."""
        started = time.monotonic()
        done = self.checkpoints[-1] if self.checkpoints else 0
        for checkpoint in round_checkpoints(min(trees, self.params.n_estimators), self.selection.round_step):
            if self.stopped or checkpoint <= done:
                continue
            if deadline is not None and time.monotonic() > deadline:
                return None
            self._read(int(checkpoint))
        self.seconds += time.monotonic() - started
        return self.result()

    def result(self) -> CVResult:
        best = self.scores[self.best]
        return CVResult(
            strategy=self.strategy,
            params=self.params,
            metric=self.selection.metric,
            rounds=int(self.checkpoints[self.best]),
            score=float(best.mean()),
            score_std=float(best.std()),
            fold_metrics=_fold_metrics(self.rows, self.oof_raw, self.sampling_rate),
            oof_raw=self.oof_raw,
            oof_sampling_rate=self.sampling_rate,
            seconds=self.seconds,
            stopped_early=self.stopped,
            fold_scores=tuple(float(v) for v in best),
        )

    def close(self) -> None:
        _shutdown(self.threads)


def trees_for(result: CVResult, rows: CVRows, fit_rows: int) -> int:
    """`result`'s number of trees for a fit on `fit_rows` rows: the cross-validated number grown in
    proportion to the rows, as the folds fitted on fewer (more rows support more trees before they
    overfit), at most n_estimators."""
    fold_rows = float(np.mean([len(fit) for fit, _ in rows.folds]))
    return int(min(result.params.n_estimators, max(1, round(result.rounds * fit_rows / fold_rows))))


def fit_recipe(
    result: CVResult,
    rows: CVRows,
    matrix: np.ndarray,
    labels: np.ndarray,
    params: XGBoostParams | None = None,
) -> tuple[xgb.Booster, Resampled]:
    """`result`'s strategy, parameters (or `params`) and trees, grown with the rows, fitted on
    `matrix` and `labels`; the booster and the resampling it was fitted on."""
    sample = resample(labels, result.strategy, rows.seed)
    booster = train_booster(
        matrix[sample.rows],
        labels[sample.rows],
        params or result.params,
        rows.seed,
        trees_for(result, rows, len(labels)),
        sample.scale_pos_weight,
    )
    return booster, sample


def train_booster(
    matrix: np.ndarray, labels: np.ndarray, params: XGBoostParams, seed: int, rounds: int, weight: float = 1.0
) -> xgb.Booster:
    """A booster of `rounds` trees on the given rows; `weight` is the defaulters' (scale_pos_weight)."""
    return xgb.train(booster_params(params, seed, weight), dmatrix(matrix, labels), num_boost_round=rounds)


def _shutdown(threads: list[ThreadPoolExecutor]) -> None:
    for thread in threads:
        thread.shutdown()


def compare_strategies(
    rows: CVRows, candidates: Sequence[Strategy], params: XGBoostParams, selection: SelectionConfig
) -> list[CVResult]:
    """Cross-validate every strategy with the same folds, parameters and seed."""
    results = []
    for strategy in candidates:
        result = cross_validate(rows, strategy, params, selection)
        log.info(
            "cv %s: %s %.5f (sd %.5f) at %d trees in %.1fs",
            strategy.name,
            selection.metric,
            result.score,
            result.score_std,
            result.rounds,
            result.seconds,
        )
        results.append(result)
    return results
