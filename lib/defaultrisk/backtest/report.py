"""The backtest's outputs: the `_backtest` table, its rejects, plots and the summary, staged then swapped.

Layout under OUTPUT (default SCORED/_backtest):
- `snapshot_date=YYYY-MM-DD/part-*.parquet` + `_SUCCESS`: one row per grade plus the portfolio row;
- `_rejects/`: the outcome rows rejected by this run, with their reason;
- `_report/`: `summary.json`, the plots, `migration_FROM_TO.json` / `.csv` when asked;
- with a shadow table: `_challengers/snapshot_date=YYYY-MM-DD/` (each challenger's rows, the table's
  columns plus `champion_version`) and in `_report/` `comparison.json` and the comparison plots.

Everything is first written under `OUTPUT/_staging/RUN_ID/` and only then swapped in, item by item,
with the scoring job's rename swap: a run that fails before the swap leaves every previous output whole.
"""

from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a batch node
import matplotlib.pyplot as plt
import numpy as np
from pyspark.sql import DataFrame, SparkSession

from defaultrisk.backtest.compare import Challengers
from defaultrisk.backtest.measures import CHALLENGER
from defaultrisk.errors import OutputError, first_line
from defaultrisk.fs import mkdirs, publish_folder
from defaultrisk.jsondata import plain, write_json
from defaultrisk.schema import BACKTEST_REPORT_DIR, CHALLENGERS_DIR, CHAMPION_VERSION, COMPARISON_FILE
from defaultrisk.scoring.staging import (
    STAGING_DIR,
    StagedPartition,
    discard,
    mark_staged,
    partition_path,
    stage_partition,
    swap_in,
)

REJECTS = "_rejects"
REPORT = BACKTEST_REPORT_DIR
# One row per snapshot and grade (`grade` null on the portfolio row); docs/backtest.md explains each.
TABLE_DDL = """
snapshot_date date, grade int, grade_label string, pd_lower double, pd_upper double, central_pd double,
customers bigint, expected_defaults double, observed_defaults bigint, mean_pd double, observed_rate double,
jeffreys_lower double, jeffreys_upper double, jeffreys_p_value double, binomial_p_too_low double,
binomial_p_too_high double, binomial_p_two_sided double, calibration_ratio double, brier double,
roc_auc double, roc_auc_se double, gini double, roc_auc_reference double, roc_auc_change double,
gini_change double, auc_drop_p_value double, herfindahl double, herfindahl_normalised double,
excluded_defaulted_before bigint, excluded_outcome_rejected bigint, excluded_no_grade bigint,
tests_failed array<string>, model_version string, window_end date, run_id string,
backtested_at timestamp, significance double
"""
TABLE_COLUMNS = tuple(part.split()[0] for part in TABLE_DDL.split(","))
# The challengers' table: the same rows for each challenger (model_version its own) and the champion it
# was scored beside.
CHALLENGERS_DDL = TABLE_DDL.rstrip() + f", {CHAMPION_VERSION} string\n"


def _cell(value):
    """A value as Spark's row verifier takes it: Python numbers, NaN as null."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return int(value) if isinstance(value, np.integer) else value


def table_frame(
    spark: SparkSession, rows: list[dict], run_id: str, significance: float, ddl: str = TABLE_DDL
) -> DataFrame:
    """The rows as a Spark frame of `ddl` (NaN stored as null)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    extra = {"run_id": run_id, "backtested_at": now, "significance": significance}
    columns = [part.split()[0] for part in ddl.split(",")]
    data = [tuple(_cell({**r, **extra}.get(name)) for name in columns) for r in rows]
    return spark.createDataFrame(data, ddl)


def write_outputs(
    root: str,
    rows: list[dict],
    rejects: DataFrame,
    summary: dict,
    plots: bool,
    challengers: Challengers | None = None,
) -> dict:
    """Stage every output of the run, then swap each in; the paths written."""
    spark, run_id = rejects.sparkSession, summary["run_id"]
    root = root.rstrip("/")
    staged: list[StagedPartition] = []
    try:
        with tempfile.TemporaryDirectory(prefix="backtest-report-") as local:
            _write_report(Path(local), rows, summary, plots)
            if challengers is not None:
                _write_comparison(Path(local), challengers, plots)
            frame = table_frame(spark, rows, run_id, summary["significance"])
            staged.extend(_stage_table(frame, _days(rows), root, root, run_id))
            if challengers is not None:
                theirs = table_frame(
                    spark, challengers.rows, run_id, summary["significance"], CHALLENGERS_DDL
                )
                shadow = f"{root}/{CHALLENGERS_DIR}"
                days = _days(challengers.rows)
                staged.extend(_stage_table(theirs, days, root, shadow, f"{run_id}/challengers"))
            staged.append(_stage_rejects(rejects, root, run_id))
            target = f"{root}/{STAGING_DIR}/{run_id}/report/{REPORT}"
            publish_folder(spark, local, target)
            staged.append(StagedPartition(root, f"{run_id}/report", f"{root}/{REPORT}", target))
        if challengers is not None:
            mkdirs(spark, f"{root}/{CHALLENGERS_DIR}")
        for part in staged:
            swap_in(spark, part)
    finally:
        discard(spark, StagedPartition(root, run_id, "", ""))
    paths = {"table": root, "rejects": f"{root}/{REJECTS}", "report": f"{root}/{REPORT}"}
    if challengers is not None:
        paths["challengers"] = f"{root}/{CHALLENGERS_DIR}"
        paths["comparison"] = f"{root}/{REPORT}/{COMPARISON_FILE}"
    return paths


def _days(rows: list[dict]) -> list[date]:
    return sorted({r["snapshot_date"] for r in rows})


def _stage_table(
    frame: DataFrame, days: list[date], root: str, table: str, tag: str
) -> list[StagedPartition]:
    """Stage one partition per snapshot date under ROOT's staging folder (`_staging/TAG/i/`), each to be
    swapped into `table`: the backtest table itself, or its `_challengers` table. TAG starts with the
    run id, which each partition's marker records."""
    staged = []
    for i, day in enumerate(days):
        part = stage_partition(frame.where(frame.snapshot_date == day).coalesce(1), root, day, f"{tag}/{i}")
        part = replace(part, partition=partition_path(table, day))
        run_id = tag.partition("/")[0]
        mark_staged(frame.sparkSession, part, {"run_id": run_id, "snapshot_date": day.isoformat()})
        staged.append(part)
    return staged


def _stage_rejects(rejects: DataFrame, root: str, run_id: str) -> StagedPartition:
    target = f"{root}/{STAGING_DIR}/{run_id}/rejects/{REJECTS}"
    try:
        rejects.coalesce(1).write.mode("errorifexists").parquet(target)
    except Exception as exc:  # a Py4J error carrying the file system's message
        raise OutputError(f"cannot write {target}: {first_line(exc)}") from exc
    return StagedPartition(root, f"{run_id}/rejects", f"{root}/{REJECTS}", target)


def _write_report(folder: Path, rows: list[dict], summary: dict, plots: bool) -> None:
    write_json(folder / "summary.json", summary, sort_keys=True)
    moved = summary.get("migration")
    if moved:
        stem = f"migration_{moved['from']}_{moved['to']}"
        write_json(folder / f"{stem}.json", moved)
        with (folder / f"{stem}.csv").open("w", newline="") as fh:
            writer = csv.writer(fh, delimiter=";")
            writer.writerow(["grade_from", *[f"to_{label}" for label in moved["labels"]]])
            for label, counts in zip(moved["labels"], moved["counts"], strict=True):
                writer.writerow([label, *counts])
    portfolio = sorted((r for r in rows if r["grade"] is None), key=lambda r: r["snapshot_date"])
    if plots and portfolio:
        _plot_rates(portfolio, folder / "default_rates.png")
        _plot_grades(rows, portfolio[-1]["snapshot_date"], folder / "grades.png")
        _plot_auc(portfolio, folder / "auc.png")


def _write_comparison(folder: Path, challengers: Challengers, plots: bool) -> None:
    write_json(folder / COMPARISON_FILE, challengers.document())
    if plots and challengers.comparisons:
        _plot_roc(challengers.tally, folder / "comparison_roc.png")
        _plot_reliability(challengers.tally, folder / "comparison_calibration.png")
        _plot_paired_auc(challengers.comparisons, folder / "comparison_auc.png")


def _curves(tally: list[dict]) -> dict[tuple, list[dict]]:
    """The pd tally's steps by (champion, challenger, side), highest pd first."""
    out: dict[tuple, list[dict]] = {}
    for r in tally:
        out.setdefault((r[CHAMPION_VERSION], r[CHALLENGER], r["side"]), []).append(r)
    return {k: sorted(v, key=lambda r: -r["pd_step"]) for k, v in sorted(out.items())}


def _label(key: tuple) -> str:
    champion, challenger, side = key
    return f"champion {champion}" if side == "champion" else f"challenger {challenger}"


def _plot_roc(tally: list[dict], path: Path) -> None:
    """ROC curves of champion and challenger(s) on their paired rows, all snapshots pooled.

    Drawn from the pd tallied on a grid of 200 steps per decade (`measures.pd_tally`): the curve's
    points are the grid's thresholds, close to the exact curve at this resolution.
    """
    fig, ax = plt.subplots(figsize=(6, 6))
    for key, steps in _curves(tally).items():
        defaults = np.array([s["defaults"] for s in steps], dtype=float)
        others = np.array([s["customers"] for s in steps], dtype=float) - defaults
        tpr = np.concatenate([[0.0], np.cumsum(defaults) / max(defaults.sum(), 1.0)])
        fpr = np.concatenate([[0.0], np.cumsum(others) / max(others.sum(), 1.0)])
        ax.plot(fpr, tpr, "-" if key[2] == "challenger" else "--", label=_label(key))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="random")
    ax.set(
        xlabel="false positive rate (non-defaulters above the threshold)",
        ylabel="true positive rate (defaulters above it)",
        title="ROC curves on the same customers",
    )
    ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_reliability(tally: list[dict], path: Path, bins: int = 10) -> None:
    """Observed default rate against mean pd in `bins` groups of about equal customers, each model."""
    fig, ax = plt.subplots(figsize=(6, 6))
    low = 1.0
    for key, descending in _curves(tally).items():
        steps = descending[::-1]
        customers = np.array([s["customers"] for s in steps], dtype=float)
        group = np.minimum((np.cumsum(customers) - customers / 2) * bins // customers.sum(), bins - 1)
        n = np.bincount(group.astype(int), weights=customers, minlength=bins)
        d = np.bincount(group.astype(int), weights=[s["defaults"] for s in steps], minlength=bins)
        p = np.bincount(group.astype(int), weights=[s["sum_pd"] for s in steps], minlength=bins)
        keep = (n > 0) & (d > 0)
        mean_pd, rate = p[keep] / n[keep], d[keep] / n[keep]
        low = min(low, *mean_pd, *rate) if keep.any() else low
        ax.plot(mean_pd, rate, "s-" if key[2] == "challenger" else "o--", label=_label(key))
    ax.plot([low, 1], [low, 1], ":", color="grey", label="perfect calibration")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlabel="mean pd", ylabel="observed default rate", title=f"Calibration, {bins} groups of customers")
    ax.legend(loc="upper left", fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_paired_auc(comparisons: list[dict], path: Path) -> None:
    """ROC AUC per snapshot of the champion and each challenger on their paired rows."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    champions = set()
    for c in comparisons:
        dates = [date.fromisoformat(s["snapshot_date"]) for s in c["per_snapshot"]]
        if (c[CHAMPION_VERSION], tuple(dates)) not in champions:
            champions.add((c[CHAMPION_VERSION], tuple(dates)))
            auc = [
                np.nan if s["champion_roc_auc"] is None else s["champion_roc_auc"] for s in c["per_snapshot"]
            ]
            ax.plot(dates, auc, "o--", label=f"champion {c[CHAMPION_VERSION]}")
        auc = [
            np.nan if s["challenger_roc_auc"] is None else s["challenger_roc_auc"] for s in c["per_snapshot"]
        ]
        ax.plot(dates, auc, "s-", label=f"challenger {c[CHALLENGER]}")
    ax.set(xlabel="snapshot date", ylabel="ROC AUC", title="Discriminatory power on the same customers")
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _errorbars(rows: list[dict]) -> np.ndarray:
    rate = np.array([r["observed_rate"] for r in rows], dtype=float)
    lower = np.array([r["jeffreys_lower"] for r in rows], dtype=float)
    upper = np.array([r["jeffreys_upper"] for r in rows], dtype=float)
    return np.vstack([np.clip(rate - lower, 0, None), np.clip(upper - rate, 0, None)])


def _plot_rates(portfolio: list[dict], path: Path) -> None:
    """Predicted (mean pd) against observed default rate per snapshot, with Jeffreys intervals."""
    dates = [r["snapshot_date"] for r in portfolio]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(dates, [r["mean_pd"] for r in portfolio], "o-", label="predicted (mean pd)")
    rate = [r["observed_rate"] for r in portfolio]
    ax.errorbar(
        dates, rate, yerr=_errorbars(portfolio), fmt="s", capsize=3, label="observed, Jeffreys interval"
    )
    ax.set(
        xlabel="snapshot date",
        ylabel="default rate in the window",
        title="Predicted vs observed default rate",
    )
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_grades(rows: list[dict], day: date, path: Path) -> None:
    """Per grade of one snapshot: mean pd and observed rate with its interval, on a log scale."""
    grades = [r for r in rows if r["snapshot_date"] == day and r["grade"] is not None and r["customers"]]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [r["grade_label"] for r in grades]
    ax.plot(x, [r["mean_pd"] for r in grades], "o-", label="predicted (mean pd)")
    observed = [r for r in grades if r["observed_defaults"]]
    ax.errorbar(
        [r["grade_label"] for r in observed],
        [r["observed_rate"] for r in observed],
        yerr=_errorbars(observed),
        fmt="s",
        capsize=3,
        label="observed, Jeffreys interval",
    )
    ax.set_yscale("log")
    ax.set(xlabel="grade", ylabel="default rate", title=f"Per grade, snapshot {day.isoformat()}")
    ax.legend()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _plot_auc(portfolio: list[dict], path: Path) -> None:
    """ROC AUC per snapshot (±1.96 standard errors) against the value at training."""
    dates = [r["snapshot_date"] for r in portfolio]
    auc = np.array([r["roc_auc"] for r in portfolio], dtype=float)
    se = np.array([r["roc_auc_se"] for r in portfolio], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.errorbar(dates, auc, yerr=1.96 * np.nan_to_num(se), fmt="o-", capsize=3, label="ROC AUC (95%)")
    reference = [r["roc_auc_reference"] for r in portfolio]
    if any(np.isfinite(reference)):
        ax.plot(dates, reference, "--", label="at training (hold-out)")
    ax.set(xlabel="snapshot date", ylabel="ROC AUC", title="Discriminatory power over time")
    ax.legend()
    fig.autofmt_xdate()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


_SUMMARY_FIELDS = (
    "snapshot_date", "model_version", "window_end", "customers", "expected_defaults", "observed_defaults",
    "mean_pd", "observed_rate", "jeffreys_lower", "jeffreys_upper", "jeffreys_p_value",
    "binomial_p_too_low", "binomial_p_too_high", "calibration_ratio", "brier", "roc_auc", "gini",
    "roc_auc_reference", "roc_auc_change", "auc_drop_p_value", "herfindahl", "herfindahl_normalised",
    "excluded_defaulted_before", "excluded_outcome_rejected", "excluded_no_grade", "tests_failed",
)  # fmt: skip


def snapshot_summary(row: dict) -> dict:
    """A portfolio row's figures for the JSON summary."""
    return {k: plain(row.get(k)) for k in _SUMMARY_FIELDS}
