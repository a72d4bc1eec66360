"""`run_backtest`: scored table + outcomes + performance window -> the backtest table, plots, summary.

Composition only: read and check, decide which snapshots can be backtested, aggregate in Spark,
compute the figures on the driver, write everything staged and swapped in (`report.write_outputs`).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from defaultrisk.backtest import compare, config, evaluate, migration, outcomes, report, scored
from defaultrisk.backtest.config import BacktestConfig
from defaultrisk.errors import InputError
from defaultrisk.grades import scale_from_manifest

log = logging.getLogger(__name__)


def run_backtest(spark: SparkSession, cfg: BacktestConfig) -> dict:
    """Backtest every snapshot whose window has closed; the JSON summary of the run."""
    started = time.monotonic()
    started_at = datetime.now(UTC)
    run_id = started_at.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
    config.check_paths(cfg)
    manifests = evaluate.load_manifests(cfg.model_dirs)
    table = scored.read_scored(spark, cfg.scored_path)
    shadow = scored.read_shadow(spark, cfg.scored_path)
    versions = scored.snapshot_versions(table)
    if not versions:
        raise InputError(f"the scored table {cfg.scored_path} has no rows")
    scales = {v: scale_from_manifest(manifests.get(v, {})) for v in set(versions.values())}
    graded = scored.with_grades(table, scales)
    validated = outcomes.validate_outcomes(
        outcomes.read_outcomes(spark, cfg.outcomes_path, cfg.outcomes_format)
    ).cache()
    try:
        outcome_info = outcomes.summarise(validated, cfg.observed_until)
        as_of = cfg.as_of or started_at.date()
        snapshots, skipped = [], []
        for day in sorted(versions):
            status, end = outcomes.window_status(
                day, cfg.window_months, as_of, outcome_info[outcomes.OBSERVED_UNTIL]
            )
            if status != outcomes.BACKTESTED:
                skipped.append({"snapshot_date": day.isoformat(), "reason": status, "window_end": end})
                continue
            version = versions[day]
            reference = evaluate.auc_reference(manifests.get(version, {}))
            snapshots.append(evaluate.Snapshot(day, version, scales[version], reference, end))
        rows = evaluate.figures(graded, validated, snapshots, cfg)
        moved = migration.configured_migration(graded, cfg, versions, scales)
        failed = evaluate.failures(rows, cfg.fail_on)
        challengers = None
        if shadow is not None:  # challengers scored beside the live model: their figures, the comparison
            found = compare.challengers(graded, shadow, validated, snapshots, manifests, cfg)
            challengers = replace(found, header=compare.header(run_id, started_at, cfg))
        summary = {
            "status": evaluate.FAILED_STATUS if failed else "passed",
            "run_id": run_id,
            "as_of": as_of,
            "window_months": cfg.window_months,
            "significance": cfg.significance,
            "fail_on": list(cfg.fail_on),
            "outcomes": outcome_info,
            "backtested": [report.snapshot_summary(r) for r in rows if r["grade"] is None],
            "skipped": skipped,
            "failed_tests": failed,
            **({"migration": moved} if moved else {}),
            **({"comparisons": challengers.summary()} if challengers is not None else {}),
        }
        paths = report.write_outputs(
            cfg.effective_output, rows, outcomes.rejected_outcomes(validated), summary, cfg.plots, challengers
        )
    finally:
        validated.unpersist()
    summary["paths"] = paths
    summary["seconds"] = round(time.monotonic() - started, 1)
    log.info("backtest %s: %d snapshot(s) backtested, %d skipped", run_id, len(snapshots), len(skipped))
    return summary
