"""The backtest compares champion and challengers: paired sums in Spark, and the whole job over a scored
table, its shadow table (a second real model scored on the same rows) and generated outcomes."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import test_backtest_job
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from test_backtest_job import AS_OF, DATES, _outcomes, _run

from defaultrisk import read
from defaultrisk.backtest import compare, measures, stats
from defaultrisk.backtest.config import BacktestConfig
from defaultrisk.backtest.report import TABLE_COLUMNS
from defaultrisk.features import model_input
from defaultrisk.grades import grade_of, scale_from_manifest
from defaultrisk.model import load_model
from defaultrisk.schema import (
    CHALLENGERS_DIR,
    CHAMPION_VERSION,
    GRADE,
    MODEL_VERSION,
    PD,
    REQUIRED_COLUMNS,
    SCORED_AT,
    SHADOW_SCHEMA,
    SNAPSHOT_DATE,
    UUID,
)
from defaultrisk.scoring.core import score_frame
from defaultrisk.validate import select_known_columns, valid_rows, validate

# Three snapshots scored by the scoring job with the live model (test_backtest_job's fixture, set up
# again for this module), and above the helpers that draw outcomes for them and run the backtest job.
scored_snapshots = test_backtest_job.scored

PAIR_SCHEMA = (
    f"{CHAMPION_VERSION} string, {measures.CHALLENGER} string, {SNAPSHOT_DATE} date, "
    f"{UUID} string, {measures.DEFAULTED} int, {PD} double, {measures.CHALLENGER_PD} double"
)


def test_spark_paired_sums_equal_the_numpy_references(spark):
    """Per snapshot and pooled: the DeLong comparison equals `stats.paired_auc_delong`; log loss and
    Brier equal scikit-learn's, on rounded pd (ties) of two correlated scores."""
    rng = np.random.default_rng(9)
    n = 3000
    true_pd = rng.beta(0.5, 15, size=n)
    outcome = (rng.random(n) < true_pd).astype(int)
    champion = np.round(true_pd * np.exp(rng.normal(scale=0.8, size=n)), 4).clip(0, 1)
    challenger = np.round(true_pd * np.exp(rng.normal(scale=0.5, size=n)), 4).clip(0, 1)
    days = np.array([date(2024, 1, 31), date(2024, 2, 29)])[np.arange(n) % 2]
    rows = [
        ("champ", "chall", d, f"u{i}", int(y), float(a), float(b))
        for i, (d, y, a, b) in enumerate(zip(days, outcome, champion, challenger, strict=True))
    ]
    sums = measures.paired_sums(spark.createDataFrame(rows, PAIR_SCHEMA))
    assert set(sums) == {("champ", "chall", s) for s in ("2024-01-31", "2024-02-29", measures.POOLED)}
    cfg = BacktestConfig()
    pooled = sums[("champ", "chall", measures.POOLED)]
    per_snapshot = {k[2]: v for k, v in sums.items() if k[2] != measures.POOLED}
    got = compare.comparison("champ", "chall", pooled, per_snapshot, cfg)
    want = stats.paired_auc_delong(outcome, champion, challenger)
    assert got["champion"]["roc_auc"] == pytest.approx(want.auc_a, abs=1e-12)
    assert got["challenger"]["roc_auc"] == pytest.approx(want.auc_b, abs=1e-12)
    assert got["delong_z"] == pytest.approx(want.z, rel=1e-9)
    assert got["delong_p_value"] == pytest.approx(want.p_value, rel=1e-9)
    assert got["champion"]["log_loss"] == pytest.approx(log_loss(outcome, y_proba=champion), rel=1e-12)
    assert got["challenger"]["brier"] == pytest.approx(brier_score_loss(outcome, challenger), rel=1e-12)
    eps = np.finfo(float).eps  # scikit-learn's clipping of a probability of exactly 0 or 1
    ll_a, ll_b = (
        -(outcome * np.log(p) + (1 - outcome) * np.log(1 - p))
        for p in (champion.clip(eps, 1 - eps), challenger.clip(eps, 1 - eps))
    )
    d = ll_b - ll_a
    assert got["delta_log_loss"] == pytest.approx(d.mean(), rel=1e-9)
    assert got["delta_log_loss_se"] == pytest.approx(d.std(ddof=1) / math.sqrt(n), rel=1e-6)
    for k, day in enumerate(("2024-01-31", "2024-02-29")):
        (snap,) = [s for s in got["per_snapshot"] if s["snapshot_date"] == day]
        one = stats.paired_auc_delong(outcome[k::2], champion[k::2], challenger[k::2])
        assert (snap["champion_roc_auc"], snap["challenger_roc_auc"]) == pytest.approx((one.auc_a, one.auc_b))
        assert snap["delong_p_value"] == pytest.approx(one.p_value, rel=1e-9)
        assert snap["customers"] == n // 2 and snap["defaults"] == outcome[k::2].sum()


def _write_shadow(spark, csv_path, day: date, challenger_dir, champion_version: str, root) -> set[str]:
    """Score a snapshot's valid rows with the challenger (`score_frame`, its own master scale) and write
    them as the shadow table's partition; the uuids written."""
    known = select_known_columns(read.read_raw(spark, str(csv_path)), REQUIRED_COLUMNS)
    scores = score_frame(model_input(valid_rows(validate(known))).toPandas(), load_model(challenger_dir))
    manifest = json.loads((challenger_dir / "manifest.json").read_text())
    frame = pd.DataFrame(
        {
            UUID: scores[UUID],
            PD: scores[PD],
            GRADE: grade_of(scores[PD], scale_from_manifest(manifest)).astype("int32"),
            CHAMPION_VERSION: champion_version,
            SCORED_AT: datetime.now(UTC).replace(tzinfo=None),
            SNAPSHOT_DATE: day,
            MODEL_VERSION: manifest["model_version"],
        }
    )
    (
        spark.createDataFrame(frame, SHADOW_SCHEMA)
        .write.partitionBy(SNAPSHOT_DATE, MODEL_VERSION)
        .mode("append")
        .parquet(str(root / CHALLENGERS_DIR))
    )
    return set(frame[UUID])


def _table(path) -> pd.DataFrame:
    frame = ds.dataset(str(path), partitioning="hive").to_table().to_pandas()
    frame[SNAPSHOT_DATE] = pd.to_datetime(frame[SNAPSHOT_DATE]).dt.date
    return frame


def _by_hand(scored_table, shadow, outcomes, days_ends, bad_uuid) -> pd.DataFrame:
    """The paired rows labelled in pandas: both pd and the outcome in the window, exclusions applied."""
    paired = scored_table[[SNAPSHOT_DATE, UUID, PD]].merge(
        shadow[[SNAPSHOT_DATE, UUID, PD]], on=[SNAPSHOT_DATE, UUID], suffixes=("_a", "_b"), how="inner"
    )
    paired = paired[paired[SNAPSHOT_DATE].isin(days_ends) & (paired[UUID] != bad_uuid)]
    when = dict(zip(outcomes[UUID], outcomes["default_date"], strict=True))
    default_date = [when.get(u) for u in paired[UUID]]
    end = [days_ends[d] for d in paired[SNAPSHOT_DATE]]
    before = [d is not None and d <= s for d, s in zip(default_date, paired[SNAPSHOT_DATE], strict=True)]
    inside = [
        d is not None and s < d <= e for d, s, e in zip(default_date, paired[SNAPSHOT_DATE], end, strict=True)
    ]
    return paired.assign(y=np.array(inside, dtype=int))[~np.array(before)]


def _figures(rows: pd.DataFrame, side: str) -> dict:
    y, p = rows["y"].to_numpy(), rows[f"pd_{side}"].to_numpy()
    return {
        "roc_auc": roc_auc_score(y, p),
        "log_loss": log_loss(y, y_proba=p),
        "brier": brier_score_loss(y, p),
        "expected_defaults": p.sum(),
        "observed_defaults": y.sum(),
        "calibration_ratio": y.sum() / p.sum(),
    }


@pytest.mark.job
def test_backtest_compares_a_challenger_scored_beside_the_champion(
    spark, scored_snapshots, trained, challenger_trained, capsys, tmp_path
):
    folder, truth = scored_snapshots
    outcomes_path, outcomes = _outcomes(scored_snapshots, "outcomes", factor=1.0)
    bad_uuid = next(iter(truth[DATES[0]]))  # its outcome row is rejected: left out of every snapshot
    config = folder / "backtest.toml"
    config.write_text('[backtest]\nfail_on = ["jeffreys"]\n')
    args = [
        *("--scored", folder / "scored", "--outcomes", outcomes_path, "--config", config),
        *("--model-dir", trained[0], "--model-dir", challenger_trained[0], "--as-of", AS_OF),
    ]
    # Without a shadow table, the backtest as it was: no comparison.
    code, before, err = _run(spark, capsys, *args, "--output", tmp_path / "before")
    assert code == 0, err
    assert "comparisons" not in before and not (tmp_path / "before" / CHALLENGERS_DIR).exists()
    assert not (tmp_path / "before" / "_report" / "comparison.json").exists()

    champion, challenger = trained[1]["model_version"], challenger_trained[1]["model_version"]
    scored_table = _table(folder / "scored")
    for day in DATES:
        written = _write_shadow(
            spark, folder / f"customers_{day}.csv", day, challenger_trained[0], champion, folder / "scored"
        )
        assert written == set(scored_table.loc[scored_table[SNAPSHOT_DATE] == day, UUID])
    output = tmp_path / "after"
    code, summary, err = _run(spark, capsys, *args, "--output", output)
    assert code == 0, err

    # The main table: the same rows and figures as without the shadow table.
    volatile = ["run_id", "backtested_at"]
    main_before = _table(tmp_path / "before").drop(columns=volatile)
    main_after = _table(output).drop(columns=volatile)
    assert list(main_after.columns) == list(main_before.columns)
    key = [SNAPSHOT_DATE, "grade_label"]
    pd.testing.assert_frame_equal(
        main_after.sort_values(key).reset_index(drop=True),
        main_before.sort_values(key).reset_index(drop=True),
    )
    assert {k: v for k, v in summary.items() if k not in ("comparisons", "run_id", "paths", "seconds")} == {
        k: v for k, v in before.items() if k not in ("run_id", "paths", "seconds")
    }

    backtested = {date.fromisoformat(s["snapshot_date"]): s for s in summary["backtested"]}
    days_ends = {d: date.fromisoformat(s["window_end"]) for d, s in backtested.items()}
    shadow = _table(folder / "scored" / CHALLENGERS_DIR)
    paired = _by_hand(scored_table, shadow, outcomes, days_ends, bad_uuid)
    versions = (champion, challenger)
    _check_challengers_table(
        spark.read.parquet(str(output / CHALLENGERS_DIR)), paired, versions, challenger_trained
    )
    document = json.loads((output / "_report" / "comparison.json").read_text())
    assert document["run_id"] == summary["run_id"] and document["window_months"] == 12
    assert document["scored"] == str(folder / "scored")
    datetime.fromisoformat(document["backtested_at"])
    (pair,) = document["comparisons"]
    _check_comparison(pair, paired, versions)
    # The summary line's short form, and the plots.
    assert summary["comparisons"] == [{k: pair[k] for k in compare.SUMMARY_FIELDS}]
    for name in ("comparison_roc.png", "comparison_calibration.png", "comparison_auc.png"):
        assert (output / "_report" / name).read_bytes()[:4] == b"\x89PNG"
    assert not (output / "_staging").exists() and not (output / "_trash").exists()


def _check_challengers_table(theirs, paired: pd.DataFrame, versions: tuple, challenger_trained) -> None:
    """The backtest table's columns plus champion_version; the challenger's figures on its own rows."""
    champion, challenger = versions
    assert set(theirs.columns) == {*TABLE_COLUMNS, CHAMPION_VERSION}
    rows = theirs.collect()
    assert {(r.model_version, r.champion_version) for r in rows} == {(challenger, champion)}
    assert {r.snapshot_date for r in rows} == set(paired[SNAPSHOT_DATE])
    for day in set(paired[SNAPSHOT_DATE]):
        (portfolio,) = [r for r in rows if r.snapshot_date == day and r.grade is None]
        mine = paired[paired[SNAPSHOT_DATE] == day]
        assert portfolio.customers == len(mine) and portfolio.observed_defaults == mine["y"].sum()
        assert portfolio.roc_auc == pytest.approx(roc_auc_score(mine["y"], mine["pd_b"]), abs=1e-12)
        assert portfolio.roc_auc_reference == pytest.approx(challenger_trained[1]["holdout"]["roc_auc"])
        grades = [r for r in rows if r.snapshot_date == day and r.grade is not None]
        assert sum(r.customers for r in grades) == portfolio.customers


def _check_comparison(pair: dict, paired: pd.DataFrame, versions: tuple) -> None:
    """comparison.json's pair against scikit-learn on the paired rows, computed here."""
    assert (pair[CHAMPION_VERSION], pair["challenger_version"]) == versions
    assert pair["snapshots"] == [d.isoformat() for d in sorted(set(paired[SNAPSHOT_DATE]))]
    assert pair["customers"] == len(paired) and pair["defaults"] == paired["y"].sum()
    y = paired["y"]
    for side, name in (("a", "champion"), ("b", "challenger")):
        by_hand = _figures(paired, side)
        for figure, value in by_hand.items():
            assert pair[name][figure] == pytest.approx(value, rel=1e-9), (name, figure)
        mean_pd = by_hand["expected_defaults"] / len(paired)
        jeffreys = float(stats.jeffreys_p_value(y.sum(), len(paired), mean_pd))
        assert pair[name]["jeffreys_p_value"] == pytest.approx(jeffreys, rel=1e-9)
    reference = stats.paired_auc_delong(y, paired["pd_a"], paired["pd_b"])
    auc_a, auc_b = roc_auc_score(y, paired["pd_a"]), roc_auc_score(y, paired["pd_b"])
    assert pair["delta_roc_auc"] == pytest.approx(auc_b - auc_a, abs=1e-12)
    assert (pair["delong_z"], pair["delong_p_value"]) == pytest.approx(
        (reference.z, reference.p_value), rel=1e-9
    )
    loss_a, loss_b = log_loss(y, y_proba=paired["pd_a"]), log_loss(y, y_proba=paired["pd_b"])
    assert pair["delta_log_loss"] == pytest.approx(loss_b - loss_a, rel=1e-9)
    brier_a, brier_b = brier_score_loss(y, paired["pd_a"]), brier_score_loss(y, paired["pd_b"])
    assert pair["delta_brier"] == pytest.approx(brier_b - brier_a, rel=1e-9)
    for snap in pair["per_snapshot"]:
        mine = paired[paired[SNAPSHOT_DATE] == date.fromisoformat(snap["snapshot_date"])]
        assert snap["customers"] == len(mine) and snap["defaults"] == mine["y"].sum()
        assert snap["champion_roc_auc"] == pytest.approx(roc_auc_score(mine["y"], mine["pd_a"]), abs=1e-12)
        assert snap["challenger_roc_auc"] == pytest.approx(roc_auc_score(mine["y"], mine["pd_b"]), abs=1e-12)
        one = stats.paired_auc_delong(mine["y"], mine["pd_a"], mine["pd_b"])
        assert snap["delong_p_value"] == pytest.approx(one.p_value, rel=1e-9)
