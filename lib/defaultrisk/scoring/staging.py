"""One date's outputs written whole beside the live table, then swapped in by renames.

A run stages its partitions under `ROOT/_staging/RUN_ID/` and `results.csv` beside its target; only when
everything is written does `swap_in` replace the live partition (the old one goes to `ROOT/_trash/RUN_ID/`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.errors import OutputError
from defaultrisk.fs import (
    delete_path,
    first_line,
    list_children,
    list_files,
    mkdirs,
    path_exists,
    remove_if_empty,
    rename,
    write_text,
)
from defaultrisk.read import CSV_SEPARATOR
from defaultrisk.schema import PD, SNAPSHOT_DATE, UUID

SUCCESS_MARKER = "_SUCCESS"  # in each finished partition: what downstream sensors wait on
STAGING_DIR = "_staging"
TRASH_DIR = "_trash"


def partition_path(root: str, snapshot_date: date) -> str:
    return f"{root.rstrip('/')}/{SNAPSHOT_DATE}={snapshot_date.isoformat()}"


@dataclass(frozen=True)
class StagedPartition:
    """A date's new partition, written whole beside the table and ready to be swapped in."""

    root: str
    run_id: str
    partition: str
    staged: str


def stage_partition(df: DataFrame, root: str, snapshot_date: date, run_id: str) -> StagedPartition:
    """Write one date's new partition under `ROOT/_staging/RUN_ID/`; `mark_staged` completes it.

    The files go straight into the partition's folder (`snapshot_date=...`, the value in the path,
    not in the files, as a partitioned write lays it out) without sorting rows by a constant. An
    empty frame gives an empty partition. Folders starting with `_` are skipped by Parquet readers
    of the table.
    """
    spark = df.sparkSession
    root = root.rstrip("/")
    staged = partition_path(f"{root}/{STAGING_DIR}/{run_id}", snapshot_date)
    result = StagedPartition(root, run_id, partition_path(root, snapshot_date), staged)
    try:
        df.drop(SNAPSHOT_DATE).write.mode("errorifexists").parquet(staged)
    except BaseException as exc:
        discard(spark, result)
        if isinstance(exc, AnalysisException):
            raise OutputError(f"cannot write {staged}: {first_line(exc)}") from exc
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


def swap_in(spark: SparkSession, staged: StagedPartition) -> str:
    """Replace the live partition by the staged one with two directory renames; other dates untouched.

    The old partition moves to `ROOT/_trash/RUN_ID/` and is deleted once the new one is in place.
    """
    trash_root = f"{staged.root}/{TRASH_DIR}/{staged.run_id}"
    if path_exists(spark, staged.partition):
        trashed = f"{trash_root}/{staged.partition.rsplit('/', 1)[-1]}"
        mkdirs(spark, trash_root)
        rename(spark, staged.partition, trashed)
    rename(spark, staged.staged, staged.partition)
    _remove_run_folders(spark, staged)
    return staged.partition


def discard(spark: SparkSession, staged: StagedPartition) -> None:
    """Remove what a failed run staged; the live partition was never touched."""
    _remove_run_folders(spark, staged)


def _remove_run_folders(spark: SparkSession, staged: StagedPartition) -> None:
    for folder in (STAGING_DIR, TRASH_DIR):
        parent = f"{staged.root}/{folder}"
        delete_path(spark, f"{parent}/{staged.run_id}")
        remove_if_empty(spark, parent)


def leftover_runs(spark: SparkSession, root: str) -> list[str]:
    """Staging or trash folders of runs that died mid-write (see README, "Guarantees")."""
    found = []
    for folder in (STAGING_DIR, TRASH_DIR):
        found.extend(list_children(spark, f"{root.rstrip('/')}/{folder}"))
    return sorted(found)


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
