"""Old or new, never half: output errors, a full disk, a swap cut by a crash, what killed runs leave."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from jobrun import run_job

from defaultrisk.scoring.journal import journal_path
from defaultrisk.scoring.runlog import runs_path

from rows import row, write_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

DAY, OTHER_DAY = "2026-11-21", "2026-11-22"
QUIET_DRIFT = "[drift]\nenabled = false\n"
DEAD_RUN = "20261120T010000Z-0badc0de"


def _digest(folder: Path) -> dict[str, str]:
    """Every file of the tables; the run log, which gains a row per run, aside."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "_runs" not in p.relative_to(folder).parts
    }


@pytest.fixture
def quiet(tmp_path) -> Path:
    config = tmp_path / "score.toml"
    config.write_text(QUIET_DRIFT)
    return config


def _score(spark, capsys, trained, quiet, input_path, output, day=DAY, *extra) -> tuple[int, str]:
    argv = ["--input", input_path, "--model-dir", trained[0], "--output", output, "--config", quiet]
    code, _, err = run_job(score_job.main, [*argv, "--snapshot-date", day, *extra], spark, capsys)
    return code, err


def _rows(output: Path, day: str) -> int:
    return ds.dataset(output / f"snapshot_date={day}", format="parquet").count_rows()


def test_an_output_under_a_regular_file_exits_5_naming_the_path_and_reason(
    spark, trained, snapshot, quiet, tmp_path, capsys
):
    blocker = tmp_path / "somefile"
    blocker.write_text("a file where a folder should be")
    code, err = _score(spark, capsys, trained, quiet, snapshot[0], blocker / "out")
    assert code == 5
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error: cannot write ")
    assert str(blocker / "out") in last
    assert "Not a directory" in last
    assert "Traceback" not in err
    assert blocker.read_text() == "a file where a folder should be"


def test_rejects_under_a_regular_file_exit_5_and_leave_the_live_outputs(
    spark, trained, snapshot, quiet, tmp_path, capsys
):
    output, results = tmp_path / "scored", tmp_path / "results.csv"
    assert _score(spark, capsys, trained, quiet, snapshot[0], output, DAY, "--results-csv", results)[0] == 0
    before, results_before = _digest(output), results.read_bytes()
    blocker = tmp_path / "somefile"
    blocker.write_text("x")
    smaller = write_csv(tmp_path / "smaller.csv", [row(1), row(2, age="7")])
    extra = ("--results-csv", results, "--rejects", blocker / "rejects")
    code, err = _score(spark, capsys, trained, quiet, smaller, output, DAY, *extra)
    assert code == 5
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error: cannot write ")
    assert str(blocker / "rejects") in last
    assert "Py4JJavaError" not in last
    assert _digest(output) == before
    assert results.read_bytes() == results_before
    runs = pq.read_table(runs_path(str(output))).to_pylist()
    assert sorted(r["status"] for r in runs) == ["failed", "succeeded"]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=False)
    return done.returncode == 0


def test_a_disk_filling_while_staging_exits_5_and_leaves_the_live_partition(
    spark, trained, snapshot, quiet, tmp_path, capsys
):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "192k"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        output = disk / "scored"
        tiny = write_csv(tmp_path / "tiny.csv", [row(1), row(2)])
        assert _score(spark, capsys, trained, quiet, tiny, output)[0] == 0
        before = _digest(output)
        code, err = _score(spark, capsys, trained, quiet, snapshot[0], output)
        assert code == 5
        last = err.strip().splitlines()[-1]
        assert last.startswith("score: error: cannot write ")
        assert "No space left on device" in last
        assert _digest(output) == before
        assert _rows(output, DAY) == 2
    finally:
        # Lazily: the JVM may still hold a failed task's file open on it for a moment.
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def test_a_swap_cut_between_its_renames_is_completed_by_the_next_run(
    spark, trained, snapshot, quiet, tmp_path, capsys, caplog
):
    """The state a driver killed between the two renames of the scores leaves, built on disk."""
    output = tmp_path / "scored"
    assert _score(spark, capsys, trained, quiet, snapshot[0], output)[0] == 0
    other = tmp_path / "other"
    two = write_csv(tmp_path / "two.csv", [row(1), row(2), row(3, age="7")])
    assert _score(spark, capsys, trained, quiet, two, other)[0] == 0
    part = f"snapshot_date={DAY}"
    staged_scores = output / "_staging" / DEAD_RUN / part
    staged_rejects = output / "_rejects" / "_staging" / DEAD_RUN / part
    shutil.copytree(other / part, staged_scores)
    shutil.copytree(other / "_rejects" / part, staged_rejects)
    trash = output / "_trash" / DEAD_RUN / part
    trash.parent.mkdir(parents=True)
    (output / part).rename(trash)  # the first rename happened; the second did not
    journal = Path(journal_path(str(output), date.fromisoformat(DAY)))
    journal.parent.mkdir()
    moves = [
        {
            "root": str(root),
            "run_id": DEAD_RUN,
            "staged": str(staged),
            "live": str(root / part),
            "trash": str(root / "_trash" / DEAD_RUN / part),
        }
        for root, staged in ((output, staged_scores), (output / "_rejects", staged_rejects))
    ]
    journal.write_text(json.dumps({"run_id": DEAD_RUN, "moves": moves, "results": None}))

    # Another date's run touches the table: it completes the interrupted swap before anything else.
    assert _score(spark, capsys, trained, quiet, two, output, OTHER_DAY)[0] == 0
    assert f"completed the swap of run {DEAD_RUN}" in caplog.text
    assert _rows(output, DAY) == 2
    assert ds.dataset(output / "_rejects" / part, format="parquet").count_rows() == 1
    assert json.loads((output / part / "_SUCCESS").read_text())["scored_rows"] == 2
    assert not journal.exists()
    assert not (output / "_staging").exists()
    assert not (output / "_trash").exists()
    table = ds.dataset(output, format="parquet", partitioning="hive")
    assert table.count_rows() == 4


def test_the_next_run_of_a_date_removes_what_killed_runs_left_of_it(
    spark, trained, quiet, tmp_path, capsys, caplog
):
    output, results = tmp_path / "scored", tmp_path / "res" / "results.csv"
    two = write_csv(tmp_path / "two.csv", [row(1), row(2)])
    mine = output / "_staging" / DEAD_RUN / f"snapshot_date={DAY}"
    theirs = output / "_staging" / DEAD_RUN / f"snapshot_date={OTHER_DAY}"
    trashed = output / "_rejects" / "_trash" / DEAD_RUN / f"snapshot_date={DAY}"
    for folder in (mine, theirs, trashed):
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"half a file")
    results.parent.mkdir()
    stale = [
        results.parent / f"results.csv.{DEAD_RUN}.tmp",
        results.parent / f"results.csv.{DEAD_RUN}.staging",
    ]
    for path in stale:
        path.write_text("uuid;pd\n")
    unrelated = results.parent / "results.csv.bak"
    unrelated.write_text("kept")

    assert _score(spark, capsys, trained, quiet, two, output, DAY, "--results-csv", results)[0] == 0
    for path in (mine, trashed, *stale):
        assert not path.exists()
        assert f"removed file:{path}," in caplog.text
    assert (theirs / "part-0.parquet").exists()  # another date's: that date's next run removes it
    assert unrelated.read_text() == "kept"
    assert _rows(output, DAY) == 2
