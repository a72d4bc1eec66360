"""One date's outputs written whole beside the live table, then swapped in by renames.

A run stages its partitions under `ROOT/_staging/RUN_ID/` and `results.csv` beside its target; only when
everything is written does `swap_in` replace the live partition (the old one goes to `ROOT/_trash/RUN_ID/`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.errors import OutputError
from defaultrisk.fs import (
    delete_path,
    first_line,
    io_failure,
    list_children,
    list_files,
    mkdirs,
    path_exists,
    remove_if_empty,
    rename,
    rename_to_absent,
    write_text,
)
from defaultrisk.read import CSV_SEPARATOR
from defaultrisk.schema import CHALLENGERS_DIR, PD, SNAPSHOT_DATE, UUID

SUCCESS_MARKER = "_SUCCESS"  # in each finished partition: what downstream sensors wait on
STAGING_DIR = "_staging"
TRASH_DIR = "_trash"
# results.csv's staged files beside it: `results.csv.RUN_ID.tmp` and `results.csv.RUN_ID.staging`.
RUN_ID_PATTERN = r"\d{8}T\d{6}Z-[0-9a-f]{8}"


def partition_path(root: str, snapshot_date: date) -> str:
    return f"{root.rstrip('/')}/{SNAPSHOT_DATE}={snapshot_date.isoformat()}"


def shadow_root(output_dir: str) -> str:
    """The shadow table of challengers' scores: a `_` folder of the scored table, which its readers skip."""
    return f"{output_dir.rstrip('/')}/{CHALLENGERS_DIR}"


@dataclass(frozen=True)
class StagedPartition:
    """A date's new partition, written whole beside the table and ready to be swapped in."""

    root: str
    run_id: str
    partition: str
    staged: str


@dataclass(frozen=True)
class RetiredPartition:
    """A live partition a run takes out with nothing in its place (a date's shadow scores, rerun
    without challengers): moved to trash by the same journaled swap, and back if the swap fails."""

    root: str
    run_id: str
    partition: str


def stage_partition(
    df: DataFrame, root: str, snapshot_date: date, run_id: str, partition_by: Sequence[str] = ()
) -> StagedPartition:
    """Write one date's new partition under `ROOT/_staging/RUN_ID/`; `mark_staged` completes it.

    The files go straight into the partition's folder (`snapshot_date=...`, the value in the path,
    not in the files, as a partitioned write lays it out) without sorting rows by a constant, or
    into one sub-folder per value of `partition_by` (the shadow table's `model_version=...`). An
    empty frame gives an empty partition. Folders starting with `_` are skipped by Parquet readers
    of the table.
    """
    spark = df.sparkSession
    root = root.rstrip("/")
    staged = partition_path(f"{root}/{STAGING_DIR}/{run_id}", snapshot_date)
    result = StagedPartition(root, run_id, partition_path(root, snapshot_date), staged)
    try:
        writer = df.drop(SNAPSHOT_DATE).write.mode("errorifexists")
        (writer.partitionBy(*partition_by) if partition_by else writer).parquet(staged)
    except BaseException as exc:
        discard(spark, result)
        if isinstance(exc, AnalysisException):
            raise OutputError(f"cannot write {staged}: {first_line(exc)}") from exc
        reason = io_failure(exc) if isinstance(exc, Exception) else None
        if reason:  # no space left, not a folder, no permission: the file system's own words
            raise OutputError(f"cannot write {staged}: {reason}") from exc
        raise
    return result


def staged_rows(spark: SparkSession, staged: StagedPartition, schema) -> int:
    """Rows in a staged partition, from the Parquet footers (no data is read)."""
    return spark.read.schema(schema).parquet(staged.staged).count()


def mark_staged(spark: SparkSession, staged: StagedPartition, marker: dict) -> None:
    """Write the partition's completion marker (`_SUCCESS`, JSON about the run), the last file in it.

    It moves in with the data, so a partition with a marker is complete.
    """
    text = json.dumps(marker, sort_keys=True, default=str) + "\n"
    write_text(spark, f"{staged.staged}/{SUCCESS_MARKER}", text)


def trash_path(staged: StagedPartition | RetiredPartition) -> str:
    """Where the swap moves the live partition it replaces."""
    return f"{staged.root}/{TRASH_DIR}/{staged.run_id}/{staged.partition.rsplit('/', 1)[-1]}"


def swap_in(spark: SparkSession, staged: StagedPartition) -> str:
    """Replace one live partition by the staged one with two folder renames; other dates untouched.

    The old partition moves to `ROOT/_trash/RUN_ID/` and is deleted once the new one is in place.
    (A run swaps its tables through `journal.swap`, which does this for each and can be resumed.)
    """
    if path_exists(spark, staged.partition):
        mkdirs(spark, f"{staged.root}/{TRASH_DIR}/{staged.run_id}")
        rename_to_absent(spark, staged.partition, trash_path(staged))
    rename_to_absent(spark, staged.staged, staged.partition)
    remove_run_folders(spark, staged.root, staged.run_id)
    return staged.partition


def discard(spark: SparkSession, staged: StagedPartition) -> None:
    """Remove what a failed run staged; the live partition was never touched."""
    remove_run_folders(spark, staged.root, staged.run_id)


def remove_run_folders(spark: SparkSession, root: str, run_id: str) -> None:
    for folder in (STAGING_DIR, TRASH_DIR):
        parent = f"{root}/{folder}"
        delete_path(spark, f"{parent}/{run_id}")
        remove_if_empty(spark, parent)


def remove_leftovers(
    spark: SparkSession, roots: list[str], snapshot_date: date, results: str | None
) -> list[str]:
    """Delete what killed runs left of this date: their staged and trashed partitions under each root,
    and their staged results files beside `results`. The caller holds the date's lock and its own run
    has finished, so whatever is left of this date belongs to no living run. Returns what was removed."""
    removed = []
    name = partition_path("", snapshot_date).lstrip("/")
    for root in roots:
        for folder in (STAGING_DIR, TRASH_DIR):
            for run_folder in list_children(spark, f"{root.rstrip('/')}/{folder}"):
                leftover = f"{run_folder}/{name}"
                if path_exists(spark, leftover):
                    delete_path(spark, leftover)
                    removed.append(leftover)
                    remove_if_empty(spark, run_folder)
            remove_if_empty(spark, f"{root.rstrip('/')}/{folder}")
    if results:
        folder, _, base = results.rstrip("/").rpartition("/")
        pattern = re.compile(rf"{re.escape(base)}\.{RUN_ID_PATTERN}\.(tmp|staging)")
        for entry in list_children(spark, folder or "."):
            if pattern.fullmatch(entry.rsplit("/", 1)[-1]):
                delete_path(spark, entry)
                removed.append(entry)
    return removed


def stage_results_csv(df: DataFrame, path: str, decimals: int, run_id: str) -> str:
    """Write one `uuid;pd` file beside `path`, sorted by uuid, pd in fixed notation.

    The same scores give the same bytes. Returns the staged file; `swap_in_results_csv` renames it over
    `path`, so readers see the old file or the new one, never a part.
    """
    spark = df.sparkSession
    staging = f"{path}.{run_id}.staging"
    staged = f"{path}.{run_id}.tmp"
    out = (
        df.select(F.col(UUID), F.format_string(f"%.{decimals}f", F.col(PD)).alias(PD))
        .repartition(1)
        .sortWithinPartitions(UUID)
    )
    try:
        try:
            out.write.option("header", True).option("sep", CSV_SEPARATOR).csv(staging)
        except Exception as exc:  # a Py4J error carrying the file system's own message
            raise OutputError(f"cannot write {path}: {first_line(exc)}") from exc
        parts = [p for p in list_files(spark, staging) if p.rsplit("/", 1)[-1].startswith("part-")]
        if len(parts) != 1:
            raise OutputError(f"expected one results file in {staging}, found {len(parts)}")
        rename(spark, parts[0], staged, overwrite=True)
    finally:
        delete_path(spark, staging)
    return staged


def swap_in_results_csv(spark: SparkSession, staged: str, path: str) -> None:
    rename(spark, staged, path, overwrite=True)
