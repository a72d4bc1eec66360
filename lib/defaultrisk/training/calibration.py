"""Training's calibration choice: each calibration map compared by cross-validation on the out-of-fold
predictions; the maps themselves, their fitting and applying are in `defaultrisk.calibration`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from defaultrisk.calibration import PRIOR_CORRECTION, apply_calibration, fit_calibration, prior_correction
from defaultrisk.training.metrics import BRIER, LOG_LOSS, probability_metrics
from defaultrisk.training.selection import CVResult, CVRows


def compare_calibrations(result: CVResult, rows: CVRows, methods: Sequence[str]) -> list[dict]:
    """Cross-validated log loss, Brier and mean pd of each calibration on the out-of-fold predictions.

    Each fold is calibrated by a map fitted on the other folds' out-of-fold predictions, so the
    comparison never scores a map on the rows it was fitted to; the hold-out plays no part. Rows
    thinned in Spark are compared as the real population: every map composed with the correction by
    `negative_rate`, every metric weighted back.
    """
    rate = rows.negative_rate
    table = []
    for method in methods:
        per_fold = []
        for fit_rows, valid_rows in rows.folds:
            raw = result.oof_raw[valid_rows]
            if method == PRIOR_CORRECTION:
                pds = prior_correction(raw, result.oof_sampling_rate[valid_rows] * rate)
            else:
                calibration = fit_calibration(
                    method, result.oof_raw[fit_rows], rows.labels[fit_rows], 1.0, rate
                )
                pds = apply_calibration(raw, calibration)
            per_fold.append(probability_metrics(rows.labels[valid_rows], pds, rate))
        names = (LOG_LOSS, BRIER, "mean_pd")
        table.append({"method": method, **{n: float(np.mean([m[n] for m in per_fold])) for n in names}})
    return table
