"""The scoring job, composition only: check every model, then score one date or a backfill."""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession

from defaultrisk.errors import ConfigError, DefaultRiskError, InputError
from defaultrisk.model import CheckedModel, load_checked
from defaultrisk.scoring.backfill import OK, backfill, for_day, plan, run_day
from defaultrisk.scoring.catalog import register_tables
from defaultrisk.scoring.config import ScoreConfig, for_date
from defaultrisk.scoring.paths import check_paths
from defaultrisk.scoring.run import log_failed_date
from defaultrisk.scoring.udf import check_executor_libraries


def run_score(spark: SparkSession, cfg: ScoreConfig) -> dict:
    """Score one snapshot date, or each date of a backfill (`date_to`) as its own atomic run.

    Every path is checked against the others first. In a backfill, a date whose input is missing or
    unreadable is reported and the others still run (status "partial"); a model or output failure
    stops the backfill (dates already done stay done).
    """
    if cfg.snapshot_date is None:
        raise InputError("a snapshot date is required")
    check_paths(spark, cfg)  # before anything is read or written, dry runs included
    if cfg.dry_run:
        return plan(spark, cfg)
    models = check_models(spark, cfg)
    if cfg.date_to is None:
        dated = for_day(cfg, cfg.snapshot_date)
        runs = [run_day(spark, dated, models)]
        summary = {**runs[0], "status": OK}
    else:
        runs, summary = backfill(spark, cfg, models)
    over = sorted({f for r in runs for f in ((r.get("drift") or {}).get("over_limit") or [])})
    summary["drift_over_limit"] = over
    if cfg.table:
        summary["tables"] = register_tables(spark, cfg.table, cfg.output_dir, cfg.effective_rejects_dir)
    return summary


def check_models(spark: SparkSession, cfg: ScoreConfig) -> dict[str, CheckedModel]:
    """Every model the run needs, live and challengers, loaded and checked on the driver before the
    first date is scored, and the executors' XGBoost checked against the driver's. A failure logs
    each date as failed. Returns the models by the directory (or URI) they were given as."""
    models: dict[str, CheckedModel] = {}
    try:
        for day in cfg.dates:
            for model_dir in (cfg.model_for(day), *cfg.challengers_for(day)):
                if model_dir not in models:
                    models[model_dir] = load_checked(model_dir)
            check_challengers(day, models[cfg.model_for(day)], cfg.challengers_for(day), models)
        check_executor_libraries(spark)
    except DefaultRiskError as exc:  # no date was scored: each gets its failed row in the run log
        for day in cfg.dates:
            log_failed_date(spark, cfg.output_dir, day, for_date(cfg.input_path, day), str(exc))
        raise
    return models


def check_challengers(
    day: date, live: CheckedModel, challengers: list[str], models: dict[str, CheckedModel]
) -> None:
    """A challenger is another model than the date's live one, and than every other challenger:
    the shadow table keeps one folder per model_version. Raises ConfigError (exit 2)."""
    seen = {live.version: f"the live model of {day.isoformat()}"}
    for model_dir in challengers:
        version = models[model_dir].version
        if version in seen:
            raise ConfigError(f"--challenger {model_dir} is {seen[version]} ({version})")
        seen[version] = f"the same model as --challenger {model_dir}"
