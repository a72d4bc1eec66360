"""The jobs through their command line: outputs, the run summary, reruns and exit codes."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from jobrun import run_job
from pyspark import TaskContext
from sampledata import make_history, write_original_csv

from defaultrisk.schema import FEATURE_NAMES, INPUT_COLUMNS, SCORED_SCHEMA
from defaultrisk.scoring import staging

from conftest import SMALL_TRAIN_TOML
from rows import row, write_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402
import train as train_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job


def _score(spark, capsys, model_dir, input_path, output, date, *extra) -> tuple[int, dict | None, str]:
    argv = ["--input", input_path, "--model-dir", model_dir, "--output", output]
    return run_job(score_job.main, [*argv, "--snapshot-date", date, *extra], spark, capsys)


def _digest(folder: Path) -> dict[str, str]:
    """Every file of the scored table and its rejects; the run log, which gains a row per run, aside."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "_runs" not in p.relative_to(folder).parts
    }


def test_train_job_writes_model_manifest_and_metrics(spark, history, tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text(SMALL_TRAIN_TOML)
    model_dir = tmp_path / "model"
    argv = ["--input", history[0], "--model-dir", model_dir, "--config", config]
    code, summary, _ = run_job(train_job.main, argv, spark, capsys)
    assert code == 0
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert summary["model_version"] == manifest["model_version"]
    assert manifest["training"]["xgboost"]["n_estimators"] == 30
    assert (model_dir / "model.json").is_file()
    assert (model_dir / "metrics.json").is_file()


def test_score_job_writes_table_rejects_results_and_reconciles_and_a_failing_rerun_leaves_them(
    spark, trained, snapshot, tmp_path, capsys
):
    """One scored table, then a rerun of its date that fails after scoring (its results.csv cannot be
    written): the table, its rejects and results.csv are left byte-identical."""
    path, frame, info = snapshot
    results = tmp_path / "results.csv"
    code, summary, _ = _score(
        spark, capsys, trained[0], path, tmp_path / "scored", "2026-11-21", "--results-csv", str(results)
    )
    assert code == 0
    assert summary["input_rows"] == len(frame)
    assert summary["input_rows"] == summary["scored_rows"] + summary["rejected_rows"]
    assert summary["rejected_rows"] == info["expected_rejected_rows"]

    written = spark.read.parquet(str(tmp_path / "scored"))
    assert [(f.name, f.dataType) for f in written.schema] == [(f.name, f.dataType) for f in SCORED_SCHEMA]
    table = pq.read_table(tmp_path / "scored" / "snapshot_date=2026-11-21")
    assert table.num_rows == summary["scored_rows"]
    assert set(table.column_names) >= {"uuid", "pd", "is_high_risk", "model_version", "scored_at"}
    assert str(table.schema.field("scored_at").type) == "timestamp[us, tz=UTC]"
    assert set(table.column("model_version").to_pylist()) == {summary["model_version"]}
    # Reason codes as shipped (`reason_rows = "high_risk"`): for the high-risk rows, null for the rest.
    reasons, high = table.column("reason_codes").to_pylist(), table.column("is_high_risk").to_pylist()
    assert 0 < sum(high) < len(high)
    assert [r is not None for r in reasons] == high
    assert all(len(r) <= 3 and set(r) <= set(FEATURE_NAMES) for r in reasons if r is not None)
    assert sum(1 for r in reasons if r) > sum(high) / 2

    marker = json.loads((tmp_path / "scored" / "snapshot_date=2026-11-21" / "_SUCCESS").read_text())
    assert marker["run_id"] == summary["run_id"]
    assert marker["scored_rows"] == summary["scored_rows"]
    scored = sorted(p.name for p in (tmp_path / "scored").iterdir())
    assert scored == ["_drift", "_rejects", "_runs", "snapshot_date=2026-11-21"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("results")) == ["results.csv"]

    rejects = pq.read_table(tmp_path / "scored" / "_rejects" / "snapshot_date=2026-11-21")
    assert rejects.num_rows == summary["rejected_rows"]
    assert all(rejects.column("reason").to_pylist())

    lines = results.read_text().splitlines()
    assert lines[0] == "uuid;pd"
    assert len(lines) - 1 == summary["scored_rows"]
    uuids = [line.split(";")[0] for line in lines[1:]]
    assert uuids == sorted(uuids)
    by_uuid = dict(zip(table.column("uuid").to_pylist(), table.column("pd").to_pylist(), strict=True))
    # Fixed notation, exactly 10 decimals, as the README documents: the table's pd, rounded.
    assert all(re.fullmatch(r"[0-9a-fA-F-]{36};[01]\.[0-9]{10}", line) for line in lines[1:])
    assert all(pd == f"{by_uuid[uuid]:.10f}" for uuid, pd in (line.split(";") for line in lines[1:]))

    output = tmp_path / "scored"
    before = _digest(output)
    results_before = results.read_bytes()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the results folder should be")
    smaller = write_csv(tmp_path / "smaller.csv", [row(1), row(2, age="7")])
    blocked_results = ("--results-csv", blocked / "results.csv")
    code, _, err = _score(spark, capsys, trained[0], smaller, output, "2026-11-21", *blocked_results)
    assert code != 0
    assert err.strip().splitlines()[-1].startswith("score:")
    assert _digest(output) == before  # neither the scores nor the rejects moved; staging cleaned up
    assert results.read_bytes() == results_before


def test_rerun_replaces_its_date_and_leaves_other_dates_byte_identical_and_all_rejected_empties_it(
    spark, trained, snapshot, tmp_path, capsys
):
    output = tmp_path / "scored"
    for day in ("2026-11-21", "2026-11-22"):
        assert _score(spark, capsys, trained[0], snapshot[0], output, day)[0] == 0
    other = output / "snapshot_date=2026-11-21"
    other_rejects = output / "_rejects" / "snapshot_date=2026-11-21"
    before, before_rejects = _digest(other), _digest(other_rejects)
    rerun = output / "snapshot_date=2026-11-22"
    files_before = set(_digest(rerun))

    code, summary, _ = _score(spark, capsys, trained[0], snapshot[0], output, "2026-11-22")
    assert code == 0
    assert _digest(other) == before
    assert _digest(other_rejects) == before_rejects
    assert set(_digest(rerun)) != files_before  # a fresh write, not an append
    assert pq.read_table(rerun).num_rows == summary["scored_rows"]
    # The replaced partitions are gone, not kept aside: every data file left is a live partition's.
    live = {other, other_rejects, rerun, output / "_rejects" / "snapshot_date=2026-11-22"}
    kept = [p for p in output.rglob("*.parquet") if not {"_runs", "_drift"} & set(p.parts)]
    assert [p for p in kept if p.parent not in live] == []

    # A rerun whose every row is rejected empties its date: no rows, but the table's columns.
    bad = write_csv(tmp_path / "bad.csv", [row(1, age="7"), row(2, age="8")])
    code, summary, _ = _score(spark, capsys, trained[0], bad, output, "2026-11-21")
    assert code == 0
    assert (summary["scored_rows"], summary["rejected_rows"]) == (0, 2)
    assert json.loads((other / "_SUCCESS").read_text())["scored_rows"] == 0
    emptied = pq.read_table(other)  # readers still see its schema
    assert emptied.num_rows == 0
    assert {"uuid", "pd", "is_high_risk", "reason_codes", "model_version", "scored_at"} <= set(
        emptied.schema.names
    )
    assert pq.read_table(other_rejects).num_rows == 2


def test_unlabeled_only_scores_just_the_rows_without_a_default(spark, trained, tmp_path, capsys):
    frame, _ = make_history(1000, seed=9, unlabeled_fraction=0.3)
    path = tmp_path / "dataset.csv"
    write_original_csv(frame, path)
    unlabelled = int(frame["default"].isna().sum())
    code, summary, _ = _score(
        spark, capsys, trained[0], path, tmp_path / "scored", "2026-11-21", "--unlabeled-only"
    )
    assert code == 0
    assert summary["input_rows"] == unlabelled
    assert summary["scored_rows"] + summary["rejected_rows"] == unlabelled
    assert summary["skipped_labelled_rows"] == len(frame) - unlabelled


def test_missing_columns_exit_3_naming_them_and_write_nothing(spark, trained, tmp_path, capsys):
    columns = [c for c in INPUT_COLUMNS if c not in ("age", "time_hours")]
    path = write_csv(tmp_path / "t.csv", [row(1)], columns=columns)
    code, _, err = _score(spark, capsys, trained[0], path, tmp_path / "scored", "2026-11-21")
    assert code == 3
    assert "age" in err.strip().splitlines()[-1]
    assert "time_hours" in err.strip().splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "scored").iterdir()) == ["_runs"]  # the failed run's row


def test_tampered_model_exits_4_before_anything_is_written(spark, trained, snapshot, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(trained[0], model_dir)
    with (model_dir / "model.json").open("a") as fh:
        fh.write(" ")
    code, _, err = _score(spark, capsys, model_dir, snapshot[0], tmp_path / "scored", "2026-11-21")
    assert code == 4
    assert "does not match its manifest" in err
    assert sorted(p.name for p in (tmp_path / "scored").iterdir()) == ["_runs"]  # the failed run's row


def test_unreadable_input_exits_3(spark, trained, tmp_path, capsys):
    code, _, err = _score(
        spark, capsys, trained[0], tmp_path / "nowhere.csv", tmp_path / "scored", "2026-11-21"
    )
    assert code == 3
    assert "cannot read input" in err


def test_bad_config_exits_2(spark, trained, snapshot, tmp_path, capsys):
    config = tmp_path / "score.toml"
    config.write_text("[score]\nresults_csv_decimal = 4\n")
    code, _, err = _score(
        spark, capsys, trained[0], snapshot[0], tmp_path / "scored", "2026-11-21", "--config", str(config)
    )
    assert code == 2
    assert "results_csv_decimal" in err


def test_bad_date_is_a_usage_error():
    with pytest.raises(SystemExit) as excinfo:
        score_job.parse_args(
            ["--input", "x", "--model-dir", "m", "--output", "o", "--snapshot-date", "21/11/2026"]
        )
    assert excinfo.value.code == 2


@pytest.mark.slow
def test_jobs_run_as_scripts_with_exit_codes_and_a_summary_line(tmp_path):
    frame, _ = make_history(8000, seed=4)
    history = tmp_path / "history.csv"
    write_original_csv(frame, history)
    config = tmp_path / "train.toml"
    config.write_text(SMALL_TRAIN_TOML)
    env_python = sys.executable

    def run(*args):
        return subprocess.run(
            [env_python, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
        )

    trained = run(
        "jobs/train.py",
        "--input",
        str(history),
        "--model-dir",
        str(tmp_path / "model"),
        "--config",
        str(config),
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    version = json.loads(trained.stdout.strip().splitlines()[-1])["model_version"]

    common = ["--input", str(history), "--snapshot-date", "2026-11-21"]
    outputs = ["--output", str(tmp_path / "scored"), "--results-csv", str(tmp_path / "results.csv")]
    scored = run("jobs/score.py", *common, "--model-dir", str(tmp_path / "model"), *outputs)
    assert scored.returncode == 0, scored.stderr[-2000:]
    summary = json.loads(scored.stdout.strip().splitlines()[-1])
    assert summary["model_version"] == version
    assert summary["scored_rows"] == len(frame)
    assert len((tmp_path / "results.csv").read_text().splitlines()) == len(frame) + 1

    refused = run(
        "jobs/score.py", *common, "--model-dir", str(tmp_path / "absent"), "--output", str(tmp_path / "o2")
    )
    assert refused.returncode == 4
    assert refused.stderr.strip().splitlines()[-1].startswith("score: error: no manifest.json")
    assert refused.stdout == ""


def test_scoring_twice_gives_identical_rows_and_results_bytes(spark, trained, snapshot, tmp_path, capsys):
    key_batch, key_shuffle = "spark.sql.execution.arrow.maxRecordsPerBatch", "spark.sql.shuffle.partitions"
    saved = spark.conf.get(key_batch), spark.conf.get(key_shuffle)
    runs = []
    try:
        for batch, shuffle in (("10000", "2"), ("97", "7")):
            spark.conf.set(key_batch, batch)
            spark.conf.set(key_shuffle, shuffle)
            out = tmp_path / f"run-{batch}"
            results = tmp_path / f"results-{batch}.csv"  # beside the table, never inside it
            assert (
                _score(
                    spark, capsys, trained[0], snapshot[0], out, "2026-11-21", "--results-csv", str(results)
                )[0]
                == 0
            )
            table = pq.read_table(out / "snapshot_date=2026-11-21").drop(["scored_at"]).sort_by("uuid")
            runs.append((table, results.read_bytes()))
    finally:
        spark.conf.set(key_batch, saved[0])
        spark.conf.set(key_shuffle, saved[1])
    assert runs[0][0].equals(runs[1][0])
    assert runs[0][1] == runs[1][1]


def test_a_write_failing_in_one_task_leaves_the_live_partition_byte_identical(spark, tmp_path):
    root, day = tmp_path / "table", date(2026, 11, 21)
    rows = spark.createDataFrame([(i, day) for i in range(40)], "x long, snapshot_date date").repartition(4)
    staged = staging.stage_partition(rows, str(root), day, "run-1")
    staging.mark_staged(spark, staged, {"rows": 40})
    staging.swap_in(spark, staged)
    before = _digest(root)

    def fail_in_one_task(batches):
        for batch in batches:
            if TaskContext.get().partitionId() == 2:
                raise RuntimeError("injected failure while writing")
            yield batch

    failing = rows.mapInPandas(fail_in_one_task, rows.schema)
    with pytest.raises(Exception, match="injected failure"):
        staging.stage_partition(failing, str(root), day, "run-2")
    assert _digest(root) == before
    assert sorted(p.name for p in root.iterdir()) == ["snapshot_date=2026-11-21"]
