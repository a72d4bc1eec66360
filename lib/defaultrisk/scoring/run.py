"""One snapshot date as one transaction: stage every output, check the counts, then swap them in.

Everything is written to staging first; the live partitions and results.csv are replaced only once
all of it is complete, by renames kept in a journal. The date's lock is held from before the input is
read until the drift report is written. Each run, successful, failed or interrupted, appends its row to
the run log.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial, reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk import __version__
from defaultrisk.errors import OutputError, stopped_by
from defaultrisk.fs import kind, path_exists
from defaultrisk.grades import grade_column, scale_from_manifest
from defaultrisk.model import CheckedModel
from defaultrisk.read import read_raw
from defaultrisk.schema import (
    CHAMPION_VERSION,
    GRADE,
    IS_HIGH_RISK,
    MODEL_VERSION,
    PD,
    REASON,
    REASON_CODES,
    SCORED_AT,
    UUID,
)
from defaultrisk.scoring import journal, runlog, staging
from defaultrisk.scoring.config import ScoreConfig
from defaultrisk.scoring.core import challenger_pd_column
from defaultrisk.scoring.drift_report import drift_report
from defaultrisk.scoring.lock import date_lock
from defaultrisk.scoring.udf import check_and_score
from defaultrisk.settings import as_dict
from defaultrisk.validate import SKIPPED, duplicate_keys, known_columns, rejected_rows

log = logging.getLogger(__name__)


def new_run_id(started_at: datetime) -> str:
    return started_at.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _stage_done(run: dict, stage: str) -> float:
    """Record the end of one of the run's stages (seconds from its start, for the summary's `stages`)."""
    seconds = time.monotonic() - run["clock"]
    run["stages"][stage] = round(seconds, 2)
    return seconds


@dataclass(frozen=True)
class Staged:
    """A run's outputs, written whole and not yet live; `shadow` only when challengers scored."""

    scores: staging.StagedPartition
    rejects: staging.StagedPartition
    shadow: staging.StagedPartition | None
    counts: dict
    results_csv: str | None


def _scored_rows(outcome: DataFrame) -> DataFrame:
    """The scoring pass's rows that were scored (neither rejected nor skipped)."""
    return outcome.filter(F.col(REASON).isNull() & ~F.col(SKIPPED))


def _stage_scores(cfg: ScoreConfig, model: CheckedModel, outcome, run: dict):
    """The scored rows into a staged partition; its rows are counted from the written files."""
    scale = scale_from_manifest(model.manifest)
    scored = _scored_rows(outcome).select(
        UUID,
        PD,
        IS_HIGH_RISK,
        REASON_CODES,
        grade_column(F.col(PD), scale).alias(GRADE),
        F.lit(model.version).alias(MODEL_VERSION),
        F.lit(run["started_at"]).cast("timestamp").alias(SCORED_AT),
    )
    scores = staging.stage_partition(scored, cfg.output_dir, cfg.snapshot_date, run["run_id"])
    return scores, scored.schema


def _stage_shadow(
    cfg: ScoreConfig,
    model: CheckedModel,
    challengers: Mapping[str, CheckedModel],
    outcome,
    run: dict,
    rows: int,
) -> staging.StagedPartition:
    """Each challenger's pd and grade (on its own master scale) for the run's scored rows, one
    `model_version=` folder each, in one staged partition of the shadow table.

    Written from the same persisted scoring pass as the scores; each folder's rows are counted from
    its files' footers and must be the `rows` scored, or nothing is swapped in.
    """
    spark = outcome.sparkSession
    frames = [
        _scored_rows(outcome).select(
            UUID,
            F.col(challenger_pd_column(number)).alias(PD),
            grade_column(F.col(challenger_pd_column(number)), scale_from_manifest(c.manifest)).alias(GRADE),
            F.lit(model.version).alias(CHAMPION_VERSION),
            F.lit(run["started_at"]).cast("timestamp").alias(SCORED_AT),
            F.lit(c.version).alias(MODEL_VERSION),
        )
        for number, c in enumerate(challengers.values(), start=1)
    ]
    shadow = reduce(DataFrame.unionByName, frames)
    root = staging.shadow_root(cfg.output_dir)
    staged = staging.stage_partition(shadow, root, cfg.snapshot_date, run["run_id"], (MODEL_VERSION,))
    written = spark.read.schema(shadow.schema).parquet(staged.staged).groupBy(MODEL_VERSION).count()
    found = {r[MODEL_VERSION]: r["count"] for r in written.collect()}
    wrong = {
        c.version: found.get(c.version, 0) for c in challengers.values() if found.get(c.version, 0) != rows
    }
    if wrong:
        staging.discard(spark, staged)
        raise OutputError(
            f"{rows} rows scored but the shadow table holds {wrong}: refusing to swap in an incomplete run"
        )
    return staged


def _stage_rejects(spark: SparkSession, cfg: ScoreConfig, outcome, run_id: str):
    """The rejected rows' partition (their values as read, made text, and the reason), and its rows."""
    rejects = rejected_rows(outcome.filter(~F.col(SKIPPED)))
    staged = staging.stage_partition(rejects, cfg.effective_rejects_dir, cfg.snapshot_date, run_id)
    return staged, staging.staged_rows(spark, staged, rejects.schema)


def _stage(
    spark: SparkSession,
    cfg: ScoreConfig,
    model: CheckedModel,
    challengers: Mapping[str, CheckedModel],
    checked: Checked,
    run: dict,
) -> Staged:
    """Stage scores, the challengers' shadow scores, rejects, markers and results.csv; on any failure
    remove what was staged.

    The scoring pass's rows are kept on local disk while the partitions are written from them,
    so the input is checked and scored once; the rows read are counted apart, from the input.
    """
    outcome = checked.outcome.persist(StorageLevel.DISK_ONLY)
    parts: list[staging.StagedPartition] = []
    shadow = None
    try:
        scores, schema = _stage_scores(cfg, model, outcome, run)
        parts.append(scores)
        log.info("scored at %.1fs", _stage_done(run, "scores_written"))
        valid_count = staging.staged_rows(spark, scores, schema)
        if challengers:
            shadow = _stage_shadow(cfg, model, challengers, outcome, run, valid_count)
            parts.append(shadow)
            log.info("challengers written at %.1fs", _stage_done(run, "challengers_written"))
        rejects, rejected_count = _stage_rejects(spark, cfg, outcome, run["run_id"])
        parts.append(rejects)
        counts = {"input_rows": valid_count + rejected_count, "valid_rows": valid_count}
        counts["rejected_rows"] = rejected_count
        skipped = outcome.filter(F.col(SKIPPED)).count() if cfg.unlabeled_only else 0
        input_rows = checked.known.count() - skipped
        if counts["input_rows"] != input_rows:
            raise OutputError(
                f"{input_rows} rows read but {valid_count} scored and {rejected_count} "
                "rejected: refusing to swap in an incomplete run"
            )
        if cfg.unlabeled_only:
            counts["skipped_rows"] = skipped
        log.info("rejects written at %.1fs: %s", _stage_done(run, "rejects_and_counts"), json.dumps(counts))
        counts.update(runlog.pd_summary(spark, scores.staged, schema))
        marker = _marker(cfg, model, run, counts)
        for partition in (scores, rejects):
            staging.mark_staged(spark, partition, marker)
        if shadow is not None:  # which challengers the partition holds, beside whom they scored
            versions = [{"model_dir": d, "model_version": c.version} for d, c in challengers.items()]
            shadow_marker = {**marker, "champion_version": model.version, "challengers": versions}
            staging.mark_staged(spark, shadow, shadow_marker)
        results = None
        if cfg.results_csv:
            written = spark.read.schema(schema).parquet(scores.staged).select(UUID, PD)
            results = staging.stage_results_csv(
                written, cfg.results_csv, cfg.results_csv_decimals, run["run_id"]
            )
    except BaseException:
        for partition in parts:
            staging.discard(spark, partition)
        raise
    finally:
        outcome.unpersist()
    return Staged(scores, rejects, shadow, counts, results)


def _marker(cfg: ScoreConfig, model: CheckedModel, run: dict, counts: dict) -> dict:
    """A staged partition's completion marker (`_SUCCESS`): it moves in with the data."""
    return {
        "run_id": run["run_id"],
        "snapshot_date": cfg.snapshot_date.isoformat(),
        "model_version": model.version,
        "code_version": __version__,
        "input_rows": counts["input_rows"],
        "scored_rows": counts["valid_rows"],
        "rejected_rows": counts["rejected_rows"],
        "started_at": run["started_at"].isoformat(timespec="seconds"),
    }


def _swap_in(spark: SparkSession, cfg: ScoreConfig, staged: Staged) -> tuple[str, str]:
    """The journaled swap of the date's outputs. The date's shadow partition holds exactly this run's
    challengers afterwards: replaced when it has some, retired (to trash, in the same journal) when
    it has none, so no older run's shadow scores sit beside the new scores."""
    results = None
    if staged.results_csv:
        # Checked again under the lock, after hours of scoring: a folder there would fail the last rename.
        if kind(spark, cfg.results_csv) == "folder":
            raise OutputError(f"cannot replace {cfg.results_csv}: it is a folder")
        results = (staged.results_csv, cfg.results_csv)
    parts = [staged.scores, staged.rejects]
    retired = []
    if staged.shadow is not None:
        parts.append(staged.shadow)
    else:
        old = staging.partition_path(staging.shadow_root(cfg.output_dir), cfg.snapshot_date)
        if path_exists(spark, old):
            retired.append(
                staging.RetiredPartition(staging.shadow_root(cfg.output_dir), staged.scores.run_id, old)
            )
    journal.swap(spark, cfg.output_dir, cfg.snapshot_date, parts, results, retired)
    return staged.scores.partition, staged.rejects.partition


@dataclass(frozen=True)
class Checked:
    """The input's known columns as read, and the scoring pass over them (`check_and_score`)."""

    known: DataFrame
    outcome: DataFrame


def _check_and_score(
    spark: SparkSession, cfg: ScoreConfig, model: CheckedModel, challengers: Mapping, run: dict
) -> Checked:
    raw = read_raw(spark, cfg.input_path, cfg.input_format)
    known = known_columns(raw, labelled=False)
    duplicates = duplicate_keys(known)
    log.info("read and checked for duplicates in %.1fs", _stage_done(run, "read_and_duplicate_check"))
    outcome = check_and_score(
        known,
        model.payload,
        dict(duplicates),
        cfg.reason_codes,
        cfg.reason_rows,
        cfg.unlabeled_only,
        challengers=[c.payload for c in challengers.values()],
    )
    return Checked(known, outcome)


def _write_date(spark: SparkSession, cfg: ScoreConfig, model: CheckedModel, challengers: Mapping, run: dict):
    """Under the date's lock: finish interrupted swaps, stage, swap, then remove killed runs' leftovers."""
    journal.recover(spark, cfg.output_dir, cfg.snapshot_date, run["run_id"])
    checked = _check_and_score(spark, cfg, model, challengers, run)
    staged = _stage(spark, cfg, model, challengers, checked, run)
    partitions = _swap_in(spark, cfg, staged)
    _stage_done(run, "swap")
    log.info("run %s complete: %s and %s replaced", run["run_id"], *partitions)
    roots = [cfg.output_dir, cfg.effective_rejects_dir, staging.shadow_root(cfg.output_dir)]
    for leftover in staging.remove_leftovers(spark, roots, cfg.snapshot_date, cfg.results_csv):
        log.warning("removed %s, left by a run that was killed", leftover)
    return staged, partitions, checked.known


def score_date(
    spark: SparkSession,
    cfg: ScoreConfig,
    model: CheckedModel,
    run_id: str,
    challengers: Mapping[str, CheckedModel] | None = None,
) -> dict:
    """Score one snapshot: replace its partition in the scored table and the rejects, write results.csv,
    and replace (or retire) its partition of the shadow table with the `challengers`' scores (by the
    directory or URI they were given as).

    Returns the run's summary.
    """
    challengers = dict(challengers or {})
    run = {"run_id": run_id, "started_at": datetime.now(UTC), "clock": time.monotonic(), "stages": {}}
    with date_lock(spark, cfg.output_dir, cfg.snapshot_date, run_id):
        staged, (partition, rejects_partition), known = _write_date(spark, cfg, model, challengers, run)
        counts = staged.counts
        # After the swap: a run that fails leaves no drift report for scores it did not write.
        drift = drift_report(cfg, model.manifest, known, partition, counts["input_rows"])
        _stage_done(run, "drift_report")
    summary = {
        "snapshot_date": cfg.snapshot_date.isoformat(),
        "model_version": model.version,
        "input_rows": counts["input_rows"],
        "scored_rows": counts["valid_rows"],
        "rejected_rows": counts["rejected_rows"],
        "run_id": run_id,
        "table": cfg.output_dir,
        "partition": partition,
        "rejects": rejects_partition,
        "results_csv": cfg.results_csv,
        **{k: counts[k] for k in runlog.PD_FIELDS},
        "drift": drift,
        "seconds": round(time.monotonic() - run["clock"], 2),
        "stages": run["stages"],
    }
    if cfg.unlabeled_only:
        summary["skipped_labelled_rows"] = counts["skipped_rows"]
    if challengers:  # each holds exactly the scored rows (`_stage_shadow` checked the files)
        summary["challengers"] = [
            {"model_version": c.version, "model_dir": d, "scored_rows": counts["valid_rows"]}
            for d, c in challengers.items()
        ]
    return summary


def _run_error(exc: BaseException) -> str:
    """The run log's error: a run stopped from outside says so, whatever error the stop surfaced as."""
    stop = stopped_by(exc)
    if stop:
        return stop
    return str(exc) if isinstance(exc, Exception) else f"stopped ({type(exc).__name__})"


def logged_run(
    spark: SparkSession,
    cfg: ScoreConfig,
    model: CheckedModel,
    challengers: Mapping[str, CheckedModel] | None = None,
) -> dict:
    """`score_date` with its row in the run log, whether it succeeds or fails."""
    started_at = datetime.now(UTC)
    run_id = new_run_id(started_at)
    log.info("score run %s config: %s", run_id, json.dumps(as_dict(cfg), default=str))
    start = runlog.RunStart(run_id, cfg.snapshot_date, cfg.input_path, started_at)
    record = partial(runlog.run_record, start)
    runlog.locate(spark, cfg.output_dir)
    try:
        summary = score_date(spark, cfg, model, run_id, challengers)
    except BaseException as exc:  # Ctrl-C and SIGTERM get their row too
        error = _run_error(exc)
        failed = record(datetime.now(UTC), runlog.FAILED, model_version=model.version, error=error)
        runlog.append_run_quietly(spark, cfg.output_dir, failed)
        raise
    fields = {k: summary[k] for k in ("model_version", "input_rows", "scored_rows", "rejected_rows")}
    fields.update({k: summary[k] for k in runlog.PD_FIELDS})
    fields["max_psi"] = (summary["drift"] or {}).get("max_psi")
    runlog.append_run(spark, cfg.output_dir, record(datetime.now(UTC), runlog.SUCCEEDED, **fields))
    return summary


def log_failed_date(spark: SparkSession, output_dir: str, day, input_path: str, error: str) -> None:
    """The run-log row of a date that could not even start (its input or model missing)."""
    now = datetime.now(UTC)
    start = runlog.RunStart(new_run_id(now), day, input_path, now)
    record = runlog.run_record(start, now, runlog.FAILED, error=error)
    runlog.append_run_quietly(spark, output_dir, record)
