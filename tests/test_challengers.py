"""Challengers scored beside the live model: one pass, a shadow table of their own, and main outputs
that do not change by a byte."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from jobrun import run_job

from defaultrisk import read
from defaultrisk.errors import OutputError
from defaultrisk.features import model_input
from defaultrisk.grades import grade_of, scale_from_manifest
from defaultrisk.model import load_checked
from defaultrisk.schema import CHALLENGERS_DIR, REQUIRED_COLUMNS, SHADOW_SCHEMA
from defaultrisk.scoring import journal, staging
from defaultrisk.scoring.core import OUTCOME_COLUMNS, challenger_pd_column, score_frame
from defaultrisk.scoring.udf import check_and_score
from defaultrisk.validate import duplicate_keys, select_known_columns, valid_rows, validate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

DAY, EARLIER = "2026-11-21", "2026-11-20"
QUIET_DRIFT = "[drift]\nenabled = false\n"  # drift is the live model's alone: not what is tested here
PER_RUN = ["scored_at"]  # a run's own timestamp; every other column must match


def _version(model_dir: Path) -> str:
    return json.loads((model_dir / "manifest.json").read_text())["model_version"]


def _score(spark, capsys, tmp_path, input_path, output, dates, *extra, model_dir):
    config = tmp_path / "score.toml"
    config.write_text(QUIET_DRIFT)
    argv = ["--input", input_path, "--model-dir", model_dir, "--output", output, "--config", config]
    return run_job(score_job.main, [*argv, *dates, *extra], spark, capsys)


def _main_table(output: Path, day: str) -> pa.Table:
    return pq.read_table(output / f"snapshot_date={day}").drop(PER_RUN).sort_by("uuid")


def _shadow(output: Path) -> pa.Table:
    """The shadow table as pyarrow reads it: both partition columns typed from the folder names."""
    partitions = ds.partitioning(
        pa.schema([("snapshot_date", pa.date32()), ("model_version", pa.string())]), flavor="hive"
    )
    return ds.dataset(output / CHALLENGERS_DIR, format="parquet", partitioning=partitions).to_table()


def _valid_frame(spark, input_path: Path):
    """The snapshot's valid rows as `score_frame` takes them (the same contract as the job's)."""
    known = select_known_columns(read.read_raw(spark, str(input_path)), REQUIRED_COLUMNS)
    return known, model_input(valid_rows(validate(known))).toPandas()


def _run_log(output: Path) -> list[dict]:
    return pq.read_table(output / "_runs").to_pylist()


def test_the_pass_carries_one_pd_column_per_challenger_and_none_without(
    spark, snapshot, trained, challenger_trained
):
    """In session: the UDF's output is exactly today's without challengers; with one, its pd column is
    the challenger's `score_frame` pd on the valid rows, null on the others, and the live columns do
    not move."""
    known, frame = _valid_frame(spark, snapshot[0])
    live, challenger = load_checked(trained[0]), load_checked(challenger_trained[0])
    duplicates = dict(duplicate_keys(known))
    alone = check_and_score(known, live.payload, duplicates, 3, "high_risk")
    beside = check_and_score(
        known, live.payload, duplicates, 3, "high_risk", challengers=[challenger.payload]
    )
    assert alone.columns == list(OUTCOME_COLUMNS)
    assert beside.columns == [*OUTCOME_COLUMNS, challenger_pd_column(1)]

    got = beside.toPandas().set_index("uuid", drop=False)
    before = alone.toPandas().set_index("uuid", drop=False)
    live_columns = ["pd", "is_high_risk", "reason", "_skipped"]
    assert got[live_columns].sort_index().equals(before[live_columns].sort_index())
    assert got["reason_codes"].sort_index().map(repr).equals(before["reason_codes"].sort_index().map(repr))

    expected = score_frame(frame, challenger.model).set_index("uuid")["pd"]
    scored = got[got["reason"].isna()]
    assert len(scored) == len(expected) == len(frame)
    np.testing.assert_array_equal(scored["_pd_1"].loc[expected.index].to_numpy(), expected.to_numpy())
    assert got.loc[got["reason"].notna(), "_pd_1"].isna().all()
    assert not np.array_equal(scored["_pd_1"].to_numpy(), scored["pd"].to_numpy())  # two models indeed


def test_retiring_a_shadow_partition_is_journaled_rolled_back_on_failure_and_completed_after_a_crash(
    spark, tmp_path
):
    """A rerun without challengers moves the date's shadow partition to trash inside the journaled
    swap: a swap failing at its last rename puts it back; a journal left by a dead driver is
    completed by the next run, retirement included."""
    day, run_id = date.fromisoformat(DAY), "20261121T010000Z-0badc0de"
    out = tmp_path / "scored"
    shadow_live = out / CHALLENGERS_DIR / f"snapshot_date={DAY}"
    (shadow_live / "model_version=pd-0123456789ab").mkdir(parents=True)
    (shadow_live / "model_version=pd-0123456789ab" / "part-0.parquet").write_bytes(b"old shadow scores")
    retired = staging.RetiredPartition(staging.shadow_root(str(out)), run_id, str(shadow_live))

    def staged_scores() -> staging.StagedPartition:
        folder = out / "_staging" / run_id / f"snapshot_date={DAY}"
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"new scores")
        return staging.StagedPartition(str(out), run_id, str(out / f"snapshot_date={DAY}"), str(folder))

    staged_csv, blocked = tmp_path / f"results.csv.{run_id}.tmp", tmp_path / "blocked"
    staged_csv.write_text("uuid;pd\n")
    (blocked / "inside").mkdir(parents=True)  # a folder where results.csv goes: the last rename fails
    with pytest.raises(OutputError):
        journal.swap(spark, str(out), day, [staged_scores()], (str(staged_csv), str(blocked)), [retired])
    assert (
        shadow_live / "model_version=pd-0123456789ab" / "part-0.parquet"
    ).read_bytes() == b"old shadow scores"
    assert not (out / f"snapshot_date={DAY}").exists()
    assert not (out / CHALLENGERS_DIR / "_trash").exists()
    assert not Path(journal.journal_path(str(out), day)).exists()

    scores = staged_scores()
    moves = [
        {
            "root": p.root,
            "run_id": run_id,
            "staged": staged,
            "live": p.partition,
            "trash": staging.trash_path(p),
        }
        for p, staged in ((scores, scores.staged), (retired, None))
    ]
    left = Path(journal.journal_path(str(out), day))
    left.parent.mkdir(parents=True)
    left.write_text(json.dumps({"run_id": run_id, "moves": moves, "results": None}))
    completed = journal.recover(spark, str(out), day, "20261121T020000Z-0000beef")
    assert [Path(p.removeprefix("file:")) for p in completed] == [left]
    assert not shadow_live.exists()
    assert (out / f"snapshot_date={DAY}" / "part-0.parquet").read_bytes() == b"new scores"
    assert not (out / CHALLENGERS_DIR / "_trash").exists()
    assert not left.exists()


@pytest.mark.job
def test_a_challenger_scores_beside_the_live_model_and_the_main_outputs_do_not_change(
    spark, snapshot, trained, challenger_trained, tmp_path, capsys
):
    path = snapshot[0]
    plain_out, plain_csv = tmp_path / "plain", tmp_path / "plain.csv"
    out, csv = tmp_path / "shadowed", tmp_path / "shadowed.csv"
    dates = ("--snapshot-date", DAY)
    code, plain, _ = _score(
        spark, capsys, tmp_path, path, plain_out, dates, "--results-csv", plain_csv, model_dir=trained[0]
    )
    assert code == 0
    assert not (plain_out / CHALLENGERS_DIR).exists()
    assert "challengers" not in plain
    assert "challengers_written" not in plain["stages"]
    extra = ("--results-csv", csv, "--challenger", challenger_trained[0])
    code, summary, _ = _score(spark, capsys, tmp_path, path, out, dates, *extra, model_dir=trained[0])
    assert code == 0

    # The main outputs: the same rows, the same results.csv bytes, the same rejects.
    assert _main_table(out, DAY).equals(_main_table(plain_out, DAY))
    assert csv.read_bytes() == plain_csv.read_bytes()
    rejects = [
        pq.read_table(o / "_rejects" / f"snapshot_date={DAY}").sort_by("uuid") for o in (out, plain_out)
    ]
    assert rejects[0].equals(rejects[1])
    for key in ("model_version", "input_rows", "scored_rows", "rejected_rows", "pd_mean"):
        assert summary[key] == plain[key]
    champion, version = _version(trained[0]), _version(challenger_trained[0])
    assert summary["challengers"] == [
        {
            "model_version": version,
            "model_dir": str(challenger_trained[0]),
            "scored_rows": summary["scored_rows"],
        }
    ]
    assert "challengers_written" in summary["stages"]

    # The shadow table, read by pyarrow: the main table's uuids, the challenger's pd and grade.
    shadow = _shadow(out)
    main = pq.read_table(out / f"snapshot_date={DAY}")
    assert sorted(shadow.column("uuid").to_pylist()) == sorted(main.column("uuid").to_pylist())
    assert set(shadow.column("model_version").to_pylist()) == {version}
    assert set(shadow.column("champion_version").to_pylist()) == {champion}
    assert set(shadow.column("snapshot_date").to_pylist()) == {date.fromisoformat(DAY)}
    assert set(shadow.column("scored_at").to_pylist()) == set(main.column("scored_at").to_pylist())
    _, frame = _valid_frame(spark, path)
    challenger = load_checked(challenger_trained[0])
    expected = score_frame(frame, challenger.model).sort_values("uuid")
    ordered = shadow.sort_by("uuid")
    np.testing.assert_array_equal(ordered.column("pd").to_numpy(), expected["pd"].to_numpy())
    grades = grade_of(expected["pd"].to_numpy(), scale_from_manifest(challenger.manifest))
    np.testing.assert_array_equal(ordered.column("grade").to_numpy(), grades)

    # The same table read by Spark: the fixed schema, both partition columns.
    by_spark = spark.read.schema(SHADOW_SCHEMA).parquet(str(out / CHALLENGERS_DIR))
    assert (
        by_spark.where(f"snapshot_date = DATE'{DAY}' AND model_version = '{version}'").count()
        == main.num_rows
    )
    joined = by_spark.join(spark.read.parquet(str(out)), on=["uuid", "snapshot_date"], how="inner")
    assert joined.count() == main.num_rows
    marker = json.loads((out / CHALLENGERS_DIR / f"snapshot_date={DAY}" / "_SUCCESS").read_text())
    assert marker["run_id"] == summary["run_id"]
    assert marker["champion_version"] == champion
    assert [c["model_version"] for c in marker["challengers"]] == [version]

    # docs/challengers.md's Spark and DuckDB blocks, as written, on this table.
    page = (REPO / "docs" / "challengers.md").read_text()
    blocks = {lang: block.replace("warehouse/pd", str(out)) for lang, block in _blocks(page)}
    names = {"spark": spark}
    exec(blocks["python"], names)
    assert names["paired"].where(f"challenger = '{version}'").count() == main.num_rows
    (row,) = duckdb.sql(blocks["sql"]).fetchall()
    assert row[:3] == (date.fromisoformat(DAY), version, main.num_rows)
    assert row[4] == pytest.approx(float(np.mean(expected["pd"])))


def _blocks(page: str) -> list[tuple[str, str]]:
    return re.findall(r"```(python|sql)\n(.*?)```", page, re.DOTALL)


@pytest.mark.job
def test_a_dated_challenger_scores_from_its_date_and_reruns_replace_or_retire_its_partition(
    spark, snapshot, trained, challenger_trained, tmp_path, capsys
):
    """A first run of DAY with the challenger; a backfill from the day before with the challenger from
    DAY on (DAY's shadow partition replaced, the earlier date without one); a rerun of DAY without it
    (its shadow partition retired by the journaled swap, nothing else moved)."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for day in (EARLIER, DAY):
        shutil.copy(snapshot[0], inputs / f"customers_{day}.csv")
    template, out = inputs / "customers_{snapshot_date}.csv", tmp_path / "scored"
    version = _version(challenger_trained[0])
    shadow_day = out / CHALLENGERS_DIR / f"snapshot_date={DAY}"

    code, first, _ = _score(
        spark, capsys, tmp_path, template, out, ("--snapshot-date", DAY),
        "--challenger", challenger_trained[0], model_dir=trained[0],
    )  # fmt: skip
    assert code == 0
    assert json.loads((shadow_day / "_SUCCESS").read_text())["run_id"] == first["run_id"]

    dated = f"{DAY}={challenger_trained[0]}"
    code, backfill, _ = _score(
        spark, capsys, tmp_path, template, out, ("--from", EARLIER, "--to", DAY),
        "--challenger", dated, model_dir=trained[0],
    )  # fmt: skip
    assert code == 0
    runs = {r["snapshot_date"]: r for r in backfill["runs"]}
    assert "challengers" not in runs[EARLIER]
    assert [c["model_version"] for c in runs[DAY]["challengers"]] == [version]
    assert sorted(p.name for p in (out / CHALLENGERS_DIR).iterdir()) == [f"snapshot_date={DAY}"]
    held = sorted(p.name for p in shadow_day.iterdir() if not p.name.endswith(".crc"))
    assert held == ["_SUCCESS", f"model_version={version}"]
    assert json.loads((shadow_day / "_SUCCESS").read_text())["run_id"] == runs[DAY]["run_id"]
    shadow = _shadow(out)
    assert shadow.num_rows == runs[DAY]["scored_rows"]  # replaced, not added to
    main_day = pq.read_table(out / f"snapshot_date={DAY}")
    assert set(shadow.column("scored_at").to_pylist()) == set(main_day.column("scored_at").to_pylist())

    earlier_before = _main_table(out, EARLIER)
    # What a run killed while staging its shadow rows leaves: the next run of the date removes it.
    leftover = out / CHALLENGERS_DIR / "_staging" / "20261120T010000Z-0badc0de" / f"snapshot_date={DAY}"
    leftover.mkdir(parents=True)
    (leftover / "part-0.parquet").write_bytes(b"a killed run's shadow rows")
    code, rerun, _ = _score(
        spark, capsys, tmp_path, inputs / f"customers_{DAY}.csv", out, ("--snapshot-date", DAY),
        model_dir=trained[0],
    )  # fmt: skip
    assert code == 0
    assert "challengers" not in rerun
    assert not shadow_day.exists()
    assert not [p for p in (out / CHALLENGERS_DIR).rglob("*")]  # no partition, no leftover
    assert not (out / "_journal").exists()
    assert _main_table(out, EARLIER).equals(earlier_before)
    assert _main_table(out, DAY).num_rows == rerun["scored_rows"]
    assert [r["status"] for r in _run_log(out)] == ["succeeded"] * 4


def _broken_by_its_file(model_dir: Path) -> str:
    with (model_dir / "model.json").open("a") as fh:
        fh.write(" ")
    return "does not match its manifest"


def _broken_by_its_xgboost(model_dir: Path) -> str:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["xgboost_version"] = "1.7.6"
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    return "does not match what the model scores with"


@pytest.mark.job
@pytest.mark.parametrize("breaking", [_broken_by_its_file, _broken_by_its_xgboost])
def test_a_broken_challenger_stops_the_run_before_anything_is_written(
    spark, snapshot, trained, challenger_trained, tmp_path, capsys, breaking
):
    broken = tmp_path / "challenger"
    shutil.copytree(challenger_trained[0], broken)
    words = breaking(broken)
    out, csv = tmp_path / "scored", tmp_path / "results.csv"
    code, summary, err = _score(
        spark, capsys, tmp_path, snapshot[0], out, ("--snapshot-date", DAY),
        "--results-csv", csv, "--challenger", broken, model_dir=trained[0],
    )  # fmt: skip
    assert code == 4
    assert summary is None
    assert words in err.strip().splitlines()[-1]
    assert sorted(p.name for p in out.iterdir()) == ["_runs"]  # no table, no _challengers, no rejects
    assert not csv.exists()
    failed = _run_log(out)
    assert [(r["snapshot_date"].isoformat(), r["status"]) for r in failed] == [(DAY, "failed")]
    assert words in failed[0]["error"]


@pytest.mark.job
def test_a_challenger_that_is_the_live_model_or_another_challenger_is_a_usage_error(
    spark, snapshot, trained, challenger_trained, tmp_path, capsys
):
    out = tmp_path / "scored"
    same = tmp_path / "same-challenger"
    shutil.copytree(challenger_trained[0], same)  # another folder, the same model
    dates = ("--snapshot-date", DAY)
    for challengers, words in (
        ([trained[0]], "is the live model of"),
        ([challenger_trained[0], same], f"is the same model as --challenger {challenger_trained[0]}"),
    ):
        extra = [a for c in challengers for a in ("--challenger", c)]
        code, _, err = _score(spark, capsys, tmp_path, snapshot[0], out, dates, *extra, model_dir=trained[0])
        assert code == 2
        assert words in err.strip().splitlines()[-1]
        assert sorted(p.name for p in out.iterdir()) == ["_runs"]

    code, plan, _ = _score(
        spark, capsys, tmp_path, tmp_path / "in_{snapshot_date}.csv", tmp_path / "planned",
        ("--from", EARLIER, "--to", DAY),
        "--dry-run", "--challenger", f"{DAY}={challenger_trained[0]}", model_dir=trained[0],
    )  # fmt: skip
    assert code == 0
    by_date = {d["snapshot_date"]: d for d in plan["dates"]}
    assert "challengers" not in by_date[EARLIER]
    assert by_date[DAY]["challengers"] == [
        {"model_dir": str(challenger_trained[0]), "model_version": _version(challenger_trained[0])}
    ]
    assert not (tmp_path / "planned").exists()
