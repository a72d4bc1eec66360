"""The scoring benchmark end to end on a tiny snapshot: its last stdout line keeps its contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROWS = 20_000
# All variants feed the same float32 features to the same booster and apply prior correction to its
# float32 probability in float64 in the same order, so they agree exactly on this machine. The
# tolerance allows one float32 ulp of the raw probability (~6e-8 relative), should the probability
# xgboost.spark derives from the margin (scipy's expit) round differently from XGBoost's own sigmoid.
PD_TOLERANCE = 1e-6
STAGES = ["read_and_duplicate_check", "scores_written", "rejects_and_counts", "swap", "drift_report"]


def check_format(result: dict, variants: tuple[str, ...]) -> None:
    """One format's figures: each variant's, the ratios, the job's stages and the pd agreement."""
    assert result["rows"] == ROWS
    for variant in variants:
        figures = result[variant]
        assert figures["seconds"] > 0
        assert figures["rows_per_s"] == pytest.approx(ROWS / figures["seconds"], rel=1e-3)
        assert figures["peak_rss_mb"] > 0
    job = result["job"]
    assert job["wall_seconds"] > job["seconds"]
    assert job["startup_seconds"] == pytest.approx(job["wall_seconds"] - job["seconds"], abs=1e-2)
    assert result["job_vs_limit"] == pytest.approx(job["seconds"] / result["limit"]["seconds"], rel=1e-2)
    assert result["reasons_vs_no_reasons"] == pytest.approx(
        job["seconds"] / result["job_no_reasons"]["seconds"], rel=1e-2
    )
    # The stages are the run summary's, ending in order within the run.
    assert list(result["stages"]) == STAGES
    ends = list(result["stages"].values())
    assert ends == sorted(ends) and ends[0] > 0 and ends[-1] <= job["seconds"]
    # The job's pd is the limit's: the same implementations score the same rows.
    assert 0 <= result["max_abs_pd_diff"] < PD_TOLERANCE


@pytest.mark.nightly
def test_bench_score_prints_its_figures_as_json_last(tmp_path):
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    command = [
        sys.executable,
        str(REPO / "scripts" / "bench_score.py"),
        # Reason codes are timed by two more Spark jobs: left to the real runs, to keep the suite short.
        *("--rows", str(ROWS), "--repeat", "1", "--reason-rows", "0"),
        *("--work-dir", str(tmp_path)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    check_format(result, ("job", "job_no_reasons", "job_challenger", "limit", "xgboost_spark"))
    assert result["challenger_vs_job"] == pytest.approx(
        result["job_challenger"]["seconds"] / result["job"]["seconds"], rel=1e-2
    )
    assert result["job_vs_xgboost_spark"] == pytest.approx(
        result["xgboost_spark"]["seconds"] / result["job"]["seconds"], rel=1e-2
    )
    csv = result["csv"]
    check_format(csv, ("job", "job_no_reasons", "limit"))
    assert "xgboost_spark" not in csv and csv["job_vs_xgboost_spark"] is None
    assert result["model"]["kind"] == "deep"
    assert result["reason_codes"] is None
    assert [size["rows"] for size in result["sizes"]] == [ROWS]
    assert result["sizes"][0]["csv"]["limit"]["peak_rss_mb"] > 0
