"""The TreeSHAP tables against XGBoost's own TreeSHAP (`pred_contribs`) on real boosters."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from sampledata import make_history

from defaultrisk import treeshap
from defaultrisk.features import dmatrix, feature_matrix
from defaultrisk.model import ScoringModel
from defaultrisk.schema import DEFAULT
from defaultrisk.scoring.core import feature_contributions, top_reasons
from defaultrisk.training.fit import fit
from defaultrisk.treeshap import TreeExplainer, Unsupported

from conftest import small_train_config

N_FEATURES = 10
CATEGORICAL = {3: 8, 7: 30}  # column: number of categories seen in training
TYPES = ["c" if j in CATEGORICAL else "q" for j in range(N_FEATURES)]
TOLERANCE = 1e-5


def _rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded rows with missing values and two categorical columns; labels that use both kinds."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    x[:, 5] = np.round(x[:, 5], 1)  # repeated values: rows land exactly on thresholds
    for column, count in CATEGORICAL.items():
        x[:, column] = rng.integers(0, count, n)
    x[rng.random(x.shape) < 0.1] = np.nan
    filled = np.nan_to_num(x)
    logit = filled[:, 0] + filled[:, 1] * filled[:, 2] + np.isin(x[:, 3], (1, 4, 6)) - (x[:, 7] % 3 == 0)
    logit += np.sin(3 * filled[:, 5]) + rng.normal(size=n)
    return x, (logit > 0).astype(np.float64)


def _train(depth: int, trees: int, **params) -> xgb.Booster:
    x, y = _rows(3000, seed=depth * 1000 + trees)
    data = xgb.DMatrix(x, label=y, feature_types=TYPES, enable_categorical=True)
    chosen = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": depth,
        "eta": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "max_cat_to_onehot": 1,
        "nthread": 1,
        "seed": depth,
        **params,
    }
    return xgb.train(chosen, data, num_boost_round=trees)


def _scored_rows(booster: xgb.Booster, n: int = 400) -> np.ndarray:
    """Rows to explain: missing values, unseen and invalid category codes, values on thresholds."""
    x, _ = _rows(n, seed=99)
    x[:40, 3] = np.tile([8, 9, 30, 1000, -1, 2.5, 1e9, 0], 5)  # beyond training, fractional, invalid
    x[40:80, 7] = np.tile([30, 31, 45, 29.9, 2], 8)
    thresholds = [
        (feature, value)
        for tree in json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]["trees"]
        for feature, value, kind, child in zip(
            tree["split_indices"],
            tree["split_conditions"],
            tree["split_type"],
            tree["left_children"],
            strict=True,
        )
        if child != -1 and kind == 0
    ]
    for row, (feature, value) in zip(range(80, n, 2), thresholds, strict=False):
        x[row, feature] = np.float32(value)  # exactly on the split: goes right (x < threshold is false)
        x[row + 1, feature] = np.nextafter(np.float32(value), np.float32(-np.inf))  # just below: left
    return x


def _xgboost_contributions(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    data = xgb.DMatrix(x, feature_types=TYPES, enable_categorical=True)
    return booster.predict(data, pred_contribs=True)


def _top3(contributions: np.ndarray) -> list[list[int]]:
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :3]
    shares = np.take_along_axis(contributions, order, axis=1)
    return [idx[share > 0].tolist() for idx, share in zip(order, shares, strict=True)]


@pytest.mark.parametrize(
    ("depth", "trees", "params"),
    [
        (2, 600, {}),
        (3, 200, {"max_cat_to_onehot": 64}),  # one-hot categorical splits
        (4, 150, {}),
        (5, 60, {}),
        (6, 100, {}),
    ],
)
def test_tables_equal_xgboosts_treeshap(depth, trees, params):
    booster = _train(depth, trees, **params)
    x = _scored_rows(booster)
    explainer = TreeExplainer.from_booster(booster)
    fast = explainer.contributions(x)
    expected = _xgboost_contributions(booster, x)
    assert fast.shape == (len(x), N_FEATURES) and fast.dtype == np.float64
    np.testing.assert_allclose(fast, expected[:, :-1], rtol=0, atol=TOLERANCE)
    assert abs(explainer.bias - expected[0, -1]) < TOLERANCE
    assert _top3(fast) == _top3(expected[:, :-1])
    margin = booster.inplace_predict(x, predict_type="margin")
    np.testing.assert_allclose(fast.sum(axis=1) + explainer.bias, margin, rtol=0, atol=1e-4)


def test_a_feature_split_several_times_on_one_path_is_merged():
    """Two features only, depth 6: every path repeats its features."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2000, 2)).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    y = (np.sin(3 * np.nan_to_num(x[:, 0])) + np.nan_to_num(x[:, 1]) ** 2 > 0.8).astype(float)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 6, "nthread": 1}, xgb.DMatrix(x, label=y), 30
    )
    explainer = TreeExplainer.from_booster(booster)
    assert explainer.leaf_d.max() == 2  # paths of up to 6 splits on 2 distinct features
    expected = booster.predict(xgb.DMatrix(x[:300]), pred_contribs=True)
    np.testing.assert_allclose(explainer.contributions(x[:300]), expected[:, :-1], rtol=0, atol=TOLERANCE)


def test_leaves_with_too_many_path_features_are_left_to_xgboost():
    rng = np.random.default_rng(6)
    x = rng.random((4000, 20), dtype=np.float32)
    y = (rng.random(4000) < 0.5).astype(np.float64)  # noise: deep trees over many features
    params = {"objective": "binary:logistic", "max_depth": 12, "min_child_weight": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=2)
    with pytest.raises(Unsupported, match="distinct path features"):
        TreeExplainer.from_booster(booster)


def test_tables_over_the_memory_bound_are_left_to_xgboost(monkeypatch):
    booster = _train(4, 20)
    assert TreeExplainer.from_booster(booster).table_bytes > 4096
    monkeypatch.setattr(treeshap, "MAX_TABLE_BYTES", 4096)
    with pytest.raises(Unsupported, match="MiB"):
        TreeExplainer.from_booster(booster)


@pytest.fixture(scope="module")
def project_model() -> ScoringModel:
    """A booster fitted by the project's own trainer on generated customers (41 schema features)."""
    frame, _ = make_history(6000, seed=21)
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    result = fit(frame, small_train_config("unused.csv", "unused"))
    return ScoringModel(result.booster, "pd-test", float(result.threshold["value"]), result.calibration)


def test_the_scoring_core_uses_the_tables_for_the_projects_model(project_model):
    frame, _ = make_history(500, seed=8)
    matrix = feature_matrix(frame)
    assert project_model.explainer is not None
    assert project_model.explainer is project_model.explainer  # built once per model
    contributions = feature_contributions(project_model, matrix)
    np.testing.assert_array_equal(contributions, project_model.explainer.contributions(matrix))
    expected = _contributions_by_xgboost(project_model, matrix)
    np.testing.assert_allclose(contributions, expected, rtol=0, atol=TOLERANCE)
    names = np.asarray(project_model.booster.feature_names)
    assert top_reasons(project_model, matrix, 3) == [names[idx].tolist() for idx in _top3(expected)]


def _contributions_by_xgboost(model: ScoringModel, matrix: np.ndarray) -> np.ndarray:
    return model.booster.predict(dmatrix(matrix), pred_contribs=True)[:, :-1]


def test_a_dart_booster_falls_back_to_xgboosts_treeshap():
    frame, _ = make_history(1500, seed=9)
    matrix = feature_matrix(frame)
    labels = frame[DEFAULT].to_numpy(dtype=np.float64)
    params = {
        "booster": "dart",
        "objective": "binary:logistic",
        "max_depth": 3,
        "rate_drop": 0.1,
        "nthread": 1,
    }
    booster = xgb.train(params, dmatrix(matrix, labels), num_boost_round=20)
    with pytest.raises(Unsupported, match="dart"):
        TreeExplainer.from_booster(booster)
    model = ScoringModel(booster, "pd-dart", 0.5, {"method": "platt", "a": 1.0, "b": 0.0})
    assert model.explainer is None
    expected = _contributions_by_xgboost(model, matrix[:200])
    np.testing.assert_array_equal(feature_contributions(model, matrix[:200]), expected)
    names = np.asarray(booster.feature_names)
    assert top_reasons(model, matrix[:200], 3) == [names[idx].tolist() for idx in _top3(expected)]
