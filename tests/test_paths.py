"""Paths that collide: every one refused before anything is read or written, exit 2, one line."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

DAY = "2026-11-21"
QUIET_DRIFT = "[drift]\nenabled = false\n"


def _digest(folder: Path) -> dict[str, str]:
    """Every file under `folder`, the run log included: a refused run writes nothing at all."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != "model"
    }


@pytest.fixture(scope="module")
def scored(spark, trained, snapshot, tmp_path_factory):
    """One scored table, its results.csv and a private copy of the input, for every case to leave alone."""
    root = tmp_path_factory.mktemp("paths")
    source = root / "in" / "customers.csv"
    source.parent.mkdir()
    shutil.copy(snapshot[0], source)
    config = root / "score.toml"
    config.write_text(QUIET_DRIFT)
    results = root / "results.csv"
    argv = ["--input", source, "--model-dir", trained[0], "--output", root / "scored", "--config", config]
    argv += ["--snapshot-date", DAY, "--results-csv", results]
    assert score_job.main([str(a) for a in argv], spark=spark) == 0
    (root / "model").symlink_to(trained[0])
    return root


def _refused(spark, capsys, scored: Path, dates=("--snapshot-date", DAY), **paths) -> str:
    """Run with some paths changed; assert exit 2 and that no file anywhere changed; the reason line."""
    before = _digest(scored)
    args = {
        "--input": scored / "in" / "customers.csv",
        "--output": scored / "scored",
        "--results-csv": scored / "results.csv",
        "--model-dir": scored / "model",
        "--config": scored / "score.toml",
        **{f"--{k.replace('_', '-')}": v for k, v in paths.items()},
    }
    argv = [str(a) for pair in args.items() for a in pair]
    code = score_job.main([*argv, *dates], spark)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("score: error: ")
    assert _digest(scored) == before
    return err[-1]


def test_results_csv_inside_the_dates_partition_is_refused(spark, scored, capsys):
    target = scored / "scored" / f"snapshot_date={DAY}" / "results.csv"
    line = _refused(spark, capsys, scored, results_csv=target)
    assert str(target) in line
    assert str(scored / "scored") in line


def test_results_csv_at_the_table_root_is_refused(spark, scored, capsys):
    target = scored / "scored" / "results.csv"
    line = _refused(spark, capsys, scored, results_csv=target)
    assert str(target) in line
    assert "inside the table of --output" in line


def test_results_csv_in_the_jobs_own_folders_is_refused(spark, scored, capsys):
    line = _refused(spark, capsys, scored, results_csv=scored / "scored" / "_drift" / "results.csv")
    assert "inside the table of --output" in line
    shadow = scored / "scored" / "_challengers"  # the challengers' shadow table
    assert "inside the table of --output" in _refused(spark, capsys, scored, results_csv=shadow / "r.csv")
    assert "inside the table of --output" in _refused(spark, capsys, scored, rejects=shadow)


def test_results_csv_naming_a_folder_is_refused(spark, scored, capsys):
    folder = scored / "a-folder"
    folder.mkdir(exist_ok=True)
    line = _refused(spark, capsys, scored, results_csv=folder)
    assert str(folder) in line
    assert "is a folder" in line


def test_results_csv_equal_to_the_input_is_refused_and_the_input_kept(spark, scored, capsys):
    source = scored / "in" / "customers.csv"
    spelled_otherwise = scored / "in" / ".." / "in" / "customers.csv"
    line = _refused(spark, capsys, scored, results_csv=spelled_otherwise)
    assert "overlaps the input" in line
    assert str(spelled_otherwise) in line
    assert str(source) in line


def test_a_table_inside_the_input_folder_or_holding_it_is_refused(spark, scored, capsys):
    line = _refused(spark, capsys, scored, input=scored / "in", output=scored / "in" / "_scored")
    assert "overlaps the input" in line
    line = _refused(spark, capsys, scored, input=scored / "scored" / "_incoming" / "customers.csv")
    assert "overlaps the input" in line


def test_a_backfill_writing_two_dates_to_one_results_file_is_refused(spark, scored, capsys):
    template = scored / "res" / "{snapshot_date}" / ".." / "results.csv"
    line = _refused(
        spark,
        capsys,
        scored,
        input=scored / "in" / "customers_{snapshot_date}.csv",
        results_csv=template,
        dates=("--from", "2026-11-01", "--to", "2026-11-03"),
    )
    assert "2026-11-01 and 2026-11-02" in line
    assert not (scored / "res").exists()


def test_rejects_inside_a_partition_or_equal_to_the_table_are_refused(spark, scored, capsys):
    inside = scored / "scored" / f"snapshot_date={DAY}" / "rejects"
    line = _refused(spark, capsys, scored, rejects=inside)
    assert str(inside) in line
    assert str(scored / "scored") in line
    assert "same path" in _refused(spark, capsys, scored, rejects=scored / "scored")


def test_output_that_is_a_file_or_holds_a_template_or_glob_is_refused(spark, scored, capsys):
    a_file = scored / "a-file"
    a_file.write_text("not a table")
    assert "a folder is meant" in _refused(spark, capsys, scored, output=a_file)
    templated = scored / "out-{snapshot_date}"
    assert "{snapshot_date}" in _refused(spark, capsys, scored, output=templated)
    assert not templated.exists()
    globbed = scored / "out[1]"
    assert "glob" in _refused(spark, capsys, scored, output=globbed, rejects=scored / "rejects")
    assert "glob" in _refused(spark, capsys, scored, rejects=scored / "rej{a,b}")
    assert not globbed.exists()
