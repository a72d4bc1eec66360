"""Calibration: from the booster's raw probability to a pd at the real base rate.

Prior correction (undo undersampling or class weights), Platt scaling and isotonic regression: fitted
by training on out-of-fold predictions, applied by scoring from the plain numbers in the manifest.
"""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression

from defaultrisk.errors import ModelError

PRIOR_CORRECTION = "prior_correction"
PLATT = "platt"
ISOTONIC = "isotonic"
# Fraction of the non-defaulters kept inside Spark before training (sampling = "spark"): applied as a
# prior correction after the method's map, so every method ends at the real base rate.
SPARK_NEGATIVE_SAMPLING_RATE = "spark_negative_sampling_rate"
# Platt scaling reads the raw probability as log-odds; this keeps a raw 0 or 1 finite.
LOGIT_CLIP = 1e-12
PLATT_ITERATIONS = 50
PLATT_TOLERANCE = 1e-10
PLATT_RIDGE = 1e-9  # keeps Newton's step defined when every raw probability is the same


def prior_correction(p_sampled: np.ndarray, negative_sampling_rate: float) -> np.ndarray:
    """Map a pd learnt on undersampled data back to the real base rate.

    Keeping a fraction `b` of the non-defaulters multiplies the odds of default by 1/b, so the
    true probability is b*p / (b*p - p + 1) (Dal Pozzolo et al., 2015). With b = 1 it is the identity.
    `b` may also be an array, one rate per row (out-of-fold predictions of several fold models).
    """
    p = np.asarray(p_sampled, dtype=np.float64)
    b = np.asarray(negative_sampling_rate, dtype=np.float64)
    return b * p / (b * p - p + 1.0)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def apply_calibration(raw: np.ndarray, calibration: dict) -> np.ndarray:
    """The pd for the booster's raw probabilities, by the manifest's calibration map.

    The map is plain numbers in the manifest: prior correction (`negative_sampling_rate`), Platt scaling
    (pd = sigmoid(a * logit(raw) + b)) or isotonic (piecewise linear through `x` -> `y`, flat outside).
    A model trained on rows thinned in Spark carries `spark_negative_sampling_rate` as well: the method's
    map gives the pd of the thinned population, and a prior correction by that rate takes it to the real
    one (after prior correction the two rates simply multiply: odds scale by 1/b each time).
    """
    p = np.asarray(raw, dtype=np.float64)
    method = calibration["method"]
    if method == PRIOR_CORRECTION:
        pd_ = prior_correction(p, calibration["negative_sampling_rate"])
    elif method == PLATT:
        z = float(calibration["a"]) * logit(p) + float(calibration["b"])
        pd_ = 1.0 / (1.0 + np.exp(-z))
    elif method == ISOTONIC:
        x, y = np.asarray(calibration["x"], np.float64), np.asarray(calibration["y"], np.float64)
        pd_ = np.interp(p, x, y)
    else:
        raise ModelError(f"unknown calibration method {method!r}")
    if SPARK_NEGATIVE_SAMPLING_RATE in calibration:
        return prior_correction(pd_, calibration[SPARK_NEGATIVE_SAMPLING_RATE])
    return pd_


def check_calibration(calibration: dict) -> None:
    """Refuse, before any task runs, a calibration map that `apply_calibration` could not apply.

    A key this code does not know is refused too: it could only mean a map that changes the pd in a way
    this version would silently skip.
    """
    needs = {PRIOR_CORRECTION: ("negative_sampling_rate",), PLATT: ("a", "b"), ISOTONIC: ("x", "y")}
    method = calibration.get("method") if isinstance(calibration, dict) else None
    if method not in needs:
        raise ModelError(f"unknown calibration method {method!r}; expected one of {', '.join(needs)}")
    absent = [key for key in needs[method] if key not in calibration]
    if absent:
        raise ModelError(f"{method} calibration lacks {', '.join(absent)}")
    unknown = sorted(set(calibration) - {"method", *needs[method], SPARK_NEGATIVE_SAMPLING_RATE})
    if unknown:
        raise ModelError(f"{method} calibration has unknown key(s) {', '.join(unknown)}")
    for key in ("negative_sampling_rate", SPARK_NEGATIVE_SAMPLING_RATE):
        value = calibration.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
            raise ModelError(f"{method} calibration needs a {key} in (0, 1], not {value!r}")
    if method == ISOTONIC:
        x, y = np.asarray(calibration["x"], np.float64), np.asarray(calibration["y"], np.float64)
        if x.ndim != 1 or len(x) < 2 or len(x) != len(y) or np.any(np.diff(x) <= 0):
            raise ModelError("isotonic calibration needs x and y of equal length >= 2 with x increasing")
        if np.any(np.diff(y) < 0) or y[0] < 0.0 or y[-1] > 1.0:
            raise ModelError("isotonic calibration needs y non-decreasing within [0, 1]")


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
