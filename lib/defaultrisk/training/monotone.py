"""The monotone constraints a credit team states, checked on the fitted model and priced in AUC.

The check sweeps each constrained feature over a grid of its training values (quantiles, from the
smallest to the largest) for a seeded sample of hold-out rows, all other features as they are, and
counts the steps where the model's log-odds move against the stated direction: XGBoost's constraint
guarantees none. The price is the hold-out ROC AUC of the same booster (same strategy, parameters and
trees) fitted without the constraints, beside the constrained one's: hold-out, because the choice is
already made and a second cross-validation would double the search's cost.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xgboost as xgb

from defaultrisk.schema import FEATURE_NAMES
from defaultrisk.training.metrics import metric_value

SWEEP_ROWS = 200
SWEEP_POINTS = 25
SWEEP_STREAM = 211  # the sweep's own random stream


def sweep_grid(values: np.ndarray, points: int = SWEEP_POINTS) -> np.ndarray:
    """Distinct quantiles of a feature's known values, smallest to largest."""
    known = values[~np.isnan(values)]
    if not known.size:
        return np.array([], dtype=np.float32)
    return np.unique(np.quantile(known, np.linspace(0.0, 1.0, points)).astype(np.float32))


def count_violations(
    booster: xgb.Booster, rows: np.ndarray, column: int, grid: np.ndarray, direction: int
) -> int:
    """Steps along the grid, over every row, where the log-odds move against `direction`."""
    if len(grid) < 2 or not len(rows):
        return 0
    margins = np.empty((len(rows), len(grid)))
    for k, value in enumerate(grid):
        swept = rows.copy()
        swept[:, column] = value
        margins[:, k] = booster.inplace_predict(swept, predict_type="margin", validate_features=False)
    return int(np.sum(direction * np.diff(margins, axis=1) < 0))


def sweep_check(
    booster: xgb.Booster, train_matrix: np.ndarray, holdout_matrix: np.ndarray, constraints, seed: int
) -> list[dict]:
    """Per constrained feature: direction, rows swept, grid points and violations (must be 0)."""
    rng = np.random.default_rng([seed, SWEEP_STREAM])
    picked = np.sort(rng.choice(len(holdout_matrix), min(SWEEP_ROWS, len(holdout_matrix)), replace=False))
    rows = holdout_matrix[picked]
    table = []
    for name, direction in constraints:
        column = FEATURE_NAMES.index(name)
        grid = sweep_grid(train_matrix[:, column])
        violations = count_violations(booster, rows, column, grid, direction)
        table.append(
            {
                "feature": name,
                "direction": direction,
                "rows": len(rows),
                "grid_points": len(grid),
                "violations": violations,
            }
        )
    return table


def constraint_cost(
    constrained: xgb.Booster, unconstrained: xgb.Booster, matrix: np.ndarray, labels, rate
) -> dict:
    """Hold-out ROC AUC of the raw probability with and without the constraints (ranks only)."""
    with_constraints = metric_value(
        "roc_auc", labels, constrained.inplace_predict(matrix, validate_features=False), rate
    )
    without = metric_value(
        "roc_auc", labels, unconstrained.inplace_predict(matrix, validate_features=False), rate
    )
    return {
        "measured_on": "holdout",
        "roc_auc_constrained": with_constraints,
        "roc_auc_unconstrained": without,
        "roc_auc_cost": without - with_constraints,
    }


def without_constraints(params):
    return replace(params, monotone_constraints=())
