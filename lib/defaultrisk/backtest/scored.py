"""The scored table as the backtest reads it: its columns checked, each snapshot's model, each row's grade."""

from __future__ import annotations

from datetime import date

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from defaultrisk.backtest import measures
from defaultrisk.errors import InputError, first_line
from defaultrisk.fs import list_children
from defaultrisk.grades import DEFAULT_SCALE, MasterScale, grade_column
from defaultrisk.schema import CHALLENGERS_DIR, MODEL_VERSION, PD, SHADOW_SCHEMA, SNAPSHOT_DATE, UUID


def read_scored(spark: SparkSession, path: str) -> DataFrame:
    """The scored table with the columns the backtest needs; fails naming missing ones."""
    try:
        scored = spark.read.parquet(path)
    except AnalysisException as exc:
        raise InputError(f"cannot read the scored table {path}: {first_line(exc)}") from exc
    missing = [c for c in (UUID, PD, SNAPSHOT_DATE) if c not in scored.columns]
    if missing:
        raise InputError(f"the scored table {path} is missing column(s): {', '.join(missing)}")
    if MODEL_VERSION not in scored.columns:
        scored = scored.withColumn(MODEL_VERSION, F.lit(None).cast("string"))
    return scored


DATE_FOLDER = f"{SNAPSHOT_DATE}="


def read_shadow(spark: SparkSession, path: str) -> DataFrame | None:
    """The shadow table beside the scored table (`SCORED/_challengers`), or None when there is none.

    Read with its declared schema, so the partition values keep their types (a model_version that
    looks like a number stays text).
    """
    shadow = f"{path.rstrip('/')}/{CHALLENGERS_DIR}"
    # Its date folders, named, with the table's root as the base: handed the root itself, whose name
    # starts with `_`, Spark reads it all the same but logs "All paths were ignored", which reads as if
    # the challengers had been left out.
    dates = [
        p for p in list_children(spark, shadow) if p.rstrip("/").rsplit("/", 1)[-1].startswith(DATE_FOLDER)
    ]
    if not dates:  # no shadow table, or none of its dates yet
        return None
    try:
        return spark.read.schema(SHADOW_SCHEMA).option("basePath", shadow).parquet(*dates)
    except AnalysisException as exc:
        raise InputError(f"cannot read the shadow table {shadow}: {first_line(exc)}") from exc


def with_grades(scored: DataFrame, scales: dict[str | None, MasterScale]) -> DataFrame:
    """The table's own `grade`, or the grade of each row's pd on its model's master scale."""
    if measures.GRADE in scored.columns:
        return scored.withColumn(measures.GRADE, F.col(measures.GRADE).cast("int"))
    distinct = {s for s in scales.values()}
    if len(distinct) <= 1:
        return scored.withColumn(measures.GRADE, grade_column(PD, next(iter(distinct), DEFAULT_SCALE)))
    chain = None
    for version, scale in scales.items():
        match = F.col(MODEL_VERSION).eqNullSafe(F.lit(version))
        chain = (F.when if chain is None else chain.when)(match, grade_column(PD, scale))
    return scored.withColumn(measures.GRADE, chain)


def snapshot_versions(scored: DataFrame) -> dict[date, str | None]:
    """Each snapshot date's model_version (the table holds one per date)."""
    rows = scored.groupBy(SNAPSHOT_DATE).agg(F.max(MODEL_VERSION).alias(MODEL_VERSION)).collect()
    return {r[SNAPSHOT_DATE]: r[MODEL_VERSION] for r in rows}
