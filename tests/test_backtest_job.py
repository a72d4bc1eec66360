"""The backtest job end to end, in-process: a table scored by the scoring job, generated outcomes."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from jobrun import run_job
from sampledata import make_snapshot, write_original_csv
from sampledata.outcomes import make_outcomes, write_outcomes_csv

from defaultrisk.grades import DEFAULT_SCALE, grade_of

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import backtest as backtest_job  # noqa: E402
import score as score_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

ROWS = 2_000
DATES = (date(2024, 1, 31), date(2024, 4, 30), date(2025, 3, 31))
SHARED = 1_500  # customers of the first snapshot still there on the second (for migration)
OBSERVED_UNTIL = date(2025, 6, 30)
AS_OF = "2025-07-15"
BAD_OUTCOME_ROWS = "not-a-uuid;2024-05-01;2025-06-30\n{uuid};2024-13-01;2025-06-30\n"


@pytest.fixture(scope="module")
def scored(spark, trained, tmp_path_factory):
    """Three snapshots scored by the scoring job; each scored customer's true pd."""
    folder = tmp_path_factory.mktemp("backtest")
    config = folder / "score.toml"
    config.write_text("[drift]\nenabled = false\n")
    truth, first = {}, None
    for i, day in enumerate(DATES):
        frame, info = make_snapshot(ROWS, seed=60 + i, bad_rows=3)
        true_pd = info["true_pd"]
        valid = np.setdiff1d(np.arange(len(frame)), info["rejected_rows"])
        if i == 0:
            first = (frame, valid[:SHARED], true_pd)
        elif i == 1:  # the first snapshot's customers come back, as they were
            old, rows, old_pd = first
            for column in frame.columns:
                frame.loc[frame.index[valid[:SHARED]], column] = old[column].to_numpy()[rows]
            true_pd[valid[:SHARED]] = old_pd[rows]
        path = folder / f"customers_{day}.csv"
        write_original_csv(frame, path)
        code = score_job.main(
            [
                *("--input", str(path), "--model-dir", str(trained[0])),
                *("--output", str(folder / "scored"), "--snapshot-date", day.isoformat()),
                *("--config", str(config)),
            ],
            spark=spark,
        )
        assert code == 0
        truth[day] = dict(zip(frame["uuid"].to_numpy()[valid], true_pd[valid], strict=True))
    return folder, truth


def _outcomes(scored_fixture, name: str, factor: float) -> tuple[Path, pd.DataFrame]:
    """Defaults drawn from true pd x `factor`, one record per customer, plus two bad rows."""
    folder, truth = scored_fixture
    parts, seen = [], set()
    for day in DATES:
        uuids = [u for u in truth[day] if u not in seen]
        seen.update(uuids)
        p = np.minimum(np.array([truth[day][u] for u in uuids]) * factor, 1.0)
        parts.append(make_outcomes(uuids, p, day, 12, seed=8))
    frame = pd.concat(parts, ignore_index=True)
    # The table knows defaults up to its coverage date only. A returning customer's record is its
    # first snapshot's draw, so the second window's last months go unobserved for it (fewer defaults).
    frame = frame[[d is None or d <= OBSERVED_UNTIL for d in frame["default_date"]]]
    path = write_outcomes_csv(frame, folder / f"{name}.csv", observed_until=OBSERVED_UNTIL)
    with path.open("a") as fh:
        fh.write(BAD_OUTCOME_ROWS.format(uuid=next(iter(truth[DATES[0]]))))
    return path, frame


def _run(spark, capsys, *argv) -> tuple[int, dict, str]:
    code, summary, err = run_job(backtest_job.main, list(argv), spark, capsys)
    assert summary is not None, err[-2000:]
    return code, summary, err


def _expected_defaults(scored_table: pd.DataFrame, outcomes: pd.DataFrame, day: date, end: date) -> dict:
    """Defaults and exclusions counted by hand in pandas, for comparison with the job's."""
    rows = scored_table[scored_table["snapshot_date"] == pd.Timestamp(day)]
    dates = dict(zip(outcomes["uuid"], outcomes["default_date"], strict=True))
    when = [dates.get(u) for u in rows["uuid"]]
    return {
        "defaults": sum(1 for d in when if d is not None and day < d <= end),
        "defaulted_before": sum(1 for d in when if d is not None and d <= day),
    }


def test_backtest_job_end_to_end(spark, scored, trained, capsys):
    folder, _ = scored
    outcomes_path, outcomes = _outcomes(scored, "outcomes", factor=1.0)
    output = folder / "scored" / "_backtest"
    # About 28 defaults per snapshot put the AUC's standard error near 0.03: its drop test raises a
    # false alarm on 5% of such snapshots (measured in test_backtest_stats), so here the run is
    # failed on the Jeffreys test only; the AUC figures are still computed and checked.
    config = folder / "backtest.toml"
    config.write_text('[backtest]\nfail_on = ["jeffreys"]\n')
    code, summary, err = _run(
        spark,
        capsys,
        *("--scored", folder / "scored", "--outcomes", outcomes_path, "--model-dir", trained[0]),
        *("--as-of", AS_OF, "--migration", f"{DATES[0]},{DATES[1]}", "--config", config),
    )
    assert code == 0, err
    assert summary["status"] == "passed" and summary["failed_tests"] == []
    assert [s["snapshot_date"] for s in summary["backtested"]] == [DATES[0].isoformat(), DATES[1].isoformat()]
    assert summary["skipped"] == [
        {"snapshot_date": "2025-03-31", "reason": "window_open", "window_end": "2026-03-31"}
    ]
    assert summary["outcomes"]["rejected_rows"] == 2
    assert summary["outcomes"]["input_rows"] == len(outcomes) + 2
    assert summary["outcomes"]["observed_until"] == OBSERVED_UNTIL.isoformat()

    table = (
        ds.dataset(
            str(folder / "scored"),
            partitioning=ds.partitioning(pa.schema([("snapshot_date", pa.date32())]), flavor="hive"),
        )
        .to_table()
        .to_pandas()
    )
    table["snapshot_date"] = pd.to_datetime(table["snapshot_date"])
    result = spark.read.parquet(str(output))
    assert result.count() == 2 * (DEFAULT_SCALE.grades + 1)
    for snap in summary["backtested"]:
        day, end = date.fromisoformat(snap["snapshot_date"]), date.fromisoformat(snap["window_end"])
        by_hand = _expected_defaults(table, outcomes, day, end)
        rows = result.where(f"snapshot_date = DATE'{day}'").collect()
        grades = [r for r in rows if r.grade is not None]
        (portfolio,) = [r for r in rows if r.grade is None]
        scored_rows = int((table["snapshot_date"] == pd.Timestamp(day)).sum())
        assert portfolio.observed_defaults == snap["observed_defaults"] == by_hand["defaults"]
        assert portfolio.excluded_defaulted_before == by_hand["defaulted_before"]
        assert (
            portfolio.customers + portfolio.excluded_defaulted_before + portfolio.excluded_outcome_rejected
            == (scored_rows)
        )
        # The customer with a bad outcome row is on both dates: unknown outcome, left out of both.
        assert portfolio.excluded_outcome_rejected == 1
        assert sum(r.customers for r in grades) == portfolio.customers
        assert sum(r.observed_defaults for r in grades) == portfolio.observed_defaults
        assert portfolio.expected_defaults == pytest.approx(sum(r.expected_defaults for r in grades))
        assert portfolio.roc_auc_reference == pytest.approx(trained[1]["holdout"]["roc_auc"])
        assert 0.7 < portfolio.roc_auc < 1.0 and portfolio.jeffreys_lower < portfolio.observed_rate
        assert portfolio.model_version == trained[1]["model_version"]

    arrow = ds.dataset(str(output), partitioning="hive").to_table()
    assert arrow.num_rows == 2 * (DEFAULT_SCALE.grades + 1)
    rejects = spark.read.parquet(str(output / "_rejects")).collect()
    assert sorted(r.reason for r in rejects) == ["default_date: not a date (YYYY-MM-DD)", "uuid: malformed"]
    report = output / "_report"
    assert {"summary.json", "default_rates.png", "grades.png", "auc.png"} <= {
        p.name for p in report.iterdir()
    }
    assert (report / "default_rates.png").read_bytes()[:4] == b"\x89PNG"
    assert not (output / "_staging").exists() and not (output / "_trash").exists()
    _check_migration(summary["migration"], table)


def _check_migration(moved: dict, table: pd.DataFrame) -> None:
    """Row sums are the first date's customers per grade, column sums the second's (from the table)."""
    counts = np.array(moved["counts"])
    for axis, day in ((1, DATES[0]), (0, DATES[1])):
        pd_values = table.loc[table["snapshot_date"] == pd.Timestamp(day), "pd"]
        per_grade = np.bincount(grade_of(pd_values), minlength=DEFAULT_SCALE.grades + 1)[1:]
        sums = counts[1:, :].sum(axis=1) if axis == 1 else counts[:, 1:].sum(axis=0)
        assert sums.tolist() == per_grade.tolist()
        assert moved["herfindahl"][day.isoformat()]["per_grade"] == per_grade.tolist()
    assert counts[1:, 1:].sum() == SHARED  # customers on both dates
    assert moved["customers"][DATES[0].isoformat()] == counts[1:, :].sum()


def test_pd_too_low_fails_the_run_with_exit_8_and_writes_the_results(spark, scored, trained, capsys):
    folder, _ = scored
    outcomes_path, _ = _outcomes(scored, "outcomes_high", factor=2.5)
    output = folder / "too_low"
    code, summary, err = _run(
        spark,
        capsys,
        *("--scored", folder / "scored", "--outcomes", outcomes_path, "--model-dir", trained[0]),
        *("--as-of", AS_OF, "--observed-until", "2025-02-15", "--output", output),
    )
    assert code == 8
    assert err.strip().splitlines()[-1].startswith("backtest: warning: backtest test failed: jeffreys")
    assert summary["status"] == "tests_failed"
    assert {(f["snapshot_date"], f["test"]) for f in summary["failed_tests"]} >= {("2024-01-31", "jeffreys")}
    # The outcomes end before the second snapshot's window does: not backtestable, and said so.
    assert [(s["snapshot_date"], s["reason"]) for s in summary["skipped"]] == [
        ("2024-04-30", "outcomes_incomplete"),
        ("2025-03-31", "window_open"),
    ]
    (portfolio,) = spark.read.parquet(str(output)).where("grade IS NULL").collect()
    assert "jeffreys" in portfolio.tests_failed and portfolio.calibration_ratio > 1.5
