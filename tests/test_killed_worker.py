"""A scoring task whose Python worker is killed is retried, and no customer is lost or doubled.

Two checks. In a `local[2,2]` session (a task may fail once), the test-only worker module
`pyspark_faulty_worker` makes the first attempt of one scoring task die: deterministic, no sleeps. On the
loopback standalone cluster (see conftest's `cluster`, marker `slow`): the job is submitted with
`scripts/submit.sh`; once it is scoring, the busy forked Python workers of the cluster's executors are
killed with SIGKILL.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sampledata import make_snapshot, write_original_csv

ROWS = 60_000
BAD_ROWS = 7
# Both checks run a whole job under spark-submit: the second stage.
pytestmark = pytest.mark.slow

DATE = "2026-11-21"
REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
SCORING_STARTED = "read and checked for duplicates in"  # logged just before the Python stage
SCORING_DONE = "scored at"  # logged once the scored partition is staged, before rejects and drift
KILL_DIR = "DEFAULTRISK_TEST_KILL_DIR"  # where pyspark_faulty_worker records the task it killed
LOST_TASK = re.compile(r"Lost task (\d+)\.(\d+) in stage (\d+)\.(\d+)")


def _every_row_once(output: Path, summary: dict, frame, info) -> None:
    assert summary["input_rows"] == len(frame)
    assert summary["rejected_rows"] == info["expected_rejected_rows"]
    uuids = pq.read_table(output / f"snapshot_date={DATE}", columns=["uuid"]).column("uuid").to_pylist()
    assert len(uuids) == summary["scored_rows"] == len(frame) - info["expected_rejected_rows"]
    assert len(set(uuids)) == len(uuids)


def test_a_scoring_task_whose_worker_dies_is_retried_and_every_row_lands_once(trained, tmp_path):
    frame, info = make_snapshot(6_000, seed=12, bad_rows=BAD_ROWS)
    snapshot = tmp_path / "snapshot.csv"
    write_original_csv(frame, snapshot)
    output, kills = tmp_path / "scored", tmp_path / "kills"
    kills.mkdir()
    config = tmp_path / "score.toml"
    config.write_text("[drift]\nenabled = false\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "lib"), str(TESTS)]),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        KILL_DIR: str(kills),
    }
    submit = [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[2,2]"]
    submit += ["--properties-file", str(TESTS / "spark-test.conf")]
    submit += ["--conf", "spark.python.worker.module=pyspark_faulty_worker", str(REPO / "jobs" / "score.py")]
    args = ["--input", str(snapshot), "--model-dir", str(trained[0]), "--output", str(output)]
    args += ["--snapshot-date", DATE, "--config", str(config)]
    job = subprocess.run(
        [*submit, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    assert job.returncode == 0, job.stderr[-3000:]
    killed = [p.name for p in kills.iterdir()]
    assert len(killed) == 1, killed  # one scoring task's first attempt died, and only that one
    stage = int(killed[0].split("-")[1])
    lost = [m.groups() for m in LOST_TASK.finditer(job.stderr)]
    assert lost == [("0", "0", str(stage), "0")], job.stderr[-3000:]
    _every_row_once(output, json.loads(job.stdout.strip().splitlines()[-1]), frame, info)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])  # utime + stime


def _forked_python_workers(run_dir: Path) -> list[int]:
    """Forked Python workers of this cluster's executors: pyspark.daemon's children, working in run_dir."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or "pyspark.daemon" not in _cmdline(int(entry.name)):
            continue
        try:
            parent = int(Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue
        if "pyspark.daemon" in _cmdline(parent) and cwd.startswith(str(run_dir)):
            workers.append(int(entry.name))
    return workers


def _kill_busy_workers(run_dir: Path, deadline: float) -> list[int]:
    """SIGKILL the workers burning CPU over two samples in a row (scoring, not idle); return their PIDs."""
    while time.monotonic() < deadline:
        first = {pid: _cpu_ticks(pid) for pid in _forked_python_workers(run_dir)}
        time.sleep(0.4)
        second = {pid: _cpu_ticks(pid) for pid in first}
        time.sleep(0.4)
        busy = [pid for pid in first if _cpu_ticks(pid) > second[pid] > first[pid] >= 0]
        if busy:
            for pid in busy:
                os.kill(pid, signal.SIGKILL)
            return busy
    return []


def test_a_killed_python_worker_is_retried_and_every_row_lands_once(cluster, trained, tmp_path):
    master, run_dir, archive = cluster
    frame, info = make_snapshot(ROWS, seed=12, bad_rows=BAD_ROWS)
    snapshot = tmp_path / "snapshot.csv"
    write_original_csv(frame, snapshot)
    output = tmp_path / "scored"
    args = ["--input", str(snapshot), "--model-dir", str(trained[0]), "--output", str(output)]
    submit = ["bash", "scripts/submit.sh", "--master", master, "--archive", str(archive), "jobs/score.py"]
    # Under spark-submit the driver's log and its summary line share one stream.
    job = subprocess.Popen(
        [*submit, *args, "--snapshot-date", DATE],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    scoring = threading.Event()

    def follow() -> None:
        for line in job.stdout:
            log.append(line)
            if SCORING_STARTED in line:
                scoring.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        assert scoring.wait(timeout=240), "".join(log[-50:])
        killed: list[int] = []
        for _ in range(2):  # a worker killed just as its task ended costs no task: then try once more
            killed += _kill_busy_workers(run_dir, deadline=time.monotonic() + 120)
            time.sleep(5)
            if job.poll() is not None or any("Lost task" in line for line in log):
                break
        job.wait(timeout=300)
    finally:
        job.kill()
    follower.join(timeout=10)
    driver_log = "".join(log)
    assert killed, "no busy Python worker was found to kill"
    assert job.returncode == 0, driver_log[-3000:]
    # The lost task must be the scoring stage's: logged after scoring started and before it ended
    # (a task lost in the drift stage, after the scores are written, proves nothing).
    scoring = driver_log[driver_log.index(SCORING_STARTED) : driver_log.index(SCORING_DONE)]
    assert LOST_TASK.search(scoring), driver_log[-3000:]

    summary = json.loads(next(line for line in reversed(log) if line.startswith('{"snapshot_date"')))
    _every_row_once(output, summary, frame, info)
