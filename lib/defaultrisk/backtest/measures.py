"""The backtest's Spark side: label each scored row with its outcome, then aggregate per group.

Only per-group numbers reach the driver: a row per (snapshot, grade) and a row per snapshot for the
ROC AUC, whose placement sums are computed with window functions over each snapshot's distinct pd.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from defaultrisk.backtest.outcomes import DEFAULT_DATE, KEY, KNOWN
from defaultrisk.schema import PD, SNAPSHOT_DATE, UUID

GRADE = "grade"
DEFAULTED = "defaulted"
WINDOW_END = "window_end"
STATUS = "outcome_status"
# Why a scored row is left out of its snapshot's backtest:
IN_BACKTEST = "in_backtest"
DEFAULTED_BEFORE = "defaulted_before"  # already in default on the snapshot date: not a performing customer
OUTCOME_REJECTED = "outcome_rejected"  # its outcome rows were rejected: outcome unknown
NO_GRADE = "no_grade"  # pd missing or outside [0, 1]


def labelled_rows(scored: DataFrame, outcomes: DataFrame, windows: DataFrame) -> DataFrame:
    """Scored rows of the backtested snapshots with `defaulted` (0/1) and `outcome_status`.

    `scored`: snapshot_date, uuid, pd, grade. `outcomes`: `outcomes.outcome_keys`. `windows`:
    snapshot_date, window_end, one row per backtested snapshot (covered by the outcomes, so a
    customer without a record did not default in the window). A default counts for a snapshot when
    snapshot_date < default_date <= window_end.
    """
    joined = (
        scored.join(F.broadcast(windows), on=SNAPSHOT_DATE, how="inner")
        .withColumn(KEY, F.lower(F.trim(F.col(UUID))))
        .join(outcomes, on=KEY, how="left")
    )
    default_date, snapshot = F.col(DEFAULT_DATE), F.col(SNAPSHOT_DATE)
    status = (
        F.when(F.col(KNOWN) == F.lit(False), OUTCOME_REJECTED)
        .when(default_date <= snapshot, DEFAULTED_BEFORE)
        .when(F.col(GRADE).isNull(), NO_GRADE)
        .otherwise(IN_BACKTEST)
    )
    defaulted = F.when((default_date > snapshot) & (default_date <= F.col(WINDOW_END)), 1).otherwise(0)
    return joined.select(SNAPSHOT_DATE, GRADE, PD, defaulted.alias(DEFAULTED), status.alias(STATUS))


def grade_counts(labelled: DataFrame) -> list[dict]:
    """Per (snapshot, grade): customers, expected defaults, observed defaults, squared errors, exclusions."""
    included = F.col(STATUS) == IN_BACKTEST
    err = (F.col(PD) - F.col(DEFAULTED)) ** 2
    rows = (
        labelled.groupBy(SNAPSHOT_DATE, GRADE)
        .agg(
            F.count(F.when(included, 1)).alias("customers"),
            F.sum(F.when(included, F.col(PD))).alias("expected_defaults"),
            F.sum(F.when(included, F.col(DEFAULTED))).alias("observed_defaults"),
            F.sum(F.when(included, err)).alias("squared_error"),
            *[
                F.count(F.when(F.col(STATUS) == s, 1)).alias(s)
                for s in (DEFAULTED_BEFORE, OUTCOME_REJECTED, NO_GRADE)
            ],
        )
        .collect()
    )
    return [r.asDict() for r in rows]


def discrimination(labelled: DataFrame) -> dict:
    """Per snapshot the DeLong placement sums of pd against `defaulted`: {snapshot: (n1, n0, s, s2, t2)}.

    Rows are first tallied per distinct pd; a window over each snapshot's tally in pd order gives every
    value the defaulters above it and non-defaulters below it (ties count one half), as
    `stats.auc_from_tally` does in numpy. `stats.auc_from_sums` turns the sums into AUC and variance.
    """
    rows = labelled.where(F.col(STATUS) == IN_BACKTEST)
    tally = rows.groupBy(SNAPSHOT_DATE, PD).agg(
        F.sum(DEFAULTED).cast("double").alias("pos"),
        F.sum(1 - F.col(DEFAULTED)).cast("double").alias("neg"),
    )
    whole = Window.partitionBy(SNAPSHOT_DATE)
    upto = whole.orderBy(PD).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    placed = tally.select(
        SNAPSHOT_DATE,
        "pos",
        "neg",
        F.sum("pos").over(whole).alias("n1"),
        F.sum("neg").over(whole).alias("n0"),
        F.sum("pos").over(upto).alias("pos_upto"),
        F.sum("neg").over(upto).alias("neg_upto"),
    )
    v10 = (F.col("neg_upto") - 0.5 * F.col("neg")) / F.col("n0")
    v01 = (F.col("n1") - F.col("pos_upto") + 0.5 * F.col("pos")) / F.col("n1")
    sums = placed.groupBy(SNAPSHOT_DATE).agg(
        F.first("n1").alias("n1"),
        F.first("n0").alias("n0"),
        F.sum(F.col("pos") * v10).alias("s"),
        F.sum(F.col("pos") * v10 * v10).alias("s2"),
        F.sum(F.col("neg") * v01 * v01).alias("t2"),
    )
    return {
        r[SNAPSHOT_DATE]: (r["n1"], r["n0"], r["s"] or 0.0, r["s2"] or 0.0, r["t2"] or 0.0)
        for r in sums.collect()
    }


def grade_frequencies(scored: DataFrame, dates: list) -> dict:
    """Customers per grade on each of `dates`: {date: {grade: count}} (for the concentration index)."""
    rows = scored.where(F.col(SNAPSHOT_DATE).isin(dates)).groupBy(SNAPSHOT_DATE, GRADE).count().collect()
    out: dict = {d: {} for d in dates}
    for r in rows:
        if r[GRADE] is not None:
            out[r[SNAPSHOT_DATE]][r[GRADE]] = r["count"]
    return out
