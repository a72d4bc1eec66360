"""A successful scoring run prints no exception, stack trace or code-generation warning, on either input
format and under either launcher; its run summary carries the stages' times."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
# What an operator must never see in a run that succeeded: a Java or Python stack trace, an exception's
# name, Spark's code generator giving up (and falling back), or an error line.
NOISE = re.compile(
    r"Exception|Traceback|^\s+at [\w$.<>]+\(|generated\.java|CodeGenerator|Code grows beyond|"
    r"Truncated the string representation|\bERROR\b",
    re.MULTILINE,
)
STAGES = ["read_and_duplicate_check", "scores_written", "rejects_and_counts", "swap", "drift_report"]


def _typed_parquet(snapshot_csv: Path, target: Path) -> Path:
    """The snapshot as a warehouse export holds it: numbers typed where every value is one."""
    frame = pd.read_csv(snapshot_csv, sep=";", dtype=str, keep_default_na=False, na_values=["NA"])
    for column in frame.columns:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if column != "uuid" and numbers.notna().sum() == frame[column].notna().sum():
            frame[column] = numbers
    frame.to_parquet(target, index=False)
    return target


def _score(launcher: list[str], input_path: Path, model_dir: Path, out: Path) -> subprocess.CompletedProcess:
    argv = ["--input", input_path, "--model-dir", model_dir, "--output", out / "pd"]
    argv += ["--snapshot-date", "2026-11-24", "--results-csv", out / "results.csv"]
    env = {**os.environ, "SPARK_CONF_DIR": str(REPO / "conf")}
    return subprocess.run(
        [*launcher, "jobs/score.py", *map(str, argv)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _assert_quiet_and_summarised(done: subprocess.CompletedProcess, rows: int) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    found = NOISE.findall(output)
    assert not found, f"{found[:5]} in:\n{output[-5000:]}"
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["input_rows"] == rows == summary["scored_rows"] + summary["rejected_rows"]
    stages = summary["stages"]
    assert list(stages) == STAGES
    times = list(stages.values())
    assert times == sorted(times) and times[0] > 0 and times[-1] <= summary["seconds"]


def test_the_readme_spark_submit_line_on_the_original_csv_is_quiet(trained, snapshot, tmp_path):
    """The README's launcher line (`SPARK_CONF_DIR=conf spark-submit --properties-file ...`) on CSV,
    the format whose checks once overflowed Spark's code generator and logged its traces every run."""
    launcher = [str(VENV_BIN / "spark-submit"), "--properties-file", "conf/spark-local.conf"]
    done = _score(launcher, snapshot[0], trained[0], tmp_path)
    _assert_quiet_and_summarised(done, len(snapshot[1]))


def test_a_plain_python_run_on_typed_parquet_is_quiet(trained, snapshot, tmp_path):
    parquet = _typed_parquet(snapshot[0], tmp_path / "snapshot.parquet")
    done = _score([sys.executable], parquet, trained[0], tmp_path)
    _assert_quiet_and_summarised(done, len(snapshot[1]))
