"""How good a pd is, and how the model behind it was chosen, without looking at the hold-out.

Oracle metrics (what the true pd of generated data reaches), probability metrics and the reliability
table; the stratified cross-validation that compares imbalance strategies and picks the number of trees;
an optional seeded random search over XGBoost's main parameters; and the calibration maps fitted on the
out-of-fold predictions. Plain numpy and pandas: no Spark, no files except the truth file.

Rows whose non-defaulters were thinned in Spark before training (only a fraction `negative_rate` of them
kept) still describe the real population: every metric weights each non-defaulter by 1/negative_rate and
every pd is corrected by that rate as well, so scores, metrics and the model choice are those of the real
base rate. With negative_rate 1 nothing is weighted and the code paths are the unweighted ones.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from imblearn.under_sampling import RandomUnderSampler
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from defaultrisk.config import SelectionConfig, XGBoostParams
from defaultrisk.errors import ConfigError, InputError
from defaultrisk.features import xgb_feature_types
from defaultrisk.model import (
    ISOTONIC,
    PLATT,
    PRIOR_CORRECTION,
    SPARK_NEGATIVE_SAMPLING_RATE,
    apply_calibration,
    logit,
    prior_correction,
)
from defaultrisk.sample import TRUE_PD
from defaultrisk.schema import FEATURE_NAMES, FEATURES, UUID

log = logging.getLogger(__name__)

ROC_AUC = "roc_auc"
PR_AUC = "pr_auc"
BRIER = "brier"
LOG_LOSS = "log_loss"
PROBABILITY_METRICS = (ROC_AUC, PR_AUC, BRIER, LOG_LOSS)
LOWER_IS_BETTER = {ROC_AUC: False, PR_AUC: False, BRIER: True, LOG_LOSS: True}
PD_CLIP = 1e-15  # a pd of exactly 0 or 1 would make one wrong row's log loss infinite
RELIABILITY_BINS = 10

NO_RESAMPLING = "none"
UNDERSAMPLE = "undersample"
CLASS_WEIGHT = "class_weight"

# The random search draws from these ranges (log-uniform where the scale matters more than the step).
SEARCH_MAX_DEPTH = (2, 6)
SEARCH_LEARNING_RATE = (0.02, 0.3)
SEARCH_MIN_CHILD_WEIGHT = (0.5, 50.0)
SEARCH_SUBSAMPLE = (0.5, 1.0)
SEARCH_COLSAMPLE = (0.4, 1.0)
SEARCH_REG_LAMBDA = (0.1, 50.0)
SEARCH_STREAM = 101  # the search's own random stream, so adding it changes nothing else

PLATT_ITERATIONS = 50
PLATT_TOLERANCE = 1e-10
PLATT_RIDGE = 1e-9  # keeps Newton's step defined when every raw probability is the same


# ---- metrics -------------------------------------------------------------------------------------------


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
    return {
        "rows": len(labels),
        "defaults": int(labels.sum()),
        "default_rate": _mean(labels, weights),
        "mean_pd": _mean(pds, weights),
        **{name: metric_value(name, labels, pds, negative_rate) for name in PROBABILITY_METRICS},
    }


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
        if true_pd is not None:
            entry["mean_true_pd"] = _mean(np.asarray(true_pd, dtype=np.float64)[rows], w)
        table.append(entry)
    return table


def read_truth(path: str | Path) -> pd.Series:
    """The true pd of generated data (`uuid;true_pd`, as `scripts/make_sample_data.py` writes it)."""
    try:
        frame = pd.read_csv(
            path, sep=";", dtype={UUID: str}, float_precision="round_trip", keep_default_na=False
        )
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read truth file {path}: {exc}") from exc
    if list(frame.columns) != [UUID, TRUE_PD]:
        raise InputError(f"truth file {path} must have the header {UUID};{TRUE_PD}")
    values = pd.to_numeric(frame[TRUE_PD], errors="coerce")
    if values.isna().any() or not values.between(0.0, 1.0).all():
        raise InputError(f"truth file {path}: every {TRUE_PD} must be a probability in [0, 1]")
    if frame[UUID].duplicated().any():
        raise InputError(f"truth file {path}: a uuid occurs more than once")
    return pd.Series(values.to_numpy(dtype=np.float64), index=frame[UUID], name=TRUE_PD)


# ---- imbalance strategies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strategy:
    """How the training rows meet the class imbalance: as they are, undersampled, or weighted."""

    kind: str
    ratio: float = 1.0  # minority:majority ratio reached by undersampling or weighting

    @property
    def name(self) -> str:
        return NO_RESAMPLING if self.kind == NO_RESAMPLING else f"{self.kind}_{self.ratio:g}"


@dataclass(frozen=True)
class Resampled:
    rows: np.ndarray  # positions of the rows the booster trains on, ascending
    scale_pos_weight: float
    # The strategy multiplies the odds of default by 1/b; prior correction with b undoes it.
    negative_sampling_rate: float


def strategies(selection: SelectionConfig) -> list[Strategy]:
    chosen = [Strategy(NO_RESAMPLING)] if selection.no_resampling else []
    chosen += [Strategy(UNDERSAMPLE, r) for r in selection.undersampling_ratios]
    chosen += [Strategy(CLASS_WEIGHT, r) for r in selection.class_weight_ratios]
    return chosen


def applicable_strategies(
    candidates: Sequence[Strategy], labels: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[Strategy], list[dict]]:
    """The strategies that can act on these rows, and those set aside with the reason.

    Undersampling or weighting to a minority:majority ratio the rows already exceed would have to drop
    defaulters or weight them down; rows whose non-defaulters were thinned in Spark can be there already.
    """
    subsets = [labels, *(labels[fit_rows] for fit_rows, _ in folds)]
    reached = max(int(s.sum()) / max(int(np.sum(s == 0)), 1) for s in subsets)
    kept, skipped = [], []
    for strategy in candidates:
        if strategy.kind != NO_RESAMPLING and strategy.ratio < reached:
            reason = f"ratio {strategy.ratio:g} is below the rows' own default ratio {reached:.4g}"
            log.warning("strategy %s skipped: %s", strategy.name, reason)
            skipped.append({"strategy": strategy.name, "reason": reason})
        else:
            kept.append(strategy)
    if not kept:
        raise ConfigError(
            f"no imbalance strategy applies: the training rows' default ratio is {reached:.4g}, above "
            "every undersampling and class weight ratio; give a higher ratio or enable no_resampling"
        )
    return kept, skipped


def undersample(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Indices kept by imbalanced-learn's random undersampling of the non-defaulters, in input order."""
    sampler = RandomUnderSampler(sampling_strategy=ratio, random_state=seed)
    try:
        kept, _ = sampler.fit_resample(np.arange(len(labels)).reshape(-1, 1), labels)
    except ValueError as exc:
        raise ConfigError(f"undersampling ratio {ratio} cannot be applied: {exc}") from exc
    return np.sort(kept.ravel())


def resample(labels: np.ndarray, strategy: Strategy, seed: int) -> Resampled:
    """The rows and weight a strategy trains on, and the odds factor its pd must be corrected by."""
    everything = np.arange(len(labels))
    negatives = int(np.sum(labels == 0))
    if strategy.kind == NO_RESAMPLING:
        return Resampled(everything, 1.0, 1.0)
    if strategy.kind == UNDERSAMPLE:
        kept = undersample(labels, strategy.ratio, seed)
        return Resampled(kept, 1.0, int(np.sum(labels[kept] == 0)) / negatives)
    if strategy.kind == CLASS_WEIGHT:
        weight = strategy.ratio * negatives / int(labels.sum())
        if weight < 1.0:
            raise ConfigError(
                f"class weight ratio {strategy.ratio} is below the data's default ratio; it would "
                "weight the defaulters down"
            )
        return Resampled(everything, weight, 1.0 / weight)
    raise ValueError(f"unknown strategy {strategy.kind!r}")


def booster_params(params: XGBoostParams, seed: int, scale_pos_weight: float = 1.0) -> dict:
    chosen = params.booster_params(seed)
    if scale_pos_weight != 1.0:
        chosen["scale_pos_weight"] = scale_pos_weight
    return chosen


def training_matrix(matrix: np.ndarray, labels: np.ndarray) -> xgb.DMatrix:
    return xgb.DMatrix(
        matrix,
        label=labels,
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )


def train_booster(
    matrix: np.ndarray,
    labels: np.ndarray,
    params: XGBoostParams,
    seed: int,
    rounds: int,
    scale_pos_weight: float = 1.0,
) -> xgb.Booster:
    return xgb.train(
        booster_params(params, seed, scale_pos_weight),
        training_matrix(matrix, labels),
        num_boost_round=rounds,
    )


# ---- cross-validation ----------------------------------------------------------------------------------


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


class _FoldRun:
    """One fold's booster, grown tree by tree, and its validation margin, updated per checkpoint.

    Only the trees added since the last checkpoint are evaluated, so reading the score every few
    trees costs about one prediction of the whole ensemble.
    """

    def __init__(
        self,
        matrix: np.ndarray,
        labels: np.ndarray,
        fit_rows: np.ndarray,
        valid_rows: np.ndarray,
        strategy: Strategy,
        params: XGBoostParams,
        seed: int,
    ):
        sample = resample(labels[fit_rows], strategy, seed)
        rows = fit_rows[sample.rows]
        self.dtrain = training_matrix(matrix[rows], labels[rows])
        self.booster = xgb.Booster(booster_params(params, seed, sample.scale_pos_weight), cache=[self.dtrain])
        self.valid_rows = valid_rows
        self.valid_matrix = matrix[valid_rows]
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


def cross_validate(
    matrix: np.ndarray,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    strategy: Strategy,
    params: XGBoostParams,
    seed: int,
    metric: str,
    round_step: int,
    patience: int,
    deadline: float | None = None,
    negative_rate: float = 1.0,
) -> CVResult | None:
    """Score a strategy on every fold (its pd prior-corrected) each `round_step` trees, folds in step.

    Each fold's training rows are resampled, never its validation rows, so every score is measured at
    the real base rate (rows thinned in Spark: corrected and weighted back by `negative_rate`). Growing
    stops when the mean score over the folds has not improved for `patience` checkpoints. Returns None
    if `deadline` (time.monotonic) passes first.
    """
    started = time.monotonic()
    runs = [_FoldRun(matrix, labels, fit, valid, strategy, params, seed) for fit, valid in folds]
    sampling_rate = np.ones(len(labels))
    for run in runs:
        sampling_rate[run.valid_rows] = run.sampling_rate
    checkpoints = round_checkpoints(params.n_estimators, round_step)
    scores = np.full((len(folds), len(checkpoints)), np.nan)
    oof_raw = np.empty(len(labels))
    best = -1
    for c, trees in enumerate(checkpoints):
        if deadline is not None and time.monotonic() > deadline:
            return None
        raw = np.empty(len(labels))
        for f, run in enumerate(runs):
            raw[run.valid_rows] = run.grow_to(int(trees))
            pds = prior_correction(raw[run.valid_rows], run.sampling_rate * negative_rate)
            scores[f, c] = metric_value(metric, labels[run.valid_rows], pds, negative_rate)
        mean = scores[:, : c + 1].mean(axis=0)
        if best_index(mean, metric) == c:
            best = c
            oof_raw = raw
        elif c - best >= patience:
            break
    per_fold = [
        probability_metrics(
            labels[valid],
            prior_correction(oof_raw[valid], sampling_rate[valid] * negative_rate),
            negative_rate,
        )
        for _, valid in folds
    ]
    names = (*PROBABILITY_METRICS, "mean_pd")
    return CVResult(
        strategy=strategy,
        params=params,
        metric=metric,
        rounds=int(checkpoints[best]),
        score=float(scores[:, best].mean()),
        score_std=float(scores[:, best].std()),
        fold_metrics={name: float(np.mean([m[name] for m in per_fold])) for name in names},
        oof_raw=oof_raw,
        oof_sampling_rate=sampling_rate,
        seconds=time.monotonic() - started,
    )


def compare_strategies(
    matrix: np.ndarray,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    candidates: Sequence[Strategy],
    params: XGBoostParams,
    seed: int,
    metric: str,
    round_step: int,
    patience: int,
    negative_rate: float = 1.0,
) -> list[CVResult]:
    """Cross-validate every strategy with the same folds, parameters and seed."""
    results = []
    for strategy in candidates:
        result = cross_validate(
            matrix, labels, folds, strategy, params, seed, metric, round_step, patience, None, negative_rate
        )
        log.info(
            "cv %s: %s %.5f (sd %.5f) at %d trees in %.1fs",
            strategy.name,
            metric,
            result.score,
            result.score_std,
            result.rounds,
            result.seconds,
        )
        results.append(result)
    return results


def best_result(results: Sequence[CVResult], metric: str) -> CVResult:
    return results[best_index([r.score for r in results], metric)]


# ---- random search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchOutcome:
    results: list[CVResult]
    candidates: int  # how many were asked for
    stopped_by_time: bool
    seconds: float

    def summary(self) -> dict:
        return {
            "candidates_requested": self.candidates,
            "candidates_evaluated": len(self.results),
            "stopped_by_time_budget": self.stopped_by_time,
            "seconds": round(self.seconds, 2),
            "results": [{**r.summary(), "params": asdict(r.params)} for r in self.results],
        }


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def sample_params(rng: np.random.Generator, base: XGBoostParams) -> XGBoostParams:
    """One draw of XGBoost's main parameters; the number of trees stays the CV's to choose."""
    return replace(
        base,
        max_depth=int(rng.integers(SEARCH_MAX_DEPTH[0], SEARCH_MAX_DEPTH[1] + 1)),
        learning_rate=round(_log_uniform(rng, SEARCH_LEARNING_RATE), 4),
        min_child_weight=round(_log_uniform(rng, SEARCH_MIN_CHILD_WEIGHT), 3),
        subsample=round(float(rng.uniform(*SEARCH_SUBSAMPLE)), 3),
        colsample_bytree=round(float(rng.uniform(*SEARCH_COLSAMPLE)), 3),
        reg_lambda=round(_log_uniform(rng, SEARCH_REG_LAMBDA), 3),
    )


def random_search(
    matrix: np.ndarray,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    strategy: Strategy,
    base: XGBoostParams,
    seed: int,
    metric: str,
    round_step: int,
    patience: int,
    candidates: int,
    time_budget_seconds: float,
    negative_rate: float = 1.0,
) -> SearchOutcome:
    """Cross-validate seeded random parameter sets for one strategy, within a time budget.

    The draws depend on the seed only; the budget can cut the list short (a candidate still running
    when it expires is dropped), so a run that must repeat exactly needs a budget it does not reach.
    """
    started = time.monotonic()
    deadline = started + time_budget_seconds
    rng = np.random.default_rng([seed, SEARCH_STREAM])
    results: list[CVResult] = []
    stopped = False
    for _ in range(candidates):
        params = sample_params(rng, base)
        result = cross_validate(
            matrix,
            labels,
            folds,
            strategy,
            params,
            seed,
            metric,
            round_step,
            patience,
            deadline,
            negative_rate,
        )
        if result is None:
            stopped = True
            break
        log.info("search %s: %s %.5f at %d trees", asdict(params), metric, result.score, result.rounds)
        results.append(result)
    return SearchOutcome(results, candidates, stopped, time.monotonic() - started)


# ---- calibration ---------------------------------------------------------------------------------------


def fit_platt(raw: np.ndarray, labels: np.ndarray) -> dict:
    """Logistic regression of the outcome on logit(raw): pd = sigmoid(a * logit(raw) + b), by Newton."""
    design = np.column_stack([logit(raw), np.ones(len(raw))])
    y = np.asarray(labels, dtype=np.float64)
    weights = np.array([1.0, 0.0])
    for _ in range(PLATT_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(design @ weights)))
        gradient = design.T @ (p - y)
        hessian = design.T @ (design * (p * (1.0 - p))[:, None]) + PLATT_RIDGE * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        weights = weights - step
        if np.max(np.abs(step)) < PLATT_TOLERANCE:
            break
    return {"method": PLATT, "a": float(weights[0]), "b": float(weights[1])}


def fit_isotonic(raw: np.ndarray, labels: np.ndarray) -> dict:
    """A non-decreasing step map from raw probability to default rate, applied with linear interpolation."""
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(np.asarray(raw, dtype=np.float64), np.asarray(labels, dtype=np.float64))
    x, y = model.X_thresholds_, model.y_thresholds_
    if len(x) < 2:  # every raw probability equal: a flat map through two points
        x, y = np.array([0.0, 1.0]), np.array([y[0], y[0]])
    return {"method": ISOTONIC, "x": x.tolist(), "y": y.tolist()}


def fit_calibration(
    method: str,
    raw: np.ndarray,
    labels: np.ndarray,
    negative_sampling_rate: float,
    spark_negative_sampling_rate: float = 1.0,
) -> dict:
    """The manifest's calibration map for `method`; prior correction needs no fit.

    Platt and isotonic maps are fitted on the rows as given, so on rows thinned in Spark they give the
    pd of the thinned population; `spark_negative_sampling_rate` (below 1) is then recorded in the map
    and `apply_calibration` corrects their pd, like prior correction's, back to the real base rate.
    """
    if method == PRIOR_CORRECTION:
        calibration = {"method": PRIOR_CORRECTION, "negative_sampling_rate": float(negative_sampling_rate)}
    elif method == PLATT:
        calibration = fit_platt(raw, labels)
    elif method == ISOTONIC:
        calibration = fit_isotonic(raw, labels)
    else:
        raise ValueError(f"unknown calibration method {method!r}")
    if spark_negative_sampling_rate != 1.0:
        calibration[SPARK_NEGATIVE_SAMPLING_RATE] = float(spark_negative_sampling_rate)
    return calibration


def compare_calibrations(
    result: CVResult,
    labels: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    methods: Sequence[str],
    negative_rate: float = 1.0,
) -> list[dict]:
    """Cross-validated log loss, Brier and mean pd of each calibration on the out-of-fold predictions.

    Each fold is calibrated by a map fitted on the other folds' out-of-fold predictions, so the
    comparison never scores a map on the rows it was fitted to; the hold-out plays no part. Rows
    thinned in Spark are compared as the real population: every map composed with the correction by
    `negative_rate`, every metric weighted back.
    """
    table = []
    for method in methods:
        per_fold = []
        for fit_rows, valid_rows in folds:
            raw = result.oof_raw[valid_rows]
            if method == PRIOR_CORRECTION:
                pds = prior_correction(raw, result.oof_sampling_rate[valid_rows] * negative_rate)
            else:
                calibration = fit_calibration(
                    method, result.oof_raw[fit_rows], labels[fit_rows], 1.0, negative_rate
                )
                pds = apply_calibration(raw, calibration)
            per_fold.append(probability_metrics(labels[valid_rows], pds, negative_rate))
        table.append(
            {
                "method": method,
                **{
                    name: float(np.mean([m[name] for m in per_fold])) for name in (LOG_LOSS, BRIER, "mean_pd")
                },
            }
        )
    return table
