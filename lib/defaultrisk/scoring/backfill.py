"""Backfills: every date from `--from` to `--to`, each its own run with its own input, model and
results file (`{snapshot_date}` replaced), and the dry-run plan of what such a run would touch."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

from pyspark.sql import SparkSession

from defaultrisk.errors import InputError
from defaultrisk.fs import path_exists
from defaultrisk.model import CheckedModel, load_checked
from defaultrisk.scoring.config import ScoreConfig, for_date
from defaultrisk.scoring.run import log_failed_date, logged_run
from defaultrisk.scoring.runlog import FAILED, runs_path
from defaultrisk.scoring.staging import partition_path, shadow_root

log = logging.getLogger(__name__)

OK, PARTIAL, MISSING_INPUT = "ok", "partial", "missing_input"  # a scoring run's status


def for_day(cfg: ScoreConfig, day: date) -> ScoreConfig:
    """The settings of one date of a backfill: its input, model and results file."""
    return replace(
        cfg,
        snapshot_date=day,
        input_path=for_date(cfg.input_path, day),
        results_csv=for_date(cfg.results_csv, day) if cfg.results_csv else None,
        model_dir=cfg.model_for(day),
        challengers=tuple((None, model_dir) for model_dir in cfg.challengers_for(day)),
        date_to=None,
    )


def run_day(spark: SparkSession, dated: ScoreConfig, models: dict[str, CheckedModel]) -> dict:
    """One date's logged run with its live model and its challengers, all checked by `check_models`."""
    challengers = {d: models[d] for d in dated.challengers_for(dated.snapshot_date)}
    return logged_run(spark, dated, models[dated.model_dir], challengers)


def backfill(spark: SparkSession, cfg: ScoreConfig, models: dict[str, CheckedModel]) -> tuple[list, dict]:
    """Each date its own run; a date whose input is missing or unreadable is reported, the rest go on."""
    runs, problems = [], []
    days = cfg.dates
    for number, day in enumerate(days, start=1):
        dated = for_day(cfg, day)
        log.info("date %d/%d: %s", number, len(days), day.isoformat())
        if not path_exists(spark, dated.input_path):
            error = f"input not found: {dated.input_path}"
            log.warning("%s: %s; going on with the other dates", day, error)
            log_failed_date(spark, cfg.output_dir, day, dated.input_path, error)
            problems.append({"snapshot_date": day.isoformat(), "status": MISSING_INPUT, "error": error})
            continue
        try:
            runs.append(run_day(spark, dated, models))
        except InputError as exc:
            log.warning("%s: %s; going on with the other dates", day, exc)
            problems.append({"snapshot_date": day.isoformat(), "status": FAILED, "error": str(exc)})
    summary = {
        "status": PARTIAL if problems else OK,
        "from": cfg.snapshot_date.isoformat(),
        "to": cfg.date_to.isoformat(),
        "succeeded": [r["snapshot_date"] for r in runs],
        "not_scored": problems,
        "runs": runs,
    }
    return runs, summary


def plan(spark: SparkSession, cfg: ScoreConfig) -> dict:
    """What a run would read and write, date by date, without reading or writing anything."""
    dates = []
    for day in cfg.dates:
        dated = for_day(cfg, day)
        entry = {
            "snapshot_date": day.isoformat(),
            "input": dated.input_path,
            "input_exists": path_exists(spark, dated.input_path),
            "model_dir": dated.model_dir,
            "model_version": load_checked(dated.model_dir).version,
            "partition": partition_path(dated.output_dir, day),
            "rejects": partition_path(dated.effective_rejects_dir, day),
            "results_csv": dated.results_csv,
        }
        challengers = dated.challengers_for(day)
        if challengers:
            entry["challengers"] = [
                {"model_dir": d, "model_version": load_checked(d).version} for d in challengers
            ]
            entry["challengers_partition"] = partition_path(shadow_root(dated.output_dir), day)
        dates.append(entry)
    return {"dry_run": True, "dates": dates, "run_log": runs_path(cfg.output_dir), "table": cfg.table}
