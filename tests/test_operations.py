"""Operating the scoring job nightly: backfills, the run log, the catalog tables, dry runs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from jobrun import run_job
from sampledata import make_snapshot, write_original_csv

from defaultrisk.model import model_version
from defaultrisk.scoring.runlog import FAILED, SUCCEEDED, runs_path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

ROWS = 400
DATES = ("2026-11-21", "2026-11-22", "2026-11-23")
# A few hundred rows per date make PSI noisy: these tests are about operations, drift has its own.
QUIET_DRIFT = "[drift]\nenabled = false\n"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> Path:
    """Snapshot files for the first and last of DATES; the middle one is missing."""
    folder = tmp_path_factory.mktemp("snapshots")
    for i, day in enumerate(DATES):
        if day != DATES[1]:
            frame, _ = make_snapshot(ROWS, seed=40 + i, bad_rows=2)
            write_original_csv(frame, folder / f"customers_{day}.csv")
    return folder


@pytest.fixture
def quiet(tmp_path) -> Path:
    config = tmp_path / "score.toml"
    config.write_text(QUIET_DRIFT)
    return config


def _run(spark, capsys, *argv) -> tuple[int, dict | None, str]:
    return run_job(score_job.main, list(argv), spark, capsys)


def _template(snapshots: Path) -> str:
    return str(snapshots / "customers_{snapshot_date}.csv")


def _runs(spark, output: Path):
    return spark.read.parquet(runs_path(str(output))).orderBy("started_at").collect()


def test_backfill_scores_each_date_and_reports_the_missing_one(
    spark, trained, snapshots, quiet, tmp_path, capsys
):
    output = tmp_path / "scored"
    code, summary, err = _run(
        spark,
        capsys,
        *("--input", _template(snapshots), "--model-dir", trained[0], "--output", output),
        *("--from", DATES[0], "--to", DATES[2], "--config", quiet),
        *("--results-csv", tmp_path / "results" / "{snapshot_date}.csv"),
    )
    assert code == 7
    assert "partial: not scored: 2026-11-22" in err.strip().splitlines()[-1]
    assert summary["status"] == "partial"
    assert summary["succeeded"] == [DATES[0], DATES[2]]
    assert [p["snapshot_date"] for p in summary["not_scored"]] == [DATES[1]]
    assert summary["not_scored"][0]["status"] == "missing_input"
    assert sorted(p.name for p in output.iterdir() if not p.name.startswith("_")) == [
        f"snapshot_date={DATES[0]}",
        f"snapshot_date={DATES[2]}",
    ]
    for run in summary["runs"]:
        assert run["input_rows"] == run["scored_rows"] + run["rejected_rows"] == ROWS + 2
        lines = (tmp_path / "results" / f"{run['snapshot_date']}.csv").read_text().splitlines()
        assert len(lines) == run["scored_rows"] + 1

    runs = _runs(spark, output)
    assert [(str(r.snapshot_date), r.status) for r in runs] == [
        (DATES[0], SUCCEEDED),
        (DATES[1], FAILED),
        (DATES[2], SUCCEEDED),
    ]
    first, missing, _ = runs
    assert "input not found" in missing.error and missing.scored_rows is None
    assert (first.input_rows, first.scored_rows, first.rejected_rows) == (
        summary["runs"][0]["input_rows"],
        summary["runs"][0]["scored_rows"],
        summary["runs"][0]["rejected_rows"],
    )
    assert first.model_version == trained[1]["model_version"]
    assert first.input_path.endswith(f"customers_{DATES[0]}.csv")
    assert 0 < first.pd_p50 <= first.pd_p99 < 1
    assert first.pd_mean == pytest.approx(summary["runs"][0]["pd_mean"])
    assert 0 <= first.high_risk_share <= 1
    assert first.started_at <= first.finished_at
    assert first.code_version and first.error is None


def test_run_log_records_a_failed_run_with_its_error(spark, trained, snapshots, quiet, tmp_path, capsys):
    output = tmp_path / "scored"
    base = ("--model-dir", trained[0], "--output", output, "--config", quiet)
    day_input = snapshots / f"customers_{DATES[0]}.csv"
    assert _run(spark, capsys, "--input", day_input, "--snapshot-date", DATES[0], *base)[0] == 0
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the results folder should be")
    code, _, err = _run(
        spark,
        capsys,
        *("--input", day_input, "--snapshot-date", DATES[0], *base),
        *("--results-csv", blocked / "results.csv"),
    )
    assert code == 5
    runs = _runs(spark, output)
    assert [r.status for r in runs] == [SUCCEEDED, FAILED]
    assert runs[1].error and runs[1].error in err
    assert runs[1].model_version == trained[1]["model_version"]
    assert runs[1].run_id != runs[0].run_id


def test_table_is_registered_and_a_date_filter_prunes_partitions(
    spark, trained, snapshots, quiet, tmp_path, capsys
):
    output = tmp_path / "scored"
    code, summary, _ = _run(
        spark,
        capsys,
        *("--input", _template(snapshots), "--model-dir", trained[0], "--output", output),
        *("--from", DATES[0], "--to", DATES[2], "--config", quiet, "--table", "pd_ops_test"),
    )
    assert code == 7
    assert set(summary["tables"]) == {"pd_ops_test", "pd_ops_test_rejects", "pd_ops_test_runs"}
    query = spark.sql(f"SELECT uuid, pd FROM pd_ops_test WHERE snapshot_date = DATE'{DATES[2]}'")
    plan = query._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [isnotnull(snapshot_date" in plan and f"= {DATES[2]}" in plan
    assert query.count() == summary["runs"][1]["scored_rows"]
    assert dict(spark.table("pd_ops_test").dtypes)["snapshot_date"] == "date"
    assert spark.table("pd_ops_test_runs").count() == 3
    assert spark.table("pd_ops_test_rejects").where(f"snapshot_date = '{DATES[0]}'").count() == 2

    # docs/outputs.md's example queries, as written there.
    today = spark.sql(
        "SELECT uuid, pd, reason_codes FROM pd_ops_test "
        f"WHERE snapshot_date = DATE'{DATES[2]}' AND is_high_risk ORDER BY pd DESC"
    ).collect()
    assert all(r.pd >= 0 for r in today)
    trend = spark.sql(
        "SELECT snapshot_date, count(*) AS customers, avg(pd) AS mean_pd, avg(CAST(is_high_risk AS INT)) "
        "AS high_risk_share FROM pd_ops_test GROUP BY snapshot_date ORDER BY snapshot_date"
    ).collect()
    assert [str(r.snapshot_date) for r in trend] == [DATES[0], DATES[2]]
    one = spark.table("pd_ops_test").where(f"snapshot_date = '{DATES[0]}'").first().uuid
    history = spark.sql(f"SELECT snapshot_date, pd FROM pd_ops_test WHERE uuid = '{one}'").collect()
    assert len(history) == 1

    # Straight from the folder with pyarrow: the partition read back as a date, _runs and _rejects skipped.
    partitioning = ds.partitioning(pa.schema([("snapshot_date", pa.date32())]), flavor="hive")
    table = ds.dataset(output, format="parquet", partitioning=partitioning).to_table()
    assert table.schema.field("snapshot_date").type == pa.date32()
    assert table.num_rows == sum(r["scored_rows"] for r in summary["runs"])


def test_dry_run_lists_what_it_would_read_and_write_and_writes_nothing(
    spark, trained, snapshots, tmp_path, capsys
):
    output = tmp_path / "scored"
    code, plan, _ = _run(
        spark,
        capsys,
        *("--input", _template(snapshots), "--model-dir", trained[0], "--output", output),
        *("--from", DATES[0], "--to", DATES[2], "--dry-run"),
    )
    assert code == 0
    assert [d["snapshot_date"] for d in plan["dates"]] == list(DATES)
    assert [d["input_exists"] for d in plan["dates"]] == [True, False, True]
    assert plan["dates"][0]["partition"] == f"{output}/snapshot_date={DATES[0]}"
    assert {d["model_version"] for d in plan["dates"]} == {trained[1]["model_version"]}
    assert not output.exists()


def test_a_model_per_date_range_scores_its_dates(spark, trained, snapshots, quiet, tmp_path, capsys):
    later = tmp_path / "later-model"
    shutil.copytree(trained[0], later)
    manifest = json.loads((later / "manifest.json").read_text())
    manifest["threshold"]["value"] = manifest["threshold"]["value"] / 2
    manifest["model_version"] = model_version(manifest["model_sha256"], manifest)
    (later / "manifest.json").write_text(json.dumps(manifest))

    code, summary, _ = _run(
        spark,
        capsys,
        *("--input", _template(snapshots), "--output", tmp_path / "scored", "--config", quiet),
        *("--model-dir", trained[0], "--model-dir", f"{DATES[1]}={later}"),
        *("--from", DATES[0], "--to", DATES[2]),
    )
    assert code == 7
    versions = {r["snapshot_date"]: r["model_version"] for r in summary["runs"]}
    assert versions == {DATES[0]: trained[1]["model_version"], DATES[2]: manifest["model_version"]}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--from", DATES[0]), "--from and --to go together"),
        (("--snapshot-date", DATES[0], "--from", DATES[0], "--to", DATES[1]), "not allowed with"),
    ],
)
def test_backfill_arguments_are_checked(spark, trained, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        score_job.main(["--input", "x", "--model-dir", str(trained[0]), "--output", str(tmp_path), *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_backfill_needs_the_date_in_its_input_path(spark, trained, tmp_path, capsys):
    code, _, err = _run(
        spark,
        capsys,
        *("--input", tmp_path / "same.csv", "--model-dir", trained[0], "--output", tmp_path / "out"),
        *("--from", DATES[0], "--to", DATES[1]),
    )
    assert code == 2
    assert "{snapshot_date}" in err.strip().splitlines()[-1]


def test_drift_report_per_date_and_a_shift_over_the_limit_exits_6(spark, trained, tmp_path, capsys):
    output = tmp_path / "scored"
    frame, _ = make_snapshot(3000, seed=61)
    same = tmp_path / "same.csv"
    write_original_csv(frame, same)
    shifted_frame = frame.copy()
    shifted_frame["avg_payment_span_0_12m"] = shifted_frame["avg_payment_span_0_12m"] * 3
    shifted_frame["name_in_email"] = "Nick"
    shifted = tmp_path / "shifted.csv"
    write_original_csv(shifted_frame, shifted)
    base = ("--model-dir", trained[0], "--output", output)

    code, summary, _ = _run(spark, capsys, "--input", same, "--snapshot-date", DATES[0], *base)
    assert code == 0
    assert summary["drift"]["over_limit"] == [] and summary["drift"]["max_psi"] < 0.1
    report = output / "_drift" / f"snapshot_date={DATES[0]}"
    assert sorted(p.name for p in report.iterdir()) == ["drift.json", "drift.parquet", "top_movers.png"]
    assert len(json.loads((report / "drift.json").read_text())["columns"]) == 42  # 41 features and pd

    code, summary, err = _run(spark, capsys, "--input", shifted, "--snapshot-date", DATES[1], *base)
    assert code == 6
    warning = err.strip().splitlines()[-1]
    assert warning.startswith("score: warning: drift:")
    assert "avg_payment_span_0_12m" in warning and "name_in_email" in warning
    assert {"avg_payment_span_0_12m", "name_in_email"} <= set(summary["drift"]["over_limit"])
    assert summary["scored_rows"] > 0  # the scores are written all the same
    assert (output / f"snapshot_date={DATES[1]}" / "_SUCCESS").exists()
    runs = _runs(spark, output)
    assert runs[-1].status == SUCCEEDED and runs[-1].max_psi == pytest.approx(summary["drift"]["max_psi"])
