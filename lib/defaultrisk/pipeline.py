"""Composition only: read -> validate -> features -> train or score -> write."""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk import io
from defaultrisk.config import ScoreConfig, TrainConfig, as_dict
from defaultrisk.errors import InputError
from defaultrisk.evaluation import read_truth
from defaultrisk.features import model_input
from defaultrisk.model import ScoringModel, read_checked_model, save_model
from defaultrisk.report import write_report
from defaultrisk.schema import (
    DEFAULT,
    MODEL_VERSION,
    PD,
    REASON,
    REQUIRED_COLUMNS,
    SCORED_AT,
    UUID,
)
from defaultrisk.scoring import check_executor_libraries, score_partitions
from defaultrisk.train import fit
from defaultrisk.validate import MISSING_TOKENS, RAW, rejected_rows, valid_rows, validate

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
TRAIN_REJECTS_DIR = "rejects"
SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "mean_pd", "default_rate")
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
    label_text = F.col(RAW)[DEFAULT]
    has_label = ~(label_text.isNull() | F.upper(F.trim(label_text)).isin(*MISSING_TOKENS))
    skipped = has_label if skip_labelled else F.lit(False)
    validated = validate(raw, labelled=labelled).withColumn(_SKIPPED, skipped)
    # Training reads the validated rows three times (counts, rows, rejects) and keeps them; scoring
    # reads its input twice, each pass a column-pruned scan cheaper than caching whole rows.
    return validated.persist(StorageLevel.MEMORY_AND_DISK) if labelled else validated


def run_train(spark: SparkSession, cfg: TrainConfig) -> dict:
    """Train a model on the labelled rows of `cfg.input_path` and write the model directory."""
    started = time.monotonic()
    log.info("train config: %s", json.dumps(as_dict(cfg), default=str))
    truth = read_truth(cfg.truth_path) if cfg.truth_path else None  # fails before any Spark work
    validated = _read_validated(spark, cfg.input_path, cfg.input_format, labelled=True, skip_labelled=False)
    try:
        counts = _count_outcomes(validated)
        valid = valid_rows(validated.drop(_SKIPPED))
        labelled = valid.filter(F.col(DEFAULT).isNotNull())
        pdf = (
            model_input(labelled, keep=(DEFAULT,))
            .toPandas()
            .sort_values(UUID, kind="stable")
            .reset_index(drop=True)
        )
        counts["unlabelled_rows"] = counts["valid_rows"] - len(pdf)
        result = fit(pdf, cfg, truth)
        model_dir = Path(cfg.model_dir)
        rejects_path = None
        if counts["rejected_rows"]:
            rejects_path = str(model_dir / TRAIN_REJECTS_DIR)
            rejected_rows(validated.drop(_SKIPPED)).write.mode("overwrite").parquet(rejects_path)
    finally:
        validated.unpersist()

    manifest = save_model(
        model_dir,
        result.booster,
        {
            "threshold": result.threshold,
            "calibration": result.calibration,
            "row_counts": {**counts, **result.row_counts},
            "metrics": {"holdout": result.metrics, **({"oracle": result.oracle} if result.oracle else {})},
            "model_selection": result.selection,
            "training": {
                k: v for k, v in as_dict(cfg).items() if k not in ("input_path", "model_dir", "truth_path")
            },
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
    (model_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    report_dir = write_report(model_dir, result, manifest["model_version"])
    return {
        "model_version": manifest["model_version"],
        "model_dir": str(model_dir),
        **{k: manifest["row_counts"][k] for k in ("input_rows", "rejected_rows", "unlabelled_rows")},
        "training_rows": result.row_counts["labelled_rows"],
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


def run_score(spark: SparkSession, cfg: ScoreConfig) -> dict:
    """Score one snapshot: replace its partition in the scored table and the rejects, write results.csv.

    Everything is written to staging first; the live partitions and results.csv are replaced only
    once all of it is complete, by renames.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    run_id = _run_id(started_at)
    log.info("score run %s config: %s", run_id, json.dumps(as_dict(cfg), default=str))
    model_bytes, manifest = read_checked_model(cfg.model_dir)
    ScoringModel.from_bytes(model_bytes, manifest)  # fails here, on the driver, before any task runs
    if cfg.snapshot_date is None:
        raise InputError("a snapshot date is required")
    check_executor_libraries(spark)
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
        # Two passes over the input, each reading it once: the valid rows through the model into the
        # table, the rejected rows (no Python) into the rejects. Counts come from the written files.
        scored = score_partitions(valid_rows(considered), model_bytes, manifest, cfg.reason_codes).select(
            "*",
            F.lit(manifest["model_version"]).alias(MODEL_VERSION),
            F.lit(started_at).cast("timestamp").alias(SCORED_AT),
        )
        scores = io.stage_partition(scored, cfg.output_dir, cfg.snapshot_date, run_id)
        staged.append(scores)
        log.info("scored at %.1fs", time.monotonic() - started)
        rejects = rejected_rows(considered)
        staged.append(io.stage_partition(rejects, cfg.effective_rejects_dir, cfg.snapshot_date, run_id))
        counts = {
            "valid_rows": io.staged_rows(spark, scores, scored.schema),
            "rejected_rows": io.staged_rows(spark, staged[1], rejects.schema),
        }
        counts["input_rows"] = counts["valid_rows"] + counts["rejected_rows"]
        if cfg.unlabeled_only:
            counts["skipped_rows"] = validated.filter(F.col(_SKIPPED)).count()
        log.info("rejects written at %.1fs: %s", time.monotonic() - started, json.dumps(counts))
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
        "seconds": round(time.monotonic() - started, 2),
    }
    if cfg.unlabeled_only:
        summary["skipped_labelled_rows"] = counts["skipped_rows"]
    return summary
