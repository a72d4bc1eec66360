"""Per-group counts into the backtest's figures and verdicts: plain Python on the driver.

One row per snapshot and grade (every grade of the scale, empty ones too) plus one portfolio row per
snapshot (`grade` null, `grade_label` "all") that also carries the snapshot's ROC AUC figures and the
grade concentration. `tests_failed` names each test rejected at the significance level.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from defaultrisk.backtest import measures, stats
from defaultrisk.backtest.config import (
    AUC_DROP,
    BINOMIAL_TOO_HIGH,
    BINOMIAL_TOO_LOW,
    BINOMIAL_TWO_SIDED,
    JEFFREYS,
    JEFFREYS_GRADE,
    BacktestConfig,
)
from defaultrisk.backtest.measures import DEFAULTED_BEFORE, NO_GRADE, OUTCOME_REJECTED
from defaultrisk.backtest.outcomes import outcome_keys
from defaultrisk.errors import ModelError
from defaultrisk.grades import MasterScale
from defaultrisk.model import MANIFEST_FILE, model_folder
from defaultrisk.schema import SNAPSHOT_DATE

PORTFOLIO_LABEL = "all"
FAILED_STATUS = "tests_failed"
_EXCLUSIONS = (DEFAULTED_BEFORE, OUTCOME_REJECTED, NO_GRADE)


@dataclass(frozen=True)
class Snapshot:
    """What the driver knows about one backtested snapshot before its figures are computed."""

    snapshot_date: object
    model_version: str | None
    scale: MasterScale
    auc_reference: float | None
    window_end: object


def group_row(counts: dict, significance: float, confidence: float) -> dict:
    """Figures of one group (grade or portfolio) from its counts."""
    n, d = int(counts.get("customers") or 0), int(counts.get("observed_defaults") or 0)
    expected = float(counts.get("expected_defaults") or 0.0)
    mean_pd = expected / n if n else math.nan
    lower, upper = stats.jeffreys_interval(d, n, confidence)
    jeffreys = float(stats.jeffreys_p_value(d, n, mean_pd)) if n else math.nan
    binomial = stats.binomial_p_values(d, n, mean_pd) if n else stats.binomial_p_values(0, 0, 0.0)
    row = {
        "customers": n,
        "expected_defaults": expected,
        "observed_defaults": d,
        "mean_pd": mean_pd,
        "observed_rate": d / n if n else math.nan,
        "jeffreys_lower": float(lower),
        "jeffreys_upper": float(upper),
        "jeffreys_p_value": jeffreys,
        "binomial_p_too_low": binomial["too_low"],
        "binomial_p_too_high": binomial["too_high"],
        "binomial_p_two_sided": binomial["two_sided"],
        "calibration_ratio": stats.calibration_ratio(d, expected),
        "brier": float(counts.get("squared_error") or 0.0) / n if n else math.nan,
        **{f"excluded_{k}": int(counts.get(k) or 0) for k in _EXCLUSIONS},
    }
    tests = {
        JEFFREYS: jeffreys,
        BINOMIAL_TOO_LOW: binomial["too_low"],
        BINOMIAL_TOO_HIGH: binomial["too_high"],
        BINOMIAL_TWO_SIDED: binomial["two_sided"],
    }
    row["tests_failed"] = [name for name, p in tests.items() if _rejected(p, significance)]
    return row


def auc_figures(sums: tuple | None, auc_reference: float | None, significance: float) -> dict:
    """ROC AUC, Gini, their change from training and the drop test, from `measures.discrimination` sums."""
    auc, variance = stats.auc_from_sums(*sums) if sums else (math.nan, math.nan)
    reference = math.nan if auc_reference is None else float(auc_reference)
    p_value = stats.auc_drop_p_value(auc, variance, reference)
    return {
        "roc_auc": auc,
        "roc_auc_se": math.sqrt(variance) if variance >= 0 else math.nan,
        "gini": stats.gini(auc),
        "roc_auc_reference": reference,
        "roc_auc_change": auc - reference,
        "gini_change": stats.gini(auc) - stats.gini(reference),
        "auc_drop_p_value": p_value,
        "auc_dropped": _rejected(p_value, significance),
    }


def snapshot_rows(snap: Snapshot, counts: list[dict], sums: tuple | None, cfg) -> list[dict]:
    """The rows of one snapshot: one per grade of its scale, then the portfolio row."""
    by_grade = {c["grade"]: c for c in counts}
    rows = []
    for grade in range(1, snap.scale.grades + 1):
        lower, upper = snap.scale.bounds(grade)
        row = group_row(by_grade.get(grade, {}), cfg.significance, cfg.interval_confidence)
        row["tests_failed"] = [JEFFREYS_GRADE] if JEFFREYS in row["tests_failed"] else []
        rows.append(
            {
                "grade": grade,
                "grade_label": snap.scale.label(grade),
                "pd_lower": lower,
                "pd_upper": upper,
                "central_pd": snap.scale.central_pd[grade - 1],
                **row,
            }
        )
    total = {k: sum(c.get(k) or 0 for c in counts) for k in _summed(counts)}
    portfolio = group_row(total, cfg.significance, cfg.interval_confidence)
    auc = auc_figures(sums, snap.auc_reference, cfg.significance)
    if auc.pop("auc_dropped"):
        portfolio["tests_failed"].append(AUC_DROP)
    herfindahl, normalised = stats.herfindahl([r["customers"] for r in rows])
    rows.append(
        {
            "grade": None,
            "grade_label": PORTFOLIO_LABEL,
            **portfolio,
            **auc,
            "herfindahl": herfindahl,
            "herfindahl_normalised": normalised,
        }
    )
    common = {"snapshot_date": snap.snapshot_date, "model_version": snap.model_version}
    return [{**common, "window_end": snap.window_end, **r} for r in rows]


def failures(rows: list[dict], fail_on: tuple[str, ...]) -> list[dict]:
    """The rejected tests the configuration fails the run on, one entry per snapshot, grade and test."""
    found = []
    for r in rows:
        for test in r["tests_failed"]:
            if test in fail_on:
                p_key = "auc_drop_p_value" if test == AUC_DROP else _p_key(test)
                found.append(
                    {
                        "snapshot_date": r["snapshot_date"],
                        "grade": r["grade_label"],
                        "test": test,
                        "p_value": r[p_key],
                    }
                )
    return found


def _p_key(test: str) -> str:
    return {
        JEFFREYS: "jeffreys_p_value",
        JEFFREYS_GRADE: "jeffreys_p_value",
        BINOMIAL_TOO_LOW: "binomial_p_too_low",
        BINOMIAL_TOO_HIGH: "binomial_p_too_high",
        BINOMIAL_TWO_SIDED: "binomial_p_two_sided",
    }[test]


def _summed(counts: list[dict]) -> set[str]:
    return {k for c in counts for k in c if k not in ("snapshot_date", "grade")}


def _rejected(p_value: float, significance: float) -> bool:
    return math.isfinite(p_value) and p_value < significance


def load_manifests(model_dirs: tuple[str, ...]) -> dict[str, dict]:
    """Each model's manifest by its model_version (a folder, or a `models:/` URI's registered folder)."""
    manifests = {}
    for model_dir in model_dirs:
        path = model_folder(model_dir) / MANIFEST_FILE
        try:
            manifest = json.loads(path.read_text())
            manifests[manifest["model_version"]] = manifest
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read a model manifest at {path}: {exc}") from exc
    return manifests


def auc_reference(manifest: dict) -> float | None:
    """The hold-out ROC AUC the manifest recorded at training, if any."""
    value = manifest.get("metrics", {}).get("holdout", {}).get("roc_auc")
    return float(value) if value is not None else None


def figures(graded: DataFrame, validated: DataFrame, snapshots: list, cfg: BacktestConfig) -> list[dict]:
    """Per snapshot and grade: the Spark aggregates, then the figures."""
    if not snapshots:
        return []
    windows = windows_frame(graded.sparkSession, snapshots)
    labelled = measures.labelled_rows(graded, outcome_keys(validated), windows).cache()
    try:
        counts = measures.grade_counts(labelled)
        sums = measures.discrimination(labelled)
    finally:
        labelled.unpersist()
    rows = []
    for snap in snapshots:
        mine = [c for c in counts if c[SNAPSHOT_DATE] == snap.snapshot_date]
        rows.extend(snapshot_rows(snap, mine, sums.get(snap.snapshot_date), cfg))
    return rows


def windows_frame(spark: SparkSession, snapshots: list[Snapshot]) -> DataFrame:
    """The backtested snapshots and their windows' last days, as `measures.labelled_rows` takes them."""
    return spark.createDataFrame(
        [(s.snapshot_date, s.window_end) for s in snapshots],
        f"{SNAPSHOT_DATE} date, {measures.WINDOW_END} date",
    )
