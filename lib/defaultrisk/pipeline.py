"""Composition only: read -> validate -> features -> train or score -> write."""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk import drift, io, runlog
from defaultrisk.catalog import register_tables
from defaultrisk.config import DRIVER_SAMPLING, ScoreConfig, TrainConfig, as_dict, for_date
from defaultrisk.errors import DefaultRiskError, InputError, OutputError
from defaultrisk.evaluation import population_weights, read_truth
from defaultrisk.features import model_input
from defaultrisk.model import ScoringModel, read_checked_model, save_model
from defaultrisk.report import write_report
from defaultrisk.sampling import DEFAULTS, NON_DEFAULTS, rate_for_budget, thin_non_defaulters
from defaultrisk.sampling import METHOD as SAMPLING_METHOD
from defaultrisk.schema import (
    DEFAULT,
    FEATURE_NAMES,
    MODEL_VERSION,
    PD,
    REASON,
    REQUIRED_COLUMNS,
    SCORED_AT,
    UUID,
)
from defaultrisk.scoring import check_executor_libraries, score_partitions
from defaultrisk.train import fit
from defaultrisk.validate import MISSING_TOKENS, raw_value, rejected_rows, valid_rows, validate

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
TRAIN_REJECTS_DIR = "rejects"
SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "mean_pd", "default_rate")
OK, PARTIAL, MISSING_INPUT = "ok", "partial", "missing_input"  # a scoring run's status
DRIFT_DIR = "_drift"  # <table root>/_drift/snapshot_date=.../: drift.json, drift.parquet, top_movers.png
DRIFT_SAMPLE_ROWS = 200_000  # plenty for PSI over ten-odd bins; bounds the drift pass on big snapshots
DRIFT_SEED = 17
_SKIPPED = "_skipped"  # a labelled row in an --unlabeled-only run: neither scored nor rejected


def _count_outcomes(validated: DataFrame) -> dict[str, int]:
    """Valid, rejected and skipped rows in one pass over the (persisted) validated frame."""
    rows = validated.groupBy(F.col(REASON).isNull().alias("valid"), F.col(_SKIPPED)).count().collect()
    counts = {"input_rows": 0, "valid_rows": 0, "rejected_rows": 0, "skipped_rows": 0}
    for valid, skipped, n in rows:
        if skipped:
            counts["skipped_rows"] += n
        else:
            counts["input_rows"] += n
            counts["valid_rows" if valid else "rejected_rows"] += n
    return counts


def _read_validated(spark: SparkSession, path: str, input_format: str, labelled: bool, skip_labelled: bool):
    raw = io.read_raw(spark, path, input_format)
    required = (*REQUIRED_COLUMNS, DEFAULT) if labelled else REQUIRED_COLUMNS
    raw = io.select_known_columns(raw, required)
    label_text = raw_value(DEFAULT)
    has_label = ~(label_text.isNull() | F.upper(F.trim(label_text)).isin(*MISSING_TOKENS))
    skipped = has_label if skip_labelled else F.lit(False)
    validated = validate(raw, labelled=labelled).withColumn(_SKIPPED, skipped)
    # Training reads the validated rows three times (counts, rows, rejects) and keeps them; scoring
    # reads its input twice, each pass a column-pruned scan cheaper than caching whole rows.
    return validated.persist(StorageLevel.MEMORY_AND_DISK) if labelled else validated


_SUMMARY_SAMPLING = ("mode", "negative_rate", "negative_sampling_rate", "before", "driver_rows")


def _to_driver(labelled: DataFrame) -> pd.DataFrame:
    """The model's input columns and the label as pandas, in uuid order whatever the partitioning."""
    pdf = model_input(labelled, keep=(DEFAULT,)).toPandas()
    return pdf.sort_values(UUID, kind="stable").reset_index(drop=True)


def _count_outcomes_and_labels(validated: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Valid and rejected rows, and the defaulters and non-defaulters among the valid, in one pass."""
    counts = {"input_rows": 0, "valid_rows": 0, "rejected_rows": 0, "skipped_rows": 0}
    labels = {DEFAULTS: 0, NON_DEFAULTS: 0}
    valid = F.col(REASON).isNull().alias("valid")
    for is_valid, label, n in validated.groupBy(valid, F.col(DEFAULT)).count().collect():
        counts["input_rows"] += n
        counts["valid_rows" if is_valid else "rejected_rows"] += n
        if is_valid and label is not None:
            labels[DEFAULTS if label == 1 else NON_DEFAULTS] += n
    return counts, labels


def _collect_training_rows(validated: DataFrame, cfg: TrainConfig) -> tuple[dict, pd.DataFrame, dict]:
    """Row counts, the labelled rows fit trains on (pandas, in uuid order) and what the sampling did.

    With sampling = "driver" every labelled row is collected. With "spark" the non-defaulters are
    thinned inside Spark first, every defaulter kept, at the configured rate or at the rate that fits
    `max_driver_rows`; the pd is corrected by the share of non-defaulters the sample actually holds.
    """
    labelled = valid_rows(validated.drop(_SKIPPED)).filter(F.col(DEFAULT).isNotNull())
    if cfg.sampling == DRIVER_SAMPLING:
        counts = _count_outcomes(validated)
        pdf = _to_driver(labelled)
        counts["unlabelled_rows"] = counts["valid_rows"] - len(pdf)
        return counts, pdf, {"mode": DRIVER_SAMPLING, "driver_rows": len(pdf)}
    # A table too large to collect is too large to cache with all its raw values as well (5M rows
    # overflow a 4 GB driver's heap): the two passes below, counts and sample, each read the input.
    validated.unpersist()
    counts, before = _count_outcomes_and_labels(validated)
    counts["unlabelled_rows"] = counts["valid_rows"] - sum(before.values())
    rate = cfg.spark_negative_rate
    if rate is None:
        rate = rate_for_budget(before, cfg.max_driver_rows)
    pdf = _to_driver(thin_non_defaulters(labelled, rate, cfg.seed))
    defaults = int((pdf[DEFAULT] == 1).sum())
    after = {DEFAULTS: defaults, NON_DEFAULTS: len(pdf) - defaults}
    kept = after[NON_DEFAULTS] / before[NON_DEFAULTS] if before[NON_DEFAULTS] else 1.0
    log.info(
        "sampled in Spark at rate %.6g: %d of %d defaulters and %d of %d non-defaulters to the driver",
        rate,
        after[DEFAULTS],
        before[DEFAULTS],
        after[NON_DEFAULTS],
        before[NON_DEFAULTS],
    )
    return (
        counts,
        pdf,
        {
            "mode": cfg.sampling,
            "method": SAMPLING_METHOD,
            "seed": cfg.seed,
            "max_driver_rows": cfg.max_driver_rows,
            "negative_rate": rate,
            "negative_sampling_rate": kept,
            "before": before,
            "after": after,
            "observed_default_rate": before[DEFAULTS] / max(sum(before.values()), 1),
            "driver_rows": len(pdf),
        },
    )


def run_train(spark: SparkSession, cfg: TrainConfig) -> dict:
    """Train a model on the labelled rows of `cfg.input_path` and write the model directory."""
    started = time.monotonic()
    log.info("train config: %s", json.dumps(as_dict(cfg), default=str))
    truth = read_truth(cfg.truth_path) if cfg.truth_path else None  # fails before any Spark work
    validated = _read_validated(spark, cfg.input_path, cfg.input_format, labelled=True, skip_labelled=False)
    try:
        counts, pdf, sampling = _collect_training_rows(validated, cfg)
        rate = sampling.get("negative_sampling_rate", 1.0)
        result = fit(pdf, cfg, truth, rate)
        # What the scoring job measures each snapshot's drift against: the training rows' features
        # and the hold-out's pd (scored out of sample, like a snapshot), weighted back to the population.
        drift_reference = drift.reference_profile(
            pdf,
            result.holdout_pd,
            weights=population_weights(pdf[DEFAULT].to_numpy(), rate),
            pd_weights=population_weights(result.holdout_labels, rate),
        )
        model_dir = Path(cfg.model_dir)
        rejects_path = None
        if counts["rejected_rows"]:
            rejects_path = str(model_dir / TRAIN_REJECTS_DIR)
            rejected_rows(validated.drop(_SKIPPED)).write.mode("overwrite").parquet(rejects_path)
    finally:
        validated.unpersist()

    row_counts = {**counts, **result.row_counts}
    thinned = sampling["mode"] != DRIVER_SAMPLING
    if thinned:  # fit's labelled_rows are the sample's; the table's were counted in Spark
        row_counts.update(labelled_rows=sum(sampling["before"].values()), driver_rows=len(pdf))
    manifest = save_model(
        model_dir,
        result.booster,
        {
            "threshold": result.threshold,
            "calibration": result.calibration,
            "row_counts": row_counts,
            "metrics": {"holdout": result.metrics, **({"oracle": result.oracle} if result.oracle else {})},
            "model_selection": result.selection,
            "drift_reference": drift_reference,
            "training": {
                k: v for k, v in as_dict(cfg).items() if k not in ("input_path", "model_dir", "truth_path")
            },
            "sampling": sampling,
            "input_path": cfg.input_path,
            "truth_path": cfg.truth_path,
        },
    )
    metrics = {
        "model_version": manifest["model_version"],
        "holdout": result.metrics,
        "oracle": result.oracle,
        "threshold": result.threshold,
        "calibration": result.calibration,
        "row_counts": manifest["row_counts"],
    }
    if thinned:
        metrics["sampling"] = sampling
    (model_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    report_dir = write_report(model_dir, result, manifest["model_version"])
    return {
        "model_version": manifest["model_version"],
        "model_dir": str(model_dir),
        **{k: manifest["row_counts"][k] for k in ("input_rows", "rejected_rows", "unlabelled_rows")},
        "training_rows": result.row_counts["labelled_rows"],
        "sampling": {k: sampling[k] for k in _SUMMARY_SAMPLING if k in sampling},
        "holdout": {k: result.metrics[k] for k in SUMMARY_METRICS},
        "threshold": result.threshold["value"],
        "strategy": result.selection["strategy"],
        "trees": result.selection["rounds"],
        "calibration": result.calibration["method"],
        "oracle": ({k: result.oracle["metrics"][k] for k in SUMMARY_METRICS} if result.oracle else None),
        "report": str(report_dir),
        "rejects": rejects_path,
        "seconds": round(time.monotonic() - started, 2),
    }


def _run_id(started_at: datetime) -> str:
    return started_at.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _score_one(spark: SparkSession, cfg: ScoreConfig, model: tuple[bytes, dict], run_id: str) -> dict:
    """Score one snapshot: replace its partition in the scored table and the rejects, write results.csv.

    Everything is written to staging first; the live partitions and results.csv are replaced only
    once all of it is complete, by renames. Returns the run's summary.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    model_bytes, manifest = model
    for root in (cfg.output_dir, cfg.effective_rejects_dir):
        for leftover in io.leftover_runs(spark, root):
            log.warning("a run that died mid-write left %s (see README, Guarantees)", leftover)

    validated = _read_validated(
        spark, cfg.input_path, cfg.input_format, labelled=False, skip_labelled=cfg.unlabeled_only
    )
    log.info("read and checked for duplicates in %.1fs", time.monotonic() - started)
    considered = validated.filter(~F.col(_SKIPPED)).drop(_SKIPPED)
    staged = []
    try:
        # One pass over the input sends the valid rows through the model into the table; a second one
        # (no Python) writes the rejected rows, only when there are any. Counts come from the files.
        scored = score_partitions(valid_rows(considered), model_bytes, manifest, cfg.reason_codes).select(
            "*",
            F.lit(manifest["model_version"]).alias(MODEL_VERSION),
            F.lit(started_at).cast("timestamp").alias(SCORED_AT),
        )
        scores = io.stage_partition(scored, cfg.output_dir, cfg.snapshot_date, run_id)
        staged.append(scores)
        log.info("scored at %.1fs", time.monotonic() - started)
        # Rows in and rows scored cost no pass over the data (file footers, or a text scan for CSV):
        # when they match, no row was rejected and the rejects need no second read of the input.
        input_rows = considered.count()
        valid_count = io.staged_rows(spark, scores, scored.schema)
        rejects = rejected_rows(considered)
        if input_rows == valid_count:
            rejects = spark.createDataFrame([], rejects.schema)
        staged.append(io.stage_partition(rejects, cfg.effective_rejects_dir, cfg.snapshot_date, run_id))
        counts = {
            "valid_rows": valid_count,
            "rejected_rows": io.staged_rows(spark, staged[1], rejects.schema),
        }
        counts["input_rows"] = counts["valid_rows"] + counts["rejected_rows"]
        if counts["input_rows"] != input_rows:
            raise OutputError(
                f"{input_rows} rows read but {counts['valid_rows']} scored and {counts['rejected_rows']} "
                "rejected: refusing to swap in an incomplete run"
            )
        if cfg.unlabeled_only:
            counts["skipped_rows"] = validated.filter(F.col(_SKIPPED)).count()
        log.info("rejects written at %.1fs: %s", time.monotonic() - started, json.dumps(counts))
        scores_summary = runlog.pd_summary(spark, scores.staged, scored.schema)
        marker = {
            "run_id": run_id,
            "snapshot_date": cfg.snapshot_date.isoformat(),
            "model_version": manifest["model_version"],
            "input_rows": counts["input_rows"],
            "scored_rows": counts["valid_rows"],
            "rejected_rows": counts["rejected_rows"],
            "started_at": started_at.isoformat(timespec="seconds"),
        }
        for partition in staged:
            io.mark_staged(spark, partition, marker)
        if cfg.results_csv:
            written = spark.read.schema(scored.schema).parquet(scores.staged).select(UUID, PD)
            results_staged = io.stage_results_csv(written, cfg.results_csv, cfg.results_csv_decimals, run_id)
    except BaseException:
        for partition in staged:
            io.discard(spark, partition)
        raise

    partition, rejects_partition = (io.swap_in(spark, s) for s in staged)
    if cfg.results_csv:
        io.swap_in_results_csv(spark, results_staged, cfg.results_csv)
    log.info("run %s complete: %s and %s replaced", run_id, partition, rejects_partition)
    # After the swap: a run that fails leaves no drift report for scores it did not write.
    rows = counts["input_rows"]
    drift_summary = _drift_report(spark, cfg, manifest, considered, partition, scored.schema, rows)
    summary = {
        "snapshot_date": cfg.snapshot_date.isoformat(),
        "model_version": manifest["model_version"],
        "input_rows": counts["input_rows"],
        "scored_rows": counts["valid_rows"],
        "rejected_rows": counts["rejected_rows"],
        "run_id": run_id,
        "table": cfg.output_dir,
        "partition": partition,
        "rejects": rejects_partition,
        "results_csv": cfg.results_csv,
        **scores_summary,
        "drift": drift_summary,
        "seconds": round(time.monotonic() - started, 2),
    }
    if cfg.unlabeled_only:
        summary["skipped_labelled_rows"] = counts["skipped_rows"]
    return summary


def _drift_report(
    spark: SparkSession,
    cfg: ScoreConfig,
    manifest: dict,
    considered: DataFrame,
    scored_path: str,
    scored_schema,
    input_rows: int,
) -> dict | None:
    """PSI of each feature and of pd against the model's training rows, written beside the table.

    The features are those of every row received (a value that failed its check counts as missing),
    a seeded sample of at most DRIFT_SAMPLE_ROWS rows; pd is that of every scored row. Drift never
    fails a run: a report that cannot be made is logged and the scores are written all the same.
    """
    profile = manifest.get("drift_reference")
    if not cfg.drift:
        return None
    if profile is None:
        log.warning("model %s carries no drift reference: no drift report", manifest["model_version"])
        return None
    started = time.monotonic()
    try:
        rows = considered.select(*FEATURE_NAMES)
        if input_rows > DRIFT_SAMPLE_ROWS:
            rows = rows.sample(fraction=DRIFT_SAMPLE_ROWS / input_rows, seed=DRIFT_SEED)
        counts = drift.bin_counts(rows, profile, columns=FEATURE_NAMES)
        scored = spark.read.schema(scored_schema).parquet(scored_path)
        counts |= drift.bin_counts(scored, profile, columns=[PD])
        table = drift.drift_table(profile, counts)
        target = io.partition_path(f"{cfg.output_dir.rstrip('/')}/{DRIFT_DIR}", cfg.snapshot_date)
        # On a handful of rows PSI is sampling noise: the report is written, the limit not applied.
        limit = cfg.psi_limit if input_rows >= cfg.drift_min_rows else None
        with tempfile.TemporaryDirectory(prefix="drift-") as local:
            summary = drift.write_drift_report(
                Path(local), cfg.snapshot_date, table, limit, manifest["model_version"]
            )
            io.publish_folder(spark, local, target)
        summary["report"] = target
    except Exception as exc:  # the scores matter more than their drift report
        log.warning("no drift report for %s: %s", cfg.snapshot_date, exc)
        return {"error": str(exc)}
    log.info(
        "drift report in %.1fs: max PSI %s (%s)",
        time.monotonic() - started,
        summary["max_psi"],
        summary["max_psi_feature"],
    )
    warning = drift.limit_warning(summary, cfg.snapshot_date)
    if warning:
        log.warning(warning)
    return summary


def _logged_run(spark: SparkSession, cfg: ScoreConfig, model: tuple[bytes, dict]) -> dict:
    """`_score_one` with its row in the run log, whether it succeeds or fails."""
    started_at = datetime.now(UTC)
    run_id = _run_id(started_at)
    log.info("score run %s config: %s", run_id, json.dumps(as_dict(cfg), default=str))
    record = partial(runlog.run_record, run_id, cfg.snapshot_date, cfg.input_path, started_at)
    try:
        summary = _score_one(spark, cfg, model, run_id)
    except Exception as exc:
        version = model[1]["model_version"]
        failed = record(datetime.now(UTC), runlog.FAILED, model_version=version, error=str(exc))
        runlog.append_run_quietly(spark, cfg.output_dir, failed)
        raise
    fields = {k: summary[k] for k in ("model_version", "input_rows", "scored_rows", "rejected_rows")}
    fields.update({k: summary[k] for k in runlog.PD_FIELDS})
    fields["max_psi"] = (summary["drift"] or {}).get("max_psi")
    runlog.append_run(spark, cfg.output_dir, record(datetime.now(UTC), runlog.SUCCEEDED, **fields))
    return summary


def _dated(cfg: ScoreConfig, day: date) -> ScoreConfig:
    """The settings of one date of a backfill: its input, model and results file."""
    return replace(
        cfg,
        snapshot_date=day,
        input_path=for_date(cfg.input_path, day),
        results_csv=for_date(cfg.results_csv, day) if cfg.results_csv else None,
        model_dir=cfg.model_for(day),
        date_to=None,
    )


def _checked_model(model_dir: str, cache: dict) -> tuple[bytes, dict]:
    if model_dir not in cache:
        model_bytes, manifest = read_checked_model(model_dir)
        ScoringModel.from_bytes(model_bytes, manifest)  # fails here, on the driver, before any task runs
        cache[model_dir] = (model_bytes, manifest)
    return cache[model_dir]


def _plan(spark: SparkSession, cfg: ScoreConfig) -> dict:
    """What a run would read and write, date by date, without reading or writing anything."""
    dates = []
    for day in cfg.dates:
        dated = _dated(cfg, day)
        model_dir = Path(dated.model_dir)
        dates.append(
            {
                "snapshot_date": day.isoformat(),
                "input": dated.input_path,
                "input_exists": io.path_exists(spark, dated.input_path),
                "model_dir": dated.model_dir,
                "model_version": read_checked_model(model_dir)[1]["model_version"],
                "partition": io.partition_path(dated.output_dir, day),
                "rejects": io.partition_path(dated.effective_rejects_dir, day),
                "results_csv": dated.results_csv,
            }
        )
    return {"dry_run": True, "dates": dates, "run_log": runlog.runs_path(cfg.output_dir), "table": cfg.table}


def run_score(spark: SparkSession, cfg: ScoreConfig) -> dict:
    """Score one snapshot date, or each date of a backfill (`date_to`) as its own atomic run.

    In a backfill, a date whose input is missing or unreadable is reported and the others still run
    (status "partial"); a model or output failure stops the backfill (dates already done stay done).
    """
    if cfg.snapshot_date is None:
        raise InputError("a snapshot date is required")
    if cfg.dry_run:
        return _plan(spark, cfg)
    models: dict = {}
    try:
        for day in cfg.dates:  # every model is checked before the first date is scored
            _checked_model(cfg.model_for(day), models)
        check_executor_libraries(spark)
    except DefaultRiskError as exc:  # no date was scored: each gets its failed row in the run log
        for day in cfg.dates:
            now = datetime.now(UTC)
            dated_input = for_date(cfg.input_path, day)
            failed = runlog.FAILED
            record = runlog.run_record(_run_id(now), day, dated_input, now, now, failed, error=str(exc))
            runlog.append_run_quietly(spark, cfg.output_dir, record)
        raise
    if cfg.date_to is None:
        dated = _dated(cfg, cfg.snapshot_date)
        summary = {**_logged_run(spark, dated, _checked_model(dated.model_dir, models)), "status": OK}
        runs = [summary]
    else:
        runs, problems = [], []
        for day in cfg.dates:
            dated = _dated(cfg, day)
            if not io.path_exists(spark, dated.input_path):
                error = f"input not found: {dated.input_path}"
                log.warning("%s: %s; going on with the other dates", day, error)
                now = datetime.now(UTC)
                record = runlog.run_record(
                    _run_id(now), day, dated.input_path, now, now, runlog.FAILED, error=error
                )
                runlog.append_run_quietly(spark, cfg.output_dir, record)
                problems.append({"snapshot_date": day.isoformat(), "status": MISSING_INPUT, "error": error})
                continue
            try:
                runs.append(_logged_run(spark, dated, _checked_model(dated.model_dir, models)))
            except InputError as exc:
                log.warning("%s: %s; going on with the other dates", day, exc)
                failed = {"snapshot_date": day.isoformat(), "status": runlog.FAILED, "error": str(exc)}
                problems.append(failed)
        summary = {
            "status": PARTIAL if problems else OK,
            "from": cfg.snapshot_date.isoformat(),
            "to": cfg.date_to.isoformat(),
            "succeeded": [r["snapshot_date"] for r in runs],
            "not_scored": problems,
            "runs": runs,
        }
    over = sorted({f for r in runs for f in ((r.get("drift") or {}).get("over_limit") or [])})
    summary["drift_over_limit"] = over
    if cfg.table:
        summary["tables"] = register_tables(spark, cfg.table, cfg.output_dir, cfg.effective_rejects_dir)
    return summary
