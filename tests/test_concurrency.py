"""Runs at the same time into one table: different dates never interfere, one date is one run at a time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from defaultrisk.errors import LockedError
from defaultrisk.scoring import lock
from defaultrisk.scoring.runlog import runs_path

from rows import row, write_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

DAY, OTHER_DAY = "2026-11-21", "2026-11-22"
QUIET_DRIFT = "[drift]\nenabled = false\n"


@pytest.fixture
def quiet(tmp_path) -> Path:
    config = tmp_path / "score.toml"
    config.write_text(QUIET_DRIFT)
    return config


def _argv(trained, quiet, input_path, output, day) -> list[str]:
    argv = ["--input", input_path, "--model-dir", trained[0], "--output", output, "--config", quiet]
    return [str(a) for a in [*argv, "--snapshot-date", day]]


def _in_threads(spark, argvs: list[list[str]]) -> list[int]:
    codes = [None] * len(argvs)

    def run(number: int) -> None:
        codes[number] = score_job.main(argvs[number], spark=spark)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(argvs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    return codes


def _holder(run_id: str, pid: int, host: str | None = None, age_hours: float = 0.0) -> str:
    started = (datetime.now(UTC) - timedelta(hours=age_hours)).isoformat(timespec="seconds")
    holder = {"run_id": run_id, "host": host or socket.gethostname(), "pid": pid, "started_at": started}
    return json.dumps(holder)


def _dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_two_dates_scored_at_once_into_one_table_both_land_whole(spark, trained, snapshot, quiet, tmp_path):
    output = tmp_path / "scored"
    small = write_csv(tmp_path / "small.csv", [row(i) for i in range(1, 41)] + [row(99, age="7")])
    codes = _in_threads(
        spark,
        [
            _argv(trained, quiet, snapshot[0], output, DAY),
            _argv(trained, quiet, small, output, OTHER_DAY),
        ],
    )
    assert codes == [0, 0]
    runs = spark.read.parquet(runs_path(str(output))).collect()
    assert sorted((str(r.snapshot_date), r.status) for r in runs) == [
        (DAY, "succeeded"),
        (OTHER_DAY, "succeeded"),
    ]
    by_date = {str(r.snapshot_date): r for r in runs}
    table = spark.read.parquet(str(output))
    assert table.where(f"snapshot_date = '{DAY}'").count() == by_date[DAY].scored_rows
    assert table.where(f"snapshot_date = '{OTHER_DAY}'").count() == 40
    assert sorted(p.name for p in output.iterdir()) == [
        "_rejects",
        "_runs",
        f"snapshot_date={DAY}",
        f"snapshot_date={OTHER_DAY}",
    ]


def test_two_runs_of_one_date_take_turns(spark, trained, quiet, tmp_path, monkeypatch):
    """The second run waits for the first's lock; the partition ends whole, with one run's rows."""
    monkeypatch.setenv(lock.WAIT_SECONDS_ENV, "600")
    output = tmp_path / "scored"
    first = write_csv(tmp_path / "a.csv", [row(i) for i in range(1, 31)])
    second = write_csv(tmp_path / "b.csv", [row(i) for i in range(1, 21)])
    codes = _in_threads(
        spark,
        [_argv(trained, quiet, first, output, DAY), _argv(trained, quiet, second, output, DAY)],
    )
    assert codes == [0, 0]
    partition = output / f"snapshot_date={DAY}"
    assert not [p for p in partition.rglob("snapshot_date=*")]  # nothing copied into the live folder
    rows = ds.dataset(partition, format="parquet").count_rows()
    assert rows in (20, 30)
    marker = json.loads((partition / "_SUCCESS").read_text())
    assert marker["scored_rows"] == rows


def test_a_date_held_by_a_live_run_is_refused_with_exit_9_naming_it(
    spark, trained, quiet, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv(lock.WAIT_SECONDS_ENV, "1")
    output = tmp_path / "scored"
    held = output / "_locks" / f"snapshot_date={DAY}"
    held.parent.mkdir(parents=True)
    held.write_text(_holder("20261121T020000Z-11112222", os.getpid()))
    two = write_csv(tmp_path / "two.csv", [row(1), row(2)])
    code = score_job.main(_argv(trained, quiet, two, output, DAY), spark=spark)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 9
    assert err[-1].startswith("score: error: snapshot date 2026-11-21 is being written by run ")
    assert "20261121T020000Z-11112222" in err[-1]
    assert json.loads(held.read_text())["run_id"] == "20261121T020000Z-11112222"
    assert not (output / f"snapshot_date={DAY}").exists()


def test_a_lock_left_by_a_dead_run_is_broken_and_the_run_goes_on(
    spark, trained, quiet, tmp_path, caplog, monkeypatch
):
    monkeypatch.setenv(lock.WAIT_SECONDS_ENV, "1")
    output = tmp_path / "scored"
    held = output / "_locks" / f"snapshot_date={DAY}"
    held.parent.mkdir(parents=True)
    held.write_text(_holder("20261120T020000Z-deadbeef", _dead_pid()))
    two = write_csv(tmp_path / "two.csv", [row(1), row(2)])
    assert score_job.main(_argv(trained, quiet, two, output, DAY), spark=spark) == 0
    assert "broke the lock" in caplog.text
    assert "20261120T020000Z-deadbeef" in caplog.text
    assert not held.exists()
    assert ds.dataset(output / f"snapshot_date={DAY}", format="parquet").count_rows() == 2


@pytest.mark.parametrize(
    ("host", "age_hours", "broken"),
    [("another-host", 30.0, True), ("another-host", 1.0, False), (None, 30.0, False)],
)
def test_a_lock_from_another_host_is_broken_only_when_older_than_the_limit(
    spark, tmp_path, host, age_hours, broken
):
    """On another host the pid says nothing: only the age does. On this host a live pid always holds."""
    day = date(2026, 11, 21)
    held = Path(lock.lock_path(str(tmp_path), day))
    held.parent.mkdir()
    held.write_text(_holder("20261120T020000Z-0000aaaa", os.getpid(), host, age_hours))
    if broken:
        taken = lock.acquire(spark, str(tmp_path), day, "20261121T020000Z-0000bbbb", wait=0.0)
        assert json.loads(held.read_text())["run_id"] == "20261121T020000Z-0000bbbb"
        lock.release(spark, taken)
        assert not held.exists()
    else:
        with pytest.raises(LockedError, match="20261120T020000Z-0000aaaa"):
            lock.acquire(spark, str(tmp_path), day, "20261121T020000Z-0000bbbb", wait=0.0)
        assert json.loads(held.read_text())["run_id"] == "20261120T020000Z-0000aaaa"
