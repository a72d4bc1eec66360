"""The backtest's Spark side: label each scored row with its outcome, then aggregate per group.

Only per-group numbers reach the driver: a row per (snapshot, grade) and a row per snapshot for the
ROC AUC, whose placement sums are computed with window functions over each snapshot's distinct pd;
for a champion and a challenger, a row per pair and snapshot (and pooled) of paired sums, and the
pd tallied on a bounded grid for the plots.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from defaultrisk.backtest.outcomes import DEFAULT_DATE, KEY, KNOWN
from defaultrisk.schema import CHAMPION_VERSION, MODEL_VERSION, PD, SNAPSHOT_DATE, UUID

GRADE = "grade"
DEFAULTED = "defaulted"
WINDOW_END = "window_end"
STATUS = "outcome_status"
# Why a scored row is left out of its snapshot's backtest:
IN_BACKTEST = "in_backtest"
DEFAULTED_BEFORE = "defaulted_before"  # already in default on the snapshot date: not a performing customer
OUTCOME_REJECTED = "outcome_rejected"  # its outcome rows were rejected: outcome unknown
NO_GRADE = "no_grade"  # pd missing or outside [0, 1]


def labelled_rows(
    scored: DataFrame, outcomes: DataFrame, windows: DataFrame, keep: tuple[str, ...] = ()
) -> DataFrame:
    """Scored rows of the backtested snapshots with `defaulted` (0/1) and `outcome_status`.

    `scored`: snapshot_date, uuid, pd, grade. `outcomes`: `outcomes.outcome_keys`. `windows`:
    snapshot_date, window_end, one row per backtested snapshot (covered by the outcomes, so a
    customer without a record did not default in the window). A default counts for a snapshot when
    snapshot_date < default_date <= window_end. `keep`: further columns of `scored` to carry along.
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
    return joined.select(SNAPSHOT_DATE, *keep, GRADE, PD, defaulted.alias(DEFAULTED), status.alias(STATUS))


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

    Rows are first tallied per distinct pd (`_placed_tally`); `stats.auc_from_sums` turns the sums
    into AUC and variance.
    """
    rows = labelled.where(F.col(STATUS) == IN_BACKTEST)
    placed = _placed_tally(rows, [SNAPSHOT_DATE], PD)
    sums = placed.groupBy(SNAPSHOT_DATE).agg(
        F.first("n1").alias("n1"),
        F.first("n0").alias("n0"),
        F.sum(F.col("pos") * F.col("v10")).alias("s"),
        F.sum(F.col("pos") * F.col("v10") ** 2).alias("s2"),
        F.sum(F.col("neg") * F.col("v01") ** 2).alias("t2"),
    )
    return {
        r[SNAPSHOT_DATE]: (r["n1"], r["n0"], r["s"] or 0.0, r["s2"] or 0.0, r["t2"] or 0.0)
        for r in sums.collect()
    }


def _placed_tally(rows: DataFrame, keys: list[str], score: str) -> DataFrame:
    """Per group of `keys` and distinct `score`: defaulters `pos`, non-defaulters `neg`, the group's
    `n1` and `n0`, and DeLong's placements `v10` and `v01` of that score (`stats.tally_placements`).

    A window over each group's tally in score order gives every value the defaulters above it and
    non-defaulters below it (ties count one half), as `stats.tally_placements` does in numpy.
    """
    tally = rows.groupBy(*keys, score).agg(
        F.sum(DEFAULTED).cast("double").alias("pos"),
        F.sum(1 - F.col(DEFAULTED)).cast("double").alias("neg"),
    )
    whole = Window.partitionBy(*keys)
    upto = whole.orderBy(score).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    n1, n0 = F.sum("pos").over(whole), F.sum("neg").over(whole)
    v10, v01 = _placements(
        F.sum("pos").over(upto), F.sum("neg").over(upto), F.col("pos"), F.col("neg"), n1, n0
    )
    return tally.select(
        *keys, score, "pos", "neg", n1.alias("n1"), n0.alias("n0"), v10.alias("v10"), v01.alias("v01")
    )


def _placed_rows(rows: DataFrame, keys: list[str], score: str, prefix: str) -> DataFrame:
    """Each row with its placements under `score` within its group of `keys`: `PREFIX10`, `PREFIX01`.

    The same placements as `_placed_tally`, by windows over the rows themselves (a range frame takes
    a row's ties along): no tally to join back to the rows.
    """
    ordered = Window.partitionBy(*keys).orderBy(score)
    upto = ordered.rangeBetween(Window.unboundedPreceding, Window.currentRow)
    tied = ordered.rangeBetween(Window.currentRow, Window.currentRow)
    whole = Window.partitionBy(*keys)
    pos, neg = F.col(DEFAULTED).cast("double"), (1 - F.col(DEFAULTED)).cast("double")
    v10, v01 = _placements(
        F.sum(pos).over(upto), F.sum(neg).over(upto), F.sum(pos).over(tied), F.sum(neg).over(tied),
        F.sum(pos).over(whole), F.sum(neg).over(whole),
    )  # fmt: skip
    return rows.select("*", v10.alias(f"{prefix}10"), v01.alias(f"{prefix}01"))


def _placements(pos_upto, neg_upto, pos_tied, neg_tied, n1, n0) -> tuple[F.Column, F.Column]:
    """DeLong's placements of a score from the defaulters and non-defaulters up to it (ties included),
    at it, and in all: V10 = (non-defaulters below + half the tied) / n0, V01 = (defaulters above +
    half the tied) / n1."""
    return (neg_upto - 0.5 * neg_tied) / n0, (n1 - pos_upto + 0.5 * pos_tied) / n1


# The paired rows of a champion and a challenger: the same customer on the same snapshot, both scored.
CHALLENGER = "challenger_version"
CHALLENGER_PD = "challenger_pd"
SCOPE = "scope"  # a snapshot date (ISO) or POOLED: the rows a comparison figure is computed over
POOLED = "pooled"
PAIR = (CHAMPION_VERSION, CHALLENGER)
# Log loss takes pd clipped to [eps, 1 - eps] of a double, as scikit-learn's log_loss does.
_EPS = float(np.finfo(float).eps)


def paired_rows(champion: DataFrame, challengers: DataFrame) -> DataFrame:
    """Rows in the backtest under both models: champion_version, challenger_version, snapshot_date,
    uuid, defaulted, pd (the champion's), challenger_pd.

    `champion`, `challengers`: `labelled_rows` of the scored and the shadow table, keeping the uuid
    (and, for the challengers, model_version and champion_version). A row left out of either
    model's backtest (no grade under it) is left out of the pair.
    """
    included = F.col(STATUS) == IN_BACKTEST
    mine = champion.where(included).select(SNAPSHOT_DATE, UUID, PD)
    theirs = challengers.where(included).select(
        SNAPSHOT_DATE,
        UUID,
        CHAMPION_VERSION,
        F.col(MODEL_VERSION).alias(CHALLENGER),
        F.col(PD).alias(CHALLENGER_PD),
        DEFAULTED,
    )
    return theirs.join(mine, on=[SNAPSHOT_DATE, UUID], how="inner")


def _log_loss(score: str) -> F.Column:
    p = F.least(F.greatest(F.col(score), F.lit(_EPS)), F.lit(1.0 - _EPS))
    y = F.col(DEFAULTED)
    return -(y * F.log(p) + (1 - y) * F.log(1 - p))


def paired_sums(paired: DataFrame) -> dict[tuple, dict]:
    """Per (champion_version, challenger_version, scope): the sums the comparison is computed from.

    Each row is placed under both scores within its scope (its snapshot, and all snapshots pooled),
    then summed: counts, expected defaults, log loss and Brier of each model and of their per-row
    differences, and the placement sums `stats.paired_auc_from_sums` takes. One row per pair and
    scope reaches the driver.
    """
    scoped = paired.withColumn(
        SCOPE, F.explode(F.array(F.date_format(SNAPSHOT_DATE, "yyyy-MM-dd"), F.lit(POOLED)))
    )
    keys = [*PAIR, SCOPE]
    scoped = _placed_rows(_placed_rows(scoped, keys, PD, "a"), keys, CHALLENGER_PD, "b")
    defaulter, y = F.col(DEFAULTED) == 1, F.col(DEFAULTED)
    a10, b10, a01, b01 = (F.col(c) for c in ("a10", "b10", "a01", "b01"))
    ll_a, ll_b = _log_loss(PD), _log_loss(CHALLENGER_PD)
    se_a, se_b = (F.col(PD) - y) ** 2, (F.col(CHALLENGER_PD) - y) ** 2
    sums = {
        "customers": F.count(F.lit(1)),
        "defaults": F.sum(y),
        "expected_a": F.sum(PD),
        "expected_b": F.sum(CHALLENGER_PD),
        "log_loss_a": F.sum(ll_a),
        "log_loss_b": F.sum(ll_b),
        "log_loss_d": F.sum(ll_b - ll_a),
        "log_loss_d2": F.sum((ll_b - ll_a) ** 2),
        "brier_a": F.sum(se_a),
        "brier_b": F.sum(se_b),
        "brier_d": F.sum(se_b - se_a),
        "brier_d2": F.sum((se_b - se_a) ** 2),
        "a10": F.sum(F.when(defaulter, a10)),
        "a10_sq": F.sum(F.when(defaulter, a10**2)),
        "b10": F.sum(F.when(defaulter, b10)),
        "b10_sq": F.sum(F.when(defaulter, b10**2)),
        "d10_sq": F.sum(F.when(defaulter, (b10 - a10) ** 2)),
        "a01_sq": F.sum(F.when(~defaulter, a01**2)),
        "b01_sq": F.sum(F.when(~defaulter, b01**2)),
        "d01_sq": F.sum(F.when(~defaulter, (b01 - a01) ** 2)),
    }
    rows = scoped.groupBy(*keys).agg(*[value.alias(name) for name, value in sums.items()]).collect()
    return {tuple(r[k] for k in keys): {name: r[name] or 0 for name in sums} for r in rows}


# ROC and reliability plots: each model's pd tallied on a grid of 200 steps per decade of pd (pd
# below 1e-7 in the first step), so at most 1,401 rows per model and pair reach the driver.
PD_STEPS_PER_DECADE = 200
_PD_FLOOR = 1e-7


def pd_tally(paired: DataFrame) -> list[dict]:
    """Pooled paired rows per (pair, model `side`: champion or challenger, pd step): customers,
    defaults and the sum of pd, the pd step's lower end as `pd_step`."""
    sides = [
        paired.select(*PAIR, F.lit(side).alias("side"), F.col(score).alias("p"), DEFAULTED)
        for side, score in (("champion", PD), ("challenger", CHALLENGER_PD))
    ]
    both = sides[0].unionByName(sides[1])
    step = F.floor(F.log10(F.greatest(F.col("p"), F.lit(_PD_FLOOR))) * PD_STEPS_PER_DECADE)
    rows = (
        both.groupBy(*PAIR, "side", step.alias("pd_step"))
        .agg(
            F.count(F.lit(1)).alias("customers"),
            F.sum(DEFAULTED).alias("defaults"),
            F.sum("p").alias("sum_pd"),
        )
        .collect()
    )
    return [r.asDict() for r in rows]


def grade_frequencies(scored: DataFrame, dates: list) -> dict:
    """Customers per grade on each of `dates`: {date: {grade: count}} (for the concentration index)."""
    rows = scored.where(F.col(SNAPSHOT_DATE).isin(dates)).groupBy(SNAPSHOT_DATE, GRADE).count().collect()
    out: dict = {d: {} for d in dates}
    for r in rows:
        if r[GRADE] is not None:
            out[r[SNAPSHOT_DATE]][r[GRADE]] = r["count"]
    return out
