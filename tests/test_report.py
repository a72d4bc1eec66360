"""The training report: every file is there, every PNG is an image, metrics.json says what training found."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from sampledata import make_history

from defaultrisk.schema import DEFAULT, UUID
from defaultrisk.training.config import (
    BaselineConfig,
    SearchConfig,
    SelectionConfig,
    TrainConfig,
    XGBoostParams,
)
from defaultrisk.training.fit import fit
from defaultrisk.training.report import (
    IMPORTANCE_PLOT,
    PR_PLOT,
    RELIABILITY_PLOT,
    REPORT_DIR,
    REPORT_METRICS_FILE,
    ROC_PLOT,
    STRATEGY_PLOT,
    THRESHOLD_PLOT,
    plot_reliability,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS = (ROC_PLOT, PR_PLOT, RELIABILITY_PLOT, THRESHOLD_PLOT, IMPORTANCE_PLOT, STRATEGY_PLOT)


@pytest.fixture(scope="module")
def trained_with_truth():
    frame, true_pd = make_history(6_000, seed=13)
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    xgb_params = XGBoostParams(
        n_estimators=40,
        max_depth=2,
        learning_rate=0.2,
        nthread=1,
        monotone_constraints=(("num_unpaid_bills", 1),),
    )
    cfg = TrainConfig(
        xgboost=xgb_params,
        selection=SelectionConfig(undersampling_ratios=(0.1,), class_weight_ratios=()),
        search=SearchConfig(candidates=1),
        baseline=BaselineConfig(n_estimators=40),
    )
    return fit(frame, cfg, pd.Series(true_pd, index=frame[UUID]))


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path.name
    height, width, _ = imread(path).shape
    assert width >= 600 and height >= 400, path.name


def test_report_writes_every_plot_and_a_metrics_file_that_matches_training(trained_with_truth, tmp_path):
    result = trained_with_truth
    report_dir = write_report(tmp_path, result, "pd-000000000000")
    assert report_dir == tmp_path / REPORT_DIR
    for name in PLOTS:
        _assert_png(report_dir / name)
    metrics = json.loads((report_dir / REPORT_METRICS_FILE).read_text())
    assert metrics["plots"] == list(PLOTS)
    assert metrics["model_version"] == "pd-000000000000"
    assert metrics["holdout"]["roc_auc"] == pytest.approx(result.metrics["roc_auc"])
    assert metrics["oracle"]["metrics"]["log_loss"] == pytest.approx(result.oracle["metrics"]["log_loss"])
    assert metrics["threshold"]["value"] == result.threshold["value"]
    assert metrics["calibration"]["method"] == result.calibration["method"]
    assert len(metrics["reliability"]) == 10
    assert [r["strategy"] for r in metrics["model_selection"]["comparison"]] == ["none", "undersample_0.1"]
    assert metrics["feature_importance"][0]["gain_share"] > 0
    assert sum(f["gain_share"] for f in metrics["feature_importance"]) == pytest.approx(1.0)
    assert metrics["holdout"]["gini"] == pytest.approx(2 * metrics["holdout"]["roc_auc"] - 1)
    assert metrics["baseline"]["vs_model"]["ks"]["model"] == metrics["holdout"]["ks"]
    assert metrics["model_selection"]["kept"] in ("chosen", "baseline")
    assert [c["violations"] for c in metrics["monotone"]["check"]] == [0]
    assert {"jeffreys_low", "jeffreys_high", "outside_interval"} <= set(metrics["reliability"][0])


def test_report_without_truth_has_no_oracle_and_still_draws_every_plot(trained_with_truth, tmp_path):
    result = replace(trained_with_truth, holdout_true_pd=None, oracle=None)
    report_dir = write_report(tmp_path, result, "pd-111111111111")
    for name in PLOTS:
        _assert_png(report_dir / name)
    assert json.loads((report_dir / REPORT_METRICS_FILE).read_text())["oracle"] is None


def test_reliability_plot_copes_with_a_decile_without_defaults(tmp_path):
    table = [
        {"bin": i, "rows": 100, "defaults": d, "mean_pd": p, "observed_rate": d / 100}
        for i, (p, d) in enumerate([(0.001, 0), (0.01, 1), (0.05, 4), (0.2, 21)], start=1)
    ]
    plot_reliability(tmp_path / "reliability.png", table)
    _assert_png(tmp_path / "reliability.png")


def test_report_metrics_are_strict_json(trained_with_truth, tmp_path):
    report_dir = write_report(tmp_path, trained_with_truth, "pd-222222222222")
    text = (report_dir / REPORT_METRICS_FILE).read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert np.isfinite(json.loads(text)["holdout"]["brier"])
