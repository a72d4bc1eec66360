"""`run_backtest`: scored table + outcomes + performance window -> the backtest table, plots, summary.

Composition only: read and check, decide which snapshots can be backtested, aggregate in Spark,
compute the figures on the driver, write everything staged and swapped in (`report.write_outputs`).
"""

from __future__ import annotations

import calendar
import json
import logging
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.backtest import evaluate, measures, report
from defaultrisk.backtest.config import BacktestConfig
from defaultrisk.backtest.migration import migration
from defaultrisk.backtest.outcomes import (
    OBSERVED_UNTIL,
    outcome_keys,
    read_outcomes,
    rejected_outcomes,
    summarise,
    validate_outcomes,
)
from defaultrisk.errors import ConfigError, InputError, ModelError
from defaultrisk.grades import DEFAULT_SCALE, MasterScale, grade_column, scale_from_manifest
from defaultrisk.schema import MODEL_VERSION, PD, SNAPSHOT_DATE, UUID

log = logging.getLogger(__name__)
MANIFEST_FILE = "manifest.json"
BACKTESTED = "backtested"
WINDOW_OPEN = "window_open"  # the performance window has not ended by the as-of date
OUTCOMES_INCOMPLETE = "outcomes_incomplete"  # the outcomes do not cover the whole window


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (as Spark's add_months)."""
    years, month0 = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month0 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def window_status(day: date, months: int, as_of: date, observed_until: date) -> tuple[str, date]:
    """Whether a snapshot can be backtested, and the last day of its window."""
    end = add_months(day, months)
    if end >= as_of:
        return WINDOW_OPEN, end
    if end > observed_until:
        return OUTCOMES_INCOMPLETE, end
    return BACKTESTED, end


def load_manifests(model_dirs: tuple[str, ...]) -> dict[str, dict]:
    """Each model's manifest by its model_version."""
    manifests = {}
    for model_dir in model_dirs:
        path = Path(model_dir) / MANIFEST_FILE
        try:
            manifest = json.loads(path.read_text())
            manifests[manifest["model_version"]] = manifest
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read a model manifest at {path}: {exc}") from exc
    return manifests


def read_scored(spark: SparkSession, path: str) -> DataFrame:
    """The scored table with the columns the backtest needs; fails naming missing ones."""
    try:
        scored = spark.read.parquet(path)
    except AnalysisException as exc:
        raise InputError(f"cannot read the scored table {path}: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in (UUID, PD, SNAPSHOT_DATE) if c not in scored.columns]
    if missing:
        raise InputError(f"the scored table {path} is missing column(s): {', '.join(missing)}")
    if MODEL_VERSION not in scored.columns:
        scored = scored.withColumn(MODEL_VERSION, F.lit(None).cast("string"))
    return scored


def with_grades(scored: DataFrame, scales: dict[str | None, MasterScale]) -> DataFrame:
    """The table's own `grade`, or the grade of each row's pd on its model's master scale."""
    if measures.GRADE in scored.columns:
        return scored.withColumn(measures.GRADE, F.col(measures.GRADE).cast("int"))
    distinct = {s for s in scales.values()}
    if len(distinct) <= 1:
        return scored.withColumn(measures.GRADE, grade_column(PD, next(iter(distinct), DEFAULT_SCALE)))
    chain = None
    for version, scale in scales.items():
        match = F.col(MODEL_VERSION).eqNullSafe(F.lit(version))
        chain = (F.when if chain is None else chain.when)(match, grade_column(PD, scale))
    return scored.withColumn(measures.GRADE, chain)


def _snapshot_versions(scored: DataFrame) -> dict[date, str | None]:
    rows = scored.groupBy(SNAPSHOT_DATE).agg(F.max(MODEL_VERSION).alias(MODEL_VERSION)).collect()
    return {r[SNAPSHOT_DATE]: r[MODEL_VERSION] for r in rows}


def _auc_reference(manifest: dict) -> float | None:
    value = manifest.get("metrics", {}).get("holdout", {}).get("roc_auc")
    return float(value) if value is not None else None


def _check_paths(cfg: BacktestConfig) -> None:
    for name, value in (("--scored", cfg.scored_path), ("--outcomes", cfg.outcomes_path)):
        if not value:
            raise ConfigError(f"{name} is required")
    out, scored = cfg.effective_output.rstrip("/"), cfg.scored_path.rstrip("/")
    if out == scored or out.startswith(cfg.outcomes_path.rstrip("/") + "/") or out == cfg.outcomes_path:
        raise ConfigError(f"--output {out} would overwrite an input")
    if out.startswith(scored + "/") and not out[len(scored) + 1 :].startswith("_"):
        raise ConfigError(f"--output {out} inside the scored table must be a folder starting with _")


def run_backtest(spark: SparkSession, cfg: BacktestConfig) -> dict:
    """Backtest every snapshot whose window has closed; the JSON summary of the run."""
    started = time.monotonic()
    started_at = datetime.now(UTC)
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
    _check_paths(cfg)
    manifests = load_manifests(cfg.model_dirs)
    scored = read_scored(spark, cfg.scored_path)
    versions = _snapshot_versions(scored)
    if not versions:
        raise InputError(f"the scored table {cfg.scored_path} has no rows")
    scales = {v: scale_from_manifest(manifests.get(v, {})) for v in set(versions.values())}
    graded = with_grades(scored, scales)
    validated = validate_outcomes(read_outcomes(spark, cfg.outcomes_path, cfg.outcomes_format)).cache()
    try:
        outcome_info = summarise(validated, cfg.observed_until)
        as_of = cfg.as_of or started_at.date()
        snapshots, skipped = [], []
        for day in sorted(versions):
            status, end = window_status(day, cfg.window_months, as_of, outcome_info[OBSERVED_UNTIL])
            if status != BACKTESTED:
                skipped.append({"snapshot_date": day.isoformat(), "reason": status, "window_end": end})
                continue
            version = versions[day]
            reference = _auc_reference(manifests.get(version, {}))
            snapshots.append(evaluate.Snapshot(day, version, scales[version], reference, end))
        rows = _figures(graded, validated, snapshots, cfg)
        moved = _migration(graded, cfg, versions, scales)
        failed = evaluate.failures(rows, cfg.fail_on)
        summary = {
            "status": evaluate.FAILED_STATUS if failed else "passed",
            "run_id": run_id,
            "as_of": as_of,
            "window_months": cfg.window_months,
            "significance": cfg.significance,
            "fail_on": list(cfg.fail_on),
            "outcomes": outcome_info,
            "backtested": [_snapshot_summary(r) for r in rows if r["grade"] is None],
            "skipped": skipped,
            "failed_tests": failed,
            **({"migration": moved} if moved else {}),
        }
        paths = report.write_outputs(
            cfg.effective_output, run_id, rows, rejected_outcomes(validated), summary, cfg.plots
        )
    finally:
        validated.unpersist()
    summary["paths"] = paths
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info("backtest %s: %d snapshot(s) backtested, %d skipped", run_id, len(snapshots), len(skipped))
    return summary


def _figures(graded: DataFrame, validated: DataFrame, snapshots: list, cfg: BacktestConfig) -> list[dict]:
    """Per snapshot and grade: the Spark aggregates, then the figures."""
    if not snapshots:
        return []
    spark = graded.sparkSession
    windows = spark.createDataFrame(
        [(s.snapshot_date, s.window_end) for s in snapshots],
        f"{SNAPSHOT_DATE} date, {measures.WINDOW_END} date",
    )
    labelled = measures.labelled_rows(graded, outcome_keys(validated), windows).cache()
    try:
        counts = measures.grade_counts(labelled)
        sums = measures.discrimination(labelled)
    finally:
        labelled.unpersist()
    rows = []
    for snap in snapshots:
        mine = [c for c in counts if c[SNAPSHOT_DATE] == snap.snapshot_date]
        rows.extend(evaluate.snapshot_rows(snap, mine, sums.get(snap.snapshot_date), cfg))
    return rows


def _migration(graded: DataFrame, cfg: BacktestConfig, versions: dict, scales: dict) -> dict | None:
    if not cfg.migration:
        return None
    missing = [d.isoformat() for d in cfg.migration if d not in versions]
    if missing:
        raise InputError(f"--migration: no snapshot {', '.join(missing)} in the scored table")
    first, second = cfg.migration
    if scales[versions[first]] != scales[versions[second]]:
        log.warning("migration %s -> %s: the two dates' models have different master scales", first, second)
    return migration(graded, first, second, scales[versions[second]])


_SUMMARY_FIELDS = (
    "snapshot_date", "model_version", "window_end", "customers", "expected_defaults", "observed_defaults",
    "mean_pd", "observed_rate", "jeffreys_lower", "jeffreys_upper", "jeffreys_p_value",
    "binomial_p_too_low", "binomial_p_too_high", "calibration_ratio", "brier", "roc_auc", "gini",
    "roc_auc_reference", "roc_auc_change", "auc_drop_p_value", "herfindahl", "herfindahl_normalised",
    "excluded_defaulted_before", "excluded_outcome_rejected", "excluded_no_grade", "tests_failed",
)  # fmt: skip


def _snapshot_summary(row: dict) -> dict:
    return {k: report.plain(row.get(k)) for k in _SUMMARY_FIELDS}
