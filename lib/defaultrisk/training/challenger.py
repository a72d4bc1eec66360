"""What the kept model is measured against on the hold-out: the untuned baseline fitted on the same
training rows, and, when monotone constraints are stated, their sweep check and their price in AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost as xgb

from defaultrisk.calibration import prior_correction
from defaultrisk.training.metrics import GINI, KS, PROBABILITY_METRICS, probability_metrics
from defaultrisk.training.monotone import constraint_cost, sweep_check, without_constraints
from defaultrisk.training.selection import CVResult, CVRows, fit_recipe

SIDE_BY_SIDE = (*PROBABILITY_METRICS, GINI, KS, "mean_pd")


@dataclass(frozen=True)
class Challenges:
    baseline: dict | None = None  # the baseline's cross-validated record and hold-out metrics
    baseline_pd: np.ndarray | None = None  # its hold-out pd
    monotone: dict | None = None  # the constraints, their sweep check and their AUC cost


@dataclass(frozen=True)
class Holdout:
    matrix: np.ndarray
    labels: np.ndarray


def _refit(rows: CVRows, result: CVResult, params) -> xgb.Booster:
    """`result`'s strategy and trees (grown with the rows, as the kept model's) on all training rows,
    with `params`."""
    return fit_recipe(result, rows, rows.matrix, rows.labels, params)[0]


def baseline_on_holdout(rows: CVRows, baseline: CVResult, booster: xgb.Booster | None, holdout: Holdout):
    """The baseline's hold-out pd and record; `booster`: the kept model when it is the baseline itself.

    No resampling, so no prior correction, except back to the population when Spark thinned the rows.
    """
    booster = booster or _refit(rows, baseline, baseline.params)
    raw = booster.inplace_predict(holdout.matrix, validate_features=False)
    pds = (
        prior_correction(raw, rows.negative_rate)
        if rows.negative_rate != 1.0
        else np.asarray(raw, np.float64)
    )
    record = {
        "params": {k: v for k, v in baseline.summary().items() if k != "metric"},
        "cv_score": baseline.score,
        "holdout": probability_metrics(holdout.labels, pds, rows.negative_rate),
    }
    return pds, record


def side_by_side(model: dict, baseline: dict) -> dict:
    """The hold-out metrics analysts compare, the kept model beside the baseline."""
    return {name: {"model": model[name], "baseline": baseline[name]} for name in SIDE_BY_SIDE}


def challenge(
    rows: CVRows,
    kept: CVResult,
    baseline: CVResult | None,
    booster: xgb.Booster,
    holdout: Holdout,
    shipped: xgb.Booster | None = None,
):
    """The baseline's and the constraints' figures for the kept model (`booster`, fitted on the
    training rows); the constraints' sweep check is made on the model file shipped (`shipped`, when it
    was fitted again on all rows)."""
    baseline_pd = record = monotone = None
    if baseline is not None:
        same = kept is baseline
        baseline_pd, record = baseline_on_holdout(rows, baseline, booster if same else None, holdout)
    constraints = kept.params.monotone_constraints
    if constraints:
        unconstrained = _refit(rows, kept, without_constraints(kept.params))
        monotone = {
            "constraints": {name: direction for name, direction in constraints},
            "check": sweep_check(shipped or booster, rows.matrix, holdout.matrix, constraints, rows.seed),
            "cost": constraint_cost(
                booster, unconstrained, holdout.matrix, holdout.labels, rows.negative_rate
            ),
        }
    return Challenges(record, baseline_pd, monotone)
