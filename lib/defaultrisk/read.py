"""Reading customer tables: the line-checked reader of the original CSV format, and Parquet."""

from __future__ import annotations

import csv

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk import sql
from defaultrisk.errors import InputError
from defaultrisk.fs import first_line
from defaultrisk.schema import RAW_LINE

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
                *[F.col(sql.name(c)).alias(c.strip()) for c in df.columns],
                F.lit(None).cast("string").alias(RAW_LINE),
            )
    except AnalysisException as exc:
        raise InputError(f"cannot read input {path} as {fmt}: {first_line(exc)}") from exc
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
    ddl = ", ".join(f"{sql.name(name)} STRING" for name in names)
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
