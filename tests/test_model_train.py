import hashlib
import json
import pickle
import shutil
from dataclasses import replace

import numpy as np
import pytest
from sampledata import make_history

from defaultrisk.calibration import check_calibration, prior_correction
from defaultrisk.errors import ModelError
from defaultrisk.features import feature_matrix
from defaultrisk.model import (
    MANIFEST_FILE,
    MODEL_FILE,
    ModelPayload,
    ScoringModel,
    load_model,
    read_checked_model,
)
from defaultrisk.schema import DEFAULT
from defaultrisk.training.config import CALIBRATION_METHODS, ThresholdRule
from defaultrisk.training.fit import fit
from defaultrisk.training.resampling import undersample
from defaultrisk.training.threshold import choose_threshold

from conftest import small_train_config


def test_prior_correction_is_the_identity_without_undersampling_and_shrinks_odds_with_it():
    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    np.testing.assert_allclose(prior_correction(p, 1.0), p)
    corrected = prior_correction(p, 0.05)
    odds = corrected[1:-1] / (1 - corrected[1:-1])
    np.testing.assert_allclose(odds, 0.05 * p[1:-1] / (1 - p[1:-1]))
    assert corrected[0] == 0.0
    assert corrected[-1] == pytest.approx(1.0)


def test_undersampling_reaches_the_configured_ratio():
    labels = np.array([1] * 30 + [0] * 970)
    kept = undersample(labels, ratio=0.1, seed=1)
    assert int(labels[kept].sum()) == 30
    assert int((labels[kept] == 0).sum()) == 300
    assert np.all(np.diff(kept) > 0)


@pytest.mark.parametrize(("rule", "target"), [("target_precision", 0.6), ("target_recall", 0.5)])
def test_threshold_rule_picks_the_extreme_threshold_meeting_its_target(rule, target):
    rng = np.random.default_rng(0)
    labels = (rng.random(1500) < 0.05).astype(int)
    pds = np.clip(labels * 0.3 + rng.random(1500) * 0.7, 0, 1)
    chosen = choose_threshold(labels, pds, ThresholdRule(rule=rule, target=target))
    assert chosen["rule_met"]
    candidates = np.unique(pds)
    flagged = pds[None, :] >= candidates[:, None]  # one row per candidate threshold
    true_positives = (flagged & (labels[None, :] == 1)).sum(axis=1)
    precision = true_positives / flagged.sum(axis=1)
    recall = true_positives / labels.sum()
    if rule == "target_precision":
        expected = candidates[(precision >= target) & (recall > 0)].min()
    else:
        expected = candidates[recall >= target].max()
    assert chosen["value"] == pytest.approx(expected)


def test_unreachable_precision_falls_back_to_best_f1_and_says_so():
    labels = np.array([0, 1, 0, 1, 0, 0])
    pds = np.array([0.9, 0.1, 0.8, 0.2, 0.7, 0.6])
    chosen = choose_threshold(labels, pds, ThresholdRule(rule="target_precision", target=0.99))
    assert chosen["rule_met"] is False
    # F1 by threshold: 0.1 -> 0.5, 0.2 -> 0.29, 0.6 and above -> 0: the best is 0.1.
    assert chosen["value"] == pytest.approx(0.1)
    assert chosen["f1"] == pytest.approx(0.5)


def test_training_brings_pd_to_the_base_rate_whatever_strategy_wins(trained, manifest):
    holdout = manifest["metrics"]["holdout"]
    assert holdout["mean_pd"] == pytest.approx(holdout["default_rate"], rel=0.25)
    assert holdout["roc_auc"] > 0.8
    selection = manifest["model_selection"]
    # The kept model is the best cross-validated one: a strategy, a search candidate or the baseline.
    measured = [*selection["comparison"], *selection["search"]["results"], selection["baseline"]]
    kept = [
        r for r in measured if r["strategy"] == selection["strategy"] and r["score"] == selection["cv_score"]
    ]
    assert kept and selection["cv_score"] == min(r["score"] for r in measured)
    assert selection["kept"] == ("baseline" if kept[0] is selection["baseline"] else "chosen")
    if kept[0]["kind"] != "none":  # resampling inflates the raw score; calibration must undo it
        assert holdout["mean_pd_before_correction"] > 2 * holdout["default_rate"]


def test_manifest_records_what_scoring_and_audits_need(trained, manifest):
    model_dir, summary = trained
    assert manifest["model_version"] == summary["model_version"]
    assert manifest["model_format"] == "xgboost-json"
    assert len(manifest["features"]) == 41
    assert manifest["calibration"]["method"] in CALIBRATION_METHODS
    check_calibration(manifest["calibration"])
    assert manifest["calibration"]["method"] == manifest["model_selection"]["calibration_method"]
    assert manifest["threshold"]["alert_rate"] == manifest["metrics"]["holdout"]["alert_rate"]
    assert manifest["row_counts"]["input_rows"] == manifest["row_counts"]["labelled_rows"]
    assert {"xgboost-cpu", "pandas", "python"} <= set(manifest["library_versions"])
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["holdout"] == manifest["metrics"]["holdout"]
    assert metrics["baseline"] == manifest["metrics"]["baseline"]
    assert metrics["kept"] == manifest["model_selection"]["kept"] == summary["kept"]
    for name in ("gini", "ks"):
        assert metrics["holdout"][name] == summary["holdout"][name]
        assert metrics["baseline"]["vs_model"][name]["model"] == metrics["holdout"][name]
    report = json.loads((model_dir / "report" / "metrics.json").read_text())
    assert summary["report"] == str(model_dir / "report")
    assert report["model_version"] == manifest["model_version"]
    assert report["model_selection"] == manifest["model_selection"]
    for plot in report["plots"]:
        assert (model_dir / "report" / plot).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((model_dir / MODEL_FILE).read_text())["learner"]  # XGBoost's own JSON


def test_threshold_meets_its_precision_target_on_the_holdout(manifest):
    holdout = manifest["metrics"]["holdout"]
    threshold = manifest["threshold"]
    if threshold["rule_met"]:
        assert holdout["precision_at_threshold"] >= threshold["target"]
    assert holdout["threshold"] == threshold["value"]
    assert threshold["precision"] == holdout["precision_at_threshold"]
    assert threshold["recall"] == holdout["recall_at_threshold"]


def test_same_input_and_seed_give_the_same_model(tmp_path):
    frame, _ = make_history(6000, seed=21)
    pdf = frame.copy()
    pdf[DEFAULT] = pdf[DEFAULT].astype(int)
    cfg = small_train_config(tmp_path / "in.csv", tmp_path / "m")
    first, second = fit(pdf, cfg), fit(pdf, cfg)
    assert bytes(first.booster.save_raw("json")) == bytes(second.booster.save_raw("json"))
    other = fit(pdf, replace(cfg, seed=cfg.seed + 1))
    assert bytes(other.booster.save_raw("json")) != bytes(first.booster.save_raw("json"))


def _copy_model(trained, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(trained[0], target)
    return target


def _calibrated(raw: np.ndarray, calibration: dict) -> np.ndarray:
    """The manifest's calibration map, written out independently of the model module."""
    p = raw.astype(np.float64)
    if calibration["method"] == "prior_correction":
        b = calibration["negative_sampling_rate"]
        return b * p / (b * p - p + 1)
    if calibration["method"] == "platt":
        return 1 / (1 + np.exp(-(calibration["a"] * np.log(p / (1 - p)) + calibration["b"])))
    return np.interp(p, calibration["x"], calibration["y"])


def test_loaded_model_scores_like_the_booster_through_the_manifests_calibration(model, history):
    _, frame, _ = history
    matrix = feature_matrix(frame.head(50))
    raw = model.booster.inplace_predict(matrix)
    np.testing.assert_allclose(model.predict_pd(matrix), _calibrated(raw, model.calibration), rtol=1e-12)


@pytest.mark.parametrize(
    "calibration",
    [
        {"method": "prior_correction", "negative_sampling_rate": 0.2},
        {"method": "platt", "a": 0.9, "b": -1.5},
        {"method": "isotonic", "x": [0.0, 0.05, 0.3, 0.9], "y": [0.001, 0.004, 0.05, 0.4]},
    ],
)
def test_every_calibration_a_manifest_can_hold_is_applied_when_scoring(trained, history, calibration):
    model_bytes, manifest = read_checked_model(trained[0])
    scoring = ScoringModel.from_payload(
        ModelPayload.from_manifest(model_bytes, {**manifest, "calibration": calibration})
    )
    matrix = feature_matrix(history[1].head(200))
    raw = scoring.booster.inplace_predict(matrix)
    pds = scoring.predict_pd(matrix)
    np.testing.assert_allclose(pds, _calibrated(raw, calibration), rtol=1e-12)
    assert np.array_equal(pds, scoring.predict_pd(matrix))  # bit for bit on a second call


def test_a_manifest_with_an_unusable_calibration_is_refused_before_scoring(trained):
    model_bytes, manifest = read_checked_model(trained[0])
    with pytest.raises(ModelError, match="calibration"):
        bad = {**manifest, "calibration": {"method": "isotonic", "x": [0.1]}}
        ScoringModel.from_payload(ModelPayload.from_manifest(model_bytes, bad))


def test_tampered_model_file_is_refused(trained, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    text = (model_dir / MODEL_FILE).read_text()
    (model_dir / MODEL_FILE).write_text(text.replace('"base_score":"', '"base_score":"1', 1))
    with pytest.raises(ModelError, match="does not match its manifest"):
        read_checked_model(model_dir)


def test_a_pickle_is_refused_even_with_a_matching_hash(trained, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    payload = pickle.dumps({"not": "a model"})
    (model_dir / MODEL_FILE).write_bytes(payload)
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    manifest["model_sha256"] = hashlib.sha256(payload).hexdigest()
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="pickle"):
        load_model(model_dir)


def test_a_model_trained_on_other_features_is_refused(trained, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    manifest["features"] = [f for f in manifest["features"] if f["name"] != "age"]
    manifest["features"][0]["kind"] = "numeric"
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="missing age; changed account_amount_added_12_24m"):
        read_checked_model(model_dir)


def test_a_missing_manifest_is_refused(trained, tmp_path):
    model_dir = _copy_model(trained, tmp_path)
    (model_dir / MANIFEST_FILE).unlink()
    with pytest.raises(ModelError, match=r"no manifest\.json"):
        read_checked_model(model_dir)
