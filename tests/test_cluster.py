"""The jobs submitted to a Spark standalone cluster on loopback give the answers of local mode.

The cluster (a master and two workers on 127.0.0.1) is brought up once for this module and always brought
down. Each job runs twice on the same generated input: as `python jobs/<job>.py` (local mode) and through
`scripts/submit.sh` (client deploy mode, executors on the packed environment); the local runs overlap the
cluster's, which spend most of their time starting executors and unpacking the environment.
"""

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sampledata import make_history, make_snapshot, write_original_csv
from test_quiet_logs import NOISE

from conftest import SMALL_TRAIN_TOML

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
HISTORY_ROWS = 8000
SNAPSHOT_ROWS = 8000
SNAPSHOT_BAD_ROWS = 7
SNAPSHOT_DATE = "2026-11-21"
JOB_TIMEOUT = 300
COMPARED_COLUMNS = ["uuid", "pd", "is_high_risk", "model_version"]
APP_ID = re.compile(r"app-\d{14}-\d{4}")


def _run(args: list[str], timeout: float = JOB_TIMEOUT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def _local(job: str, argv: list[str]) -> dict:
    """`python jobs/<job>.py` as a user runs it (local mode), its session bound to loopback; its summary."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    done = _run([sys.executable, job, *argv], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return _last_json(done.stdout)


@contextlib.contextmanager
def _on_cluster(cluster, job: str, argv: list[str]):
    """Start `scripts/submit.sh` (client deploy mode) and give a function that waits for its summary and log.

    The driver's streams go to files in the run directory, not pipes: a full pipe would stall it while
    the test does other work. A run still going on the way out is stopped.
    """
    master, run_dir, archive = cluster
    submit = ["bash", "scripts/submit.sh", "--master", master, "--archive", str(archive), job, *argv]
    out_path, log_path = (run_dir / f"{Path(job).stem}-driver.{kind}" for kind in ("out", "log"))
    with out_path.open("w") as out, log_path.open("w") as log:
        driver = subprocess.Popen(submit, cwd=REPO, stdout=out, stderr=log)

        def finish() -> tuple[dict, str]:
            # spark-submit merges the Python driver's stderr into its stdout: the job's log and its
            # one-line reason are there; Spark's own log is on stderr.
            code = driver.wait(timeout=JOB_TIMEOUT)
            printed, log = out_path.read_text(), log_path.read_text()
            assert code == 0, f"{log[-1500:]}\n{printed[-1500:]}"
            # The job names its application in its own log ("spark application app-..."), whatever
            # level Spark's log is at: both streams are searched for it.
            return _last_json(printed), printed + log

        try:
            yield finish
        finally:
            driver.terminate()
            driver.wait()


def _last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _ran_on(cluster, driver_log: str) -> list[Path]:
    """The executors' working directories of the application this driver log belongs to."""
    _, run_dir, _ = cluster
    app_ids = set(APP_ID.findall(driver_log))
    assert len(app_ids) == 1, f"the job ran as {len(app_ids)} applications of the cluster, not one: {app_ids}"
    return sorted(run_dir.glob(f"worker-*/{app_ids.pop()}/*"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cluster-inputs")
    history, _ = make_history(HISTORY_ROWS, seed=4)
    write_original_csv(history, folder / "history.csv")
    snapshot, _ = make_snapshot(SNAPSHOT_ROWS, seed=5, bad_rows=SNAPSHOT_BAD_ROWS)
    write_original_csv(snapshot, folder / "snapshot.csv")
    (folder / "train.toml").write_text(SMALL_TRAIN_TOML)
    return {
        "history": folder / "history.csv",
        "snapshot": folder / "snapshot.csv",
        "config": folder / "train.toml",
    }


@pytest.fixture(scope="module")
def runs(cluster, inputs, tmp_path_factory) -> dict:
    """Training and scoring, each in local mode and on the cluster, on the same input and config.

    The cluster's runs are the slow part (executors start and unpack the environment), so the local runs
    go on meanwhile: {"local"|"cluster": {"model": dir, "train": summary, "score": summary, "out": dir}}.
    """
    out = tmp_path_factory.mktemp("cluster-runs")

    def train_args(mode: str) -> list[str]:
        return [
            "--input",
            str(inputs["history"]),
            "--config",
            str(inputs["config"]),
            "--model-dir",
            str(out / mode / "model"),
        ]

    def score_args(mode: str) -> list[str]:
        return [
            "--input",
            str(inputs["snapshot"]),
            "--model-dir",
            str(out / mode / "model"),
            "--output",
            str(out / mode / "scored"),
            "--snapshot-date",
            SNAPSHOT_DATE,
            "--results-csv",
            str(out / mode / "results.csv"),
        ]

    with _on_cluster(cluster, "jobs/train.py", train_args("cluster")) as cluster_train:
        local = {"train": _local("jobs/train.py", train_args("local"))}
        local["score"] = _local("jobs/score.py", score_args("local"))
        on_cluster = dict(zip(("train", "train_log"), cluster_train(), strict=True))
    with _on_cluster(cluster, "jobs/score.py", score_args("cluster")) as cluster_score:
        on_cluster.update(zip(("score", "score_log"), cluster_score(), strict=True))
    return {
        mode: {**summaries, "model": out / mode / "model", "out": out / mode}
        for mode, summaries in (("local", local), ("cluster", on_cluster))
    }


def test_training_on_the_cluster_gives_the_local_model_version(cluster, runs):
    local, on_cluster = runs["local"], runs["cluster"]
    assert _ran_on(cluster, on_cluster["train_log"]), (
        "the training job did not run on the cluster's executors"
    )
    manifests = {mode: json.loads((runs[mode]["model"] / "manifest.json").read_text()) for mode in runs}
    assert on_cluster["train"]["model_version"] == local["train"]["model_version"]
    assert manifests["cluster"]["model_version"] == manifests["local"]["model_version"]
    assert manifests["local"]["model_version"] == local["train"]["model_version"]
    assert _sha256(on_cluster["model"] / "model.json") == _sha256(local["model"] / "model.json")
    assert on_cluster["train"]["input_rows"] == local["train"]["input_rows"] == HISTORY_ROWS


def test_scoring_on_the_cluster_gives_the_local_rows_and_results_csv(cluster, runs):
    local, on_cluster = runs["local"], runs["cluster"]
    executors = _ran_on(cluster, on_cluster["score_log"])
    assert executors, "the scoring job did not run on the cluster's executors"
    # The scoring UDF ran in the Python each executor unpacked from the archive.
    assert all((executor / "environment" / "bin" / "python").exists() for executor in executors)

    counts = ("model_version", "input_rows", "scored_rows", "rejected_rows")
    assert {k: on_cluster["score"][k] for k in counts} == {k: local["score"][k] for k in counts}
    assert local["score"]["model_version"] == local["train"]["model_version"]
    assert local["score"]["input_rows"] == SNAPSHOT_ROWS + SNAPSHOT_BAD_ROWS

    partition = f"snapshot_date={SNAPSHOT_DATE}"
    rows = {
        mode: pq.read_table(runs[mode]["out"] / "scored" / partition, columns=COMPARED_COLUMNS)
        .sort_by("uuid")
        .to_pylist()
        for mode in runs
    }
    assert len(rows["local"]) == local["score"]["scored_rows"]
    assert rows["cluster"] == rows["local"]

    local_csv = (local["out"] / "results.csv").read_bytes()
    cluster_csv = (on_cluster["out"] / "results.csv").read_bytes()
    assert len(local_csv.splitlines()) == local["score"]["scored_rows"] + 1
    assert cluster_csv == local_csv


def test_a_run_under_submit_sh_prints_no_exception_or_stack_trace(runs):
    """`scripts/submit.sh`'s scoring run, driver and Spark logs both, as quiet as the local launchers'."""
    log = runs["cluster"]["score_log"]
    assert runs["cluster"]["score"]["scored_rows"] > 0
    found = NOISE.findall(log)
    assert not found, f"{found[:5]} in:\n{log[-5000:]}"
