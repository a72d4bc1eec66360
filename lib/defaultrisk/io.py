"""Reading customer tables and writing the scored table, the rejects and `results.csv`.

Paths go through Hadoop's FileSystem API, so the same code writes to a local disk, HDFS or an object store.
"""

from __future__ import annotations

import csv
import logging
import uuid as uuidlib
from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.errors import InputError, OutputError
from defaultrisk.schema import INPUT_COLUMNS, PD, RAW_LINE, SNAPSHOT_DATE, UUID

log = logging.getLogger(__name__)

CSV_SEPARATOR = ";"
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
    """Read a customer table with every column as text, exactly as given, plus `raw_line`.

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
                *[F.col(f"`{c}`").cast("string").alias(c.strip()) for c in df.columns],
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
        raise InputError(f"input is missing {len(missing)} required column(s): {', '.join(missing)}")
    extra = [c for c in present if c not in INPUT_COLUMNS]
    if extra:
        log.warning("ignoring %d column(s) the schema does not know: %s", len(extra), ", ".join(extra))
    return df.select(
        *[F.col(c) if c in present else F.lit(None).cast("string").alias(c) for c in INPUT_COLUMNS],
        F.col(RAW_LINE),
    )


def write_partition(df: DataFrame, root: str, snapshot_date: date, rows: int) -> str:
    """Replace exactly one date's partition of a Hive-style table; other dates are untouched.

    `rows` is the frame's known row count: an empty result must still replace the old partition,
    and a dynamic overwrite of nothing would leave it in place.
    """
    partition = f"{root.rstrip('/')}/{SNAPSHOT_DATE}={snapshot_date.isoformat()}"
    try:
        if rows == 0:
            delete_path(df.sparkSession, partition)
            return partition
        (
            df.write.mode("overwrite")
            .option("partitionOverwriteMode", "dynamic")
            .partitionBy(SNAPSHOT_DATE)
            .parquet(root)
        )
    except AnalysisException as exc:
        raise OutputError(f"cannot write {partition}: {_first_line(exc)}") from exc
    return partition


def write_results_csv(df: DataFrame, path: str, decimals: int) -> None:
    """Write one `uuid;pd` file sorted by uuid, pd in fixed notation: the same scores give the same bytes."""
    spark = df.sparkSession
    staging = f"{path}.staging-{uuidlib.uuid4().hex}"
    out = (
        df.select(F.col(UUID), F.format_string(f"%.{decimals}f", F.col(PD)).alias(PD))
        .repartition(1)
        .sortWithinPartitions(UUID)
    )
    try:
        out.write.option("header", True).option("sep", CSV_SEPARATOR).csv(staging)
        parts = [p for p in list_files(spark, staging) if p.rsplit("/", 1)[-1].startswith("part-")]
        if len(parts) != 1:
            raise OutputError(f"expected one results file in {staging}, found {len(parts)}")
        fs, jvm_path = _fs(spark, path)
        fs.delete(jvm_path, False)
        if not fs.rename(_fs(spark, parts[0])[1], jvm_path):
            raise OutputError(f"cannot move results file into place at {path}")
    finally:
        delete_path(spark, staging)


def _fs(spark: SparkSession, path: str):
    """The raw Hadoop FileSystem for a path (no `.crc` side files on a local disk) and the path."""
    jvm = spark.sparkContext._jvm
    jpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = jpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if fs.getClass().getName() == "org.apache.hadoop.fs.LocalFileSystem":
        fs = fs.getRawFileSystem()
    return fs, jpath


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
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
