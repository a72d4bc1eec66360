"""The run log: one row per scoring run, appended to `<table root>/_runs/` (Parquet).

Each row is its own Parquet file, written beside the folder and renamed into it through the file system,
so runs for different dates never share a writer (Spark's committer would share `_runs/_temporary`).
It answers "what happened on the 14th?": which run wrote a date, with which model and code, from which
input, how many rows went where, what the scores looked like, and how the run ended. Parquet readers of
the scored table skip the folder (its name starts with `_`); read it on its own, or through the
`NAME_runs` table that `--table NAME` registers.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from defaultrisk import __version__
from defaultrisk.fs import local_path, put_file, rename
from defaultrisk.schema import IS_HIGH_RISK, PD

log = logging.getLogger(__name__)

RUNS_DIR = "_runs"
PD_FIELDS = ("pd_mean", "pd_p50", "pd_p99", "high_risk_share")
SUCCEEDED = "succeeded"
FAILED = "failed"
# percentile_approx's accuracy: the p50 and p99 are within 1/10,000 of the rank of the exact ones.
PERCENTILE_ACCURACY = 10_000

RUN_LOG_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("snapshot_date", T.DateType(), True),
        T.StructField("model_version", T.StringType(), True),
        T.StructField("code_version", T.StringType(), False),
        T.StructField("input_path", T.StringType(), True),
        T.StructField("input_rows", T.LongType(), True),
        T.StructField("scored_rows", T.LongType(), True),
        T.StructField("rejected_rows", T.LongType(), True),
        T.StructField("pd_mean", T.DoubleType(), True),
        T.StructField("pd_p50", T.DoubleType(), True),
        T.StructField("pd_p99", T.DoubleType(), True),
        T.StructField("high_risk_share", T.DoubleType(), True),
        T.StructField("max_psi", T.DoubleType(), True),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("error", T.StringType(), True),
    ]
)


# The same columns for pyarrow; every column nullable, as Spark reads any Parquet file.
_ARROW_TYPES = {
    T.StringType(): pa.string(),
    T.DateType(): pa.date32(),
    T.LongType(): pa.int64(),
    T.DoubleType(): pa.float64(),
    T.TimestampType(): pa.timestamp("us", tz="UTC"),
}
RUN_LOG_ARROW = pa.schema([pa.field(f.name, _ARROW_TYPES[f.dataType]) for f in RUN_LOG_SCHEMA.fields])
# Where each run log lives on the local disk (None: elsewhere), learnt while the JVM is up, so that a
# run whose JVM died can still write its failed row to a local table.
_LOCAL_FOLDERS: dict[str, str | None] = {}


def runs_path(table_root: str) -> str:
    return f"{table_root.rstrip('/')}/{RUNS_DIR}"


def pd_summary(spark: SparkSession, scored_path: str, schema: T.StructType) -> dict:
    """Mean, median, 99th percentile of pd and the share flagged high-risk, from a written partition."""
    scores = spark.read.schema(schema).parquet(scored_path)
    row = scores.agg(
        F.mean(PD).alias("pd_mean"),
        F.percentile_approx(PD, [0.5, 0.99], PERCENTILE_ACCURACY).alias("quantiles"),
        F.mean(F.col(IS_HIGH_RISK).cast("double")).alias("high_risk_share"),
    ).first()
    quantiles = row["quantiles"] or [None, None]
    return {
        "pd_mean": row["pd_mean"],
        "pd_p50": quantiles[0],
        "pd_p99": quantiles[1],
        "high_risk_share": row["high_risk_share"],
    }


@dataclass(frozen=True)
class RunStart:
    """What a run log row knows from the start: which run, which date, which input, when."""

    run_id: str
    snapshot_date: date | None
    input_path: str | None
    started_at: datetime


def run_record(start: RunStart, finished_at: datetime, status: str, **fields) -> dict:
    """One run log row; `fields` fills the counts, pd summary, model version and error it has."""
    record = {field.name: None for field in RUN_LOG_SCHEMA.fields}
    unknown = set(fields) - set(record)
    if unknown:
        raise ValueError(f"not run log fields: {', '.join(sorted(unknown))}")
    record.update(
        run_id=start.run_id,
        snapshot_date=start.snapshot_date,
        code_version=__version__,
        input_path=start.input_path,
        started_at=start.started_at,
        finished_at=finished_at,
        status=status,
        **fields,
    )
    return record


def locate(spark: SparkSession, table_root: str) -> None:
    """Learn where the table's run log lives, once, while the JVM is there to ask."""
    folder = runs_path(table_root)
    if folder not in _LOCAL_FOLDERS:
        _LOCAL_FOLDERS[folder] = local_path(spark, folder)


def append_run(spark: SparkSession, table_root: str, record: dict) -> None:
    """Add one row to the run log: its own small Parquet file, renamed in whole; rows are never rewritten.

    The file is written under a name starting with `_` (which readers skip), then renamed to
    `part-RUN_ID.parquet`.
    """
    folder = runs_path(table_root)
    locate(spark, table_root)
    row = pa.Table.from_pylist([record], schema=RUN_LOG_ARROW)
    name = f"part-{record['run_id']}.parquet"
    local = _LOCAL_FOLDERS[folder]
    if local is not None:
        os.makedirs(local, exist_ok=True)
        partial = os.path.join(local, f"_{name}.tmp")
        pq.write_table(row, partial)
        os.replace(partial, os.path.join(local, name))
        return
    with tempfile.TemporaryDirectory(prefix="runlog-") as scratch:
        pq.write_table(row, os.path.join(scratch, name))
        put_file(spark, os.path.join(scratch, name), f"{folder}/_{name}.tmp")
    rename(spark, f"{folder}/_{name}.tmp", f"{folder}/{name}")


def append_run_quietly(spark: SparkSession, table_root: str, record: dict) -> None:
    """`append_run` for a run that already failed: a log that cannot be written must not hide why."""
    try:
        append_run(spark, table_root, record)
    except Exception as exc:  # the run's own error is what the operator needs to see
        log.warning("cannot append to the run log at %s: %s", runs_path(table_root), exc)
