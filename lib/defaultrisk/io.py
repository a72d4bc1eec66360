"""Reading customer tables and writing the scored table, the rejects and `results.csv`.

Paths go through Hadoop's FileSystem API, so the same code writes to a local disk, HDFS or an object store.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.errors import InputError, OutputError
from defaultrisk.schema import INPUT_COLUMNS, PD, RAW_LINE, SNAPSHOT_DATE, UUID

log = logging.getLogger(__name__)

CSV_SEPARATOR = ";"
SUCCESS_MARKER = "_SUCCESS"  # in each finished partition: what downstream sensors wait on
STAGING_DIR = "_staging"
TRASH_DIR = "_trash"
_BOM = "\ufeff"


def resolve_format(path: str, input_format: str) -> str:
    """`auto` means Parquet for a `.parquet` path or a folder, the original CSV format otherwise."""
    if input_format != "auto":
        return input_format
    stripped = path.rstrip("/")
    if stripped.endswith(".parquet") or stripped.endswith(".pq"):
        return "parquet"
    if stripped.endswith(".csv") or stripped.endswith(".csv.gz") or stripped.endswith(".txt"):
        return "csv"
    return "parquet" if "." not in stripped.rsplit("/", 1)[-1] else "csv"


def read_raw(spark: SparkSession, path: str, input_format: str = "auto") -> DataFrame:
    """Read a customer table, plus `raw_line`: CSV columns as text, exactly as given; Parquet as typed.

    `raw_line` holds the whole line of a CSV row that does not have the header's number of fields
    (a truncated line, a stray separator); it is null for well-formed rows and for Parquet.
    A UTF-8 byte-order mark, CRLF line ends and blank lines are taken in stride.
    """
    fmt = resolve_format(path, input_format)
    try:
        if fmt == "csv":
            df = _read_csv(spark, path)
        else:
            df = spark.read.parquet(path)
            df = df.select(
                *[F.col(f"`{c}`").alias(c.strip()) for c in df.columns],
                F.lit(None).cast("string").alias(RAW_LINE),
            )
    except AnalysisException as exc:
        raise InputError(f"cannot read input {path} as {fmt}: {_first_line(exc)}") from exc
    return df


def _read_csv(spark: SparkSession, path: str) -> DataFrame:
    """Parse the original format line by line, so a line with the wrong number of fields is caught.

    Spark's CSV reader silently pads a short line with nulls; here every line is kept as text beside
    its parsed fields, and its field count (separators outside quotes, plus one) is checked.
    """
    lines = spark.read.text(path).select(F.regexp_replace("value", f"^{_BOM}", "").alias("line"))
    lines = lines.filter(F.trim("line") != "")
    first = lines.first()
    if first is None:
        raise InputError(f"input {path} is empty: no header line")
    header = first["line"]
    names = [name.strip() for name in next(csv.reader([header], delimiter=CSV_SEPARATOR, quotechar='"'))]
    ddl = ", ".join(f"`{name.replace('`', '``')}` STRING" for name in names)
    fields = F.size(F.split(F.regexp_replace("line", '"[^"]*"', ""), CSV_SEPARATOR, -1))
    parsed = F.from_csv(
        "line", ddl, {"sep": CSV_SEPARATOR, "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
    )
    return (
        lines.filter(F.col("line") != header)
        .select(
            parsed.alias("fields"),
            F.when(fields != len(names), F.col("line")).alias(RAW_LINE),
        )
        .select(*[F.col("fields").getField(name).alias(name) for name in names], RAW_LINE)
    )


def select_known_columns(df: DataFrame, required: tuple[str, ...]) -> DataFrame:
    """Fail naming every missing required column; drop (and log) columns the schema does not know.

    Returns the input columns of the schema (absent optional ones as nulls) plus `raw_line`.
    """
    present = [c for c in df.columns if c != RAW_LINE]
    missing = [c for c in required if c not in present]
    if missing:
        hint = ""
        if len(present) == 1 and "," in present[0]:
            hint = f" (the header is one column: is the file comma-separated? expected '{CSV_SEPARATOR}')"
        raise InputError(f"input is missing {len(missing)} required column(s): {', '.join(missing)}{hint}")
    extra = [c for c in present if c not in INPUT_COLUMNS]
    if extra:
        log.warning("ignoring %d column(s) the schema does not know: %s", len(extra), ", ".join(extra))
    return df.select(
        *[F.col(c) if c in present else F.lit(None).cast("string").alias(c) for c in INPUT_COLUMNS],
        F.col(RAW_LINE),
    )


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
            raise OutputError(f"cannot write {staged}: {_first_line(exc)}") from exc
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
        _mkdirs(spark, trash_root)
        _rename(spark, staged.partition, trashed)
    _rename(spark, staged.staged, staged.partition)
    _remove_run_folders(spark, staged)
    return staged.partition


def discard(spark: SparkSession, staged: StagedPartition) -> None:
    """Remove what a failed run staged; the live partition was never touched."""
    _remove_run_folders(spark, staged)


def _remove_run_folders(spark: SparkSession, staged: StagedPartition) -> None:
    for folder in (STAGING_DIR, TRASH_DIR):
        parent = f"{staged.root}/{folder}"
        delete_path(spark, f"{parent}/{staged.run_id}")
        fs, jparent = _fs(spark, parent)
        if fs.exists(jparent) and not fs.listStatus(jparent):
            fs.delete(jparent, False)


def leftover_runs(spark: SparkSession, root: str) -> list[str]:
    """Staging or trash folders of runs that died mid-write (see README, "Guarantees")."""
    found = []
    for folder in (STAGING_DIR, TRASH_DIR):
        fs, jpath = _fs(spark, f"{root.rstrip('/')}/{folder}")
        if fs.exists(jpath):
            found.extend(str(s.getPath().toString()) for s in fs.listStatus(jpath))
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
            raise OutputError(f"cannot write {path}: {_first_line(exc)}") from exc
        parts = [p for p in list_files(spark, staging) if p.rsplit("/", 1)[-1].startswith("part-")]
        if len(parts) != 1:
            raise OutputError(f"expected one results file in {staging}, found {len(parts)}")
        _rename(spark, parts[0], staged, overwrite=True)
    finally:
        delete_path(spark, staging)
    return staged


def swap_in_results_csv(spark: SparkSession, staged: str, path: str) -> None:
    _rename(spark, staged, path, overwrite=True)


def write_text(spark: SparkSession, path: str, text: str) -> None:
    fs, jpath = _fs(spark, path)
    stream = fs.create(jpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def _mkdirs(spark: SparkSession, path: str) -> None:
    fs, jpath = _fs(spark, path)
    if not fs.mkdirs(jpath):
        raise OutputError(f"cannot create {path}")


def _rename(spark: SparkSession, source: str, target: str, overwrite: bool = False) -> None:
    """Rename within one file system; with `overwrite`, atomically replace an existing file."""
    jvm = spark.sparkContext._jvm
    fs, dst = _fs(spark, target)
    src, dst = fs.makeQualified(jvm.org.apache.hadoop.fs.Path(source)), fs.makeQualified(dst)
    try:
        if overwrite and dst.toUri().getScheme() == "file":
            os.replace(src.toUri().getPath(), dst.toUri().getPath())  # rename(2): atomic on a local disk
            return
        if overwrite:
            conf = spark.sparkContext._jsc.hadoopConfiguration()
            options = spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
            options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
            jvm.org.apache.hadoop.fs.FileContext.getFileContext(dst.toUri(), conf).rename(src, dst, options)
            return
        if fs.rename(src, dst):
            return
    except Exception as exc:  # an OSError or a Py4J error carrying the file system's own message
        raise OutputError(f"cannot move {source} to {target}: {_first_line(exc)}") from exc
    raise OutputError(f"cannot move {source} to {target}")


def _fs(spark: SparkSession, path: str):
    """The raw Hadoop FileSystem for a path (no `.crc` side files on a local disk) and the path."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    fs = jpath.getFileSystem(conf)
    if fs.getUri().getScheme() == "file":
        fs = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf).getRawFileSystem()
    return fs, jpath


def qualified(spark: SparkSession, path: str) -> str:
    """The absolute URI of a path (`file:/...`, `hdfs://...`), as a catalog table's location needs."""
    fs, jpath = _fs(spark, path)
    return str(fs.makeQualified(jpath).toString())


def publish_folder(spark: SparkSession, local: str, target: str) -> None:
    """Copy a small local folder's files to `target` (any Hadoop path), replacing what was there."""
    fs, jtarget = _fs(spark, target)
    jvm = spark.sparkContext._jvm
    staged = jvm.org.apache.hadoop.fs.Path(f"{target.rstrip('/')}.partial")
    fs.delete(staged, True)
    fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(local), staged)
    fs.delete(jtarget, True)
    if not fs.rename(staged, jtarget):
        raise OutputError(f"cannot move {staged} to {target}")


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, jpath = _fs(spark, path)
    return bool(fs.exists(jpath))


def delete_path(spark: SparkSession, path: str) -> None:
    fs, jpath = _fs(spark, path)
    if fs.exists(jpath):
        fs.delete(jpath, True)


def list_files(spark: SparkSession, path: str) -> list[str]:
    fs, jpath = _fs(spark, path)
    if not fs.exists(jpath):
        return []
    return sorted(str(s.getPath().toString()) for s in fs.listStatus(jpath) if s.isFile())


def _first_line(exc: Exception) -> str:
    java = getattr(exc, "java_exception", None)  # a Py4J error: the JVM exception says what happened
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        text = str(cause.toString()).strip()
    else:
        text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
