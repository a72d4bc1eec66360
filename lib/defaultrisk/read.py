"""Reading customer tables: the line-checked reader of the original CSV format, and Parquet."""

from __future__ import annotations

import csv
from functools import reduce

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk import sql
from defaultrisk.errors import InputError
from defaultrisk.fs import data_files, first_line, read_head
from defaultrisk.schema import RAW_LINE

CSV_SEPARATOR = ";"
_BOM = "\ufeff"
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
# Enough of a file's start to hold its header line (about 1.3 kB for this schema).
_HEAD_BYTES = 1 << 16
# One record of the original format: runs of plain characters and quoted fields, which may hold
# line breaks (a quote never closed runs to the end of its line). Possessive, so a long line does
# not recurse in the regex engine.
_RECORD = r'(?:[^"\r\n]++|"[^"]*+"|"[^\r\n]*+)++'


def resolve_format(path: str, input_format: str, files: list[str] | None = None) -> str:
    """`auto` means Parquet for a `.parquet` path or a folder, the original CSV format otherwise;
    a folder whose files are all `.csv` (`files`, when listed) is CSV."""
    if input_format != "auto":
        return input_format
    if files and all(f.endswith(CSV_SUFFIXES) for f in files):
        return "csv"
    stripped = path.rstrip("/")
    if stripped.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if stripped.endswith(CSV_SUFFIXES):
        return "csv"
    return "parquet" if "." not in stripped.rsplit("/", 1)[-1] else "csv"


def read_raw(spark: SparkSession, path: str, input_format: str = "auto") -> DataFrame:
    """Read a customer table, plus `raw_line`: CSV columns as text, exactly as given; Parquet as typed.

    `raw_line` holds the whole line of a CSV row that does not have the header's number of fields
    (a truncated line, a stray separator); it is null for well-formed rows and for Parquet.
    A UTF-8 byte-order mark, CRLF line ends and blank lines are taken in stride. A file or part
    that cannot be read as the format says (truncated, a stale checksum, another format, another
    encoding) fails here, naming the file, before any row is scored.
    """
    files = data_files(spark, path)
    if files is None:
        raise InputError(f"cannot read input {path}: not found")
    _check_one_format(path, files)
    fmt = resolve_format(path, input_format, files)
    try:
        return _read_csv(spark, path, files) if fmt == "csv" else _read_parquet(spark, path)
    except (AnalysisException, Py4JJavaError) as exc:
        raise InputError(f"cannot read input {path} as {fmt}: {first_line(exc)}") from exc


def _check_one_format(path: str, files: list[str]) -> None:
    csv_files = [f for f in files if f.endswith(CSV_SUFFIXES)]
    parquet_files = [f for f in files if f.endswith(PARQUET_SUFFIXES)]
    if csv_files and parquet_files:
        raise InputError(
            f"input folder {path} mixes CSV and Parquet files ({csv_files[0]}, {parquet_files[0]}): "
            "an input holds one format"
        )


def _read_parquet(spark: SparkSession, path: str) -> DataFrame:
    """Parquet, every part's footer read now: a truncated part or one whose checksum no longer
    matches fails here, naming the file, instead of in a task halfway through the run."""
    df = spark.read.option("mergeSchema", "true").parquet(path)
    return df.select(
        *[F.col(sql.name(c)).alias(c.strip()) for c in df.columns],
        F.lit(None).cast("string").alias(RAW_LINE),
    )


def _header(spark: SparkSession, path: str) -> str | None:
    """The first non-blank line of a file (None for a file without one), refusing other encodings."""
    head = read_head(spark, path, _HEAD_BYTES)
    # UTF-16 shows as a byte-order mark or as NUL bytes between the header's letters; a NUL inside a
    # later value is that value's problem (its row is rejected), not the file's.
    first_line = head.split(b"\n", 1)[0]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in first_line:
        raise InputError(f"input {path} is UTF-16 encoded (or binary): the original format is UTF-8 text")
    text = head.decode("utf-8", errors="replace").removeprefix(_BOM)
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and "\ufffd" in lines[0]:
        raise InputError(f"input {path} does not start with UTF-8 text: the original format is UTF-8")
    return lines[0] if lines else None


def _names(header: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([header], delimiter=CSV_SEPARATOR, quotechar='"'))]


def _read_csv(spark: SparkSession, path: str, files: list[str]) -> DataFrame:
    """Each file read by its own header line, so parts written with their columns in different
    orders line up by name; parts with different columns are refused, naming the file."""
    headers = {f: h for f in files if (h := _header(spark, f)) is not None}
    if not headers:
        raise InputError(f"input {path} is empty: no header line")
    first_file, first_header = next(iter(headers.items()))
    by_header: dict[str, list[str]] = {}
    for file, header in headers.items():
        if sorted(_names(header)) != sorted(_names(first_header)):
            raise InputError(
                f"input part {file} does not have the columns of {first_file}: "
                "every part must hold the same columns"
            )
        by_header.setdefault(header, []).append(file)
    frames = [_read_lines(spark, group, header) for header, group in by_header.items()]
    return reduce(DataFrame.unionByName, frames)


def _lines(spark: SparkSession, files: list[str]) -> DataFrame:
    """The files' records, one per row: their lines, or whole records when a quoted field holds a
    line break (those files are then read whole, one task each, and split by the quotes)."""
    lines = spark.read.text(files).select(F.regexp_replace("value", f"^{_BOM}", "").alias("line"))
    open_quote = F.size(F.split("line", '"', -1)) % 2 == 0  # an odd number of quotes on the line
    if not lines.where(F.col("line").contains('"') & open_quote).take(1):
        return lines.filter(F.trim("line") != "")
    whole = spark.read.text(files, wholetext=True)
    records = whole.select(F.explode(F.regexp_extract_all("value", F.lit(_RECORD), F.lit(0))).alias("line"))
    lines = records.select(F.regexp_replace("line", f"^{_BOM}", "").alias("line"))
    return lines.filter(F.trim("line") != "")


def _read_lines(spark: SparkSession, files: list[str], header: str) -> DataFrame:
    """Parse the original format record by record, so one with the wrong number of fields is caught.

    Spark's CSV reader silently pads a short line with nulls; here every record is kept as text
    beside its parsed fields, and its field count (separators outside quotes, plus one) is checked.
    """
    names = _names(header)
    ddl = ", ".join(f"{sql.name(name)} STRING" for name in names)
    fields = F.size(F.split(F.regexp_replace("line", '"[^"]*"', ""), CSV_SEPARATOR, -1))
    parsed = F.from_csv(
        "line", ddl, {"sep": CSV_SEPARATOR, "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
    )
    return (
        _lines(spark, files)
        .filter(F.col("line") != header)
        .select(
            parsed.alias("fields"),
            F.when(fields != len(names), F.col("line")).alias(RAW_LINE),
        )
        .select(*[F.col("fields").getField(name).alias(name) for name in names], RAW_LINE)
    )
