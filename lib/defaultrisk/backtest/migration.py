"""Grade migration between two snapshot dates, and the concentration of customers per grade."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk.backtest import stats
from defaultrisk.backtest.config import BacktestConfig
from defaultrisk.backtest.measures import GRADE
from defaultrisk.errors import InputError
from defaultrisk.grades import MasterScale
from defaultrisk.schema import SNAPSHOT_DATE, UUID

log = logging.getLogger(__name__)
ABSENT = 0  # row/column 0 of the matrix: not in that snapshot (new customers, customers gone)


def migration(graded: DataFrame, first: date, second: date, scale: MasterScale) -> dict:
    """The matrix of customers by grade on `first` (rows) and on `second` (columns), counts and shares.

    A full outer join on the uuid, so every customer of either date is in exactly one cell: row and
    column 0 hold customers present on one date only (a customer without a grade counts there too).
    One Spark job; at most (grades + 1)² numbers reach the driver.
    """

    def side(day: date, name: str) -> DataFrame:
        return graded.where(F.col(SNAPSHOT_DATE) == F.lit(day)).select(
            F.lower(F.trim(F.col(UUID))).alias(UUID), F.coalesce(F.col(GRADE), F.lit(ABSENT)).alias(name)
        )

    pairs = (
        side(first, "grade_from")
        .join(side(second, "grade_to"), on=UUID, how="full_outer")
        .select(
            F.coalesce("grade_from", F.lit(ABSENT)).alias("grade_from"),
            F.coalesce("grade_to", F.lit(ABSENT)).alias("grade_to"),
        )
        .groupBy("grade_from", "grade_to")
        .count()
        .collect()
    )
    if not pairs:
        raise InputError(f"migration: no scored rows on {first} or {second}")
    matrix = stats.migration_matrix(
        [r["grade_from"] for r in pairs],
        [r["grade_to"] for r in pairs],
        scale.grades,
        [r["count"] for r in pairs],
    )
    shares = stats.migration_shares(matrix)
    from_counts, to_counts = matrix[1:, :].sum(axis=1), matrix[:, 1:].sum(axis=0)
    if not from_counts.sum() or not to_counts.sum():
        missing = first if not from_counts.sum() else second
        raise InputError(f"migration: no graded customers on {missing} in the scored table")
    labels = ["absent", *scale.labels]
    return {
        "from": first.isoformat(),
        "to": second.isoformat(),
        "labels": labels,
        "counts": matrix.tolist(),
        "shares": [[None if np.isnan(v) else round(float(v), 6) for v in row] for row in shares],
        "customers": {first.isoformat(): int(from_counts.sum()), second.isoformat(): int(to_counts.sum())},
        "stayed_share": float(matrix[1:, 1:].trace() / max(matrix[1:, 1:].sum(), 1)),
        "herfindahl": {
            first.isoformat(): _concentration(from_counts),
            second.isoformat(): _concentration(to_counts),
        },
    }


def _concentration(counts) -> dict:
    index, normalised = stats.herfindahl(counts)
    return {"index": index, "normalised": normalised, "per_grade": [int(c) for c in counts]}


def configured_migration(graded: DataFrame, cfg: BacktestConfig, versions: dict, scales: dict) -> dict | None:
    """The migration matrix between `--migration`'s two dates, or None when not asked."""
    if not cfg.migration:
        return None
    missing = [d.isoformat() for d in cfg.migration if d not in versions]
    if missing:
        raise InputError(f"--migration: no snapshot {', '.join(missing)} in the scored table")
    first, second = cfg.migration
    if scales[versions[first]] != scales[versions[second]]:
        log.warning("migration %s -> %s: the two dates' models have different master scales", first, second)
    return migration(graded, first, second, scales[versions[second]])
