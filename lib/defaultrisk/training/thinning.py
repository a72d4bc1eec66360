"""Thinning the non-defaulters inside Spark, so that a labelled table too large to collect still trains.

Every defaulter is kept; a non-defaulter is kept when a seeded hash of its uuid, read as a number in
[0, 1), falls below the rate. That is a stratified Bernoulli sample like `DataFrame.sampleBy`'s, but
`sampleBy` draws `rand(seed)` per partition, in row order, so the same seed picks other customers when
the input is split into other partitions (another file layout, core count or cluster size; Spark's own
doctest had to pin the partitioning for that reason, SPARK-51754). A hash of (uuid, seed) picks the same
customers on any machine, needs no shuffle, and a customer kept at one rate is kept at every higher one.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from defaultrisk.errors import ConfigError
from defaultrisk.schema import DEFAULT, UUID

DEFAULTS = "defaults"
NON_DEFAULTS = "non_defaults"
METHOD = "xxhash64(uuid, seed) below the rate; every defaulter kept"
_DRAW_BITS = 53  # a double holds 53 bits exactly: the draw is k / 2**53


def rate_for_budget(counts: dict[str, int], max_driver_rows: int) -> float:
    """The fraction of non-defaulters that brings the expected rows collected to `max_driver_rows`.

    Every defaulter is kept, so they alone must fit; a budget above the table keeps everything (1.0).
    """
    defaults, non_defaults = counts[DEFAULTS], counts[NON_DEFAULTS]
    if defaults >= max_driver_rows:
        raise ConfigError(
            f"max_driver_rows {max_driver_rows} leaves no room for non-defaulters: the table has "
            f"{defaults} defaulters, all of which are kept; raise it or set spark_negative_rate"
        )
    if non_defaults == 0:
        return 1.0
    return min(1.0, (max_driver_rows - defaults) / non_defaults)


def sampling_draw(seed: int) -> Column:
    """Each row's draw in [0, 1): the top 53 bits of xxhash64(uuid, seed), a fixed function of both."""
    hashed = F.xxhash64(F.col(UUID), F.lit(seed))
    return F.shiftrightunsigned(hashed, 64 - _DRAW_BITS).cast("double") / float(2**_DRAW_BITS)


def thin_non_defaulters(labelled: DataFrame, rate: float, seed: int) -> DataFrame:
    """Every defaulter and the non-defaulters whose draw falls below `rate` (all of them at rate 1)."""
    if rate >= 1.0:
        return labelled
    return labelled.filter((F.col(DEFAULT) == 1) | (sampling_draw(seed) < rate))
