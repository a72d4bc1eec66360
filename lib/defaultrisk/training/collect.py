"""Collecting the labelled rows training fits on: counted in Spark, then brought to the driver whole,
or with the non-defaulters thinned inside Spark first (`sampling = "spark"`, see `thinning.py`)."""

from __future__ import annotations

import logging

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk.features import model_input
from defaultrisk.schema import DEFAULT, REASON, UUID
from defaultrisk.training.config import DRIVER_SAMPLING, TrainConfig
from defaultrisk.training.thinning import DEFAULTS, METHOD, NON_DEFAULTS, rate_for_budget, thin_non_defaulters
from defaultrisk.validate import SKIPPED, valid_rows

log = logging.getLogger(__name__)


def _count_outcomes(validated: DataFrame) -> dict[str, int]:
    """Valid, rejected and skipped rows in one pass over the (persisted) validated frame."""
    rows = validated.groupBy(F.col(REASON).isNull().alias("valid"), F.col(SKIPPED)).count().collect()
    counts = {"input_rows": 0, "valid_rows": 0, "rejected_rows": 0, "skipped_rows": 0}
    for valid, skipped, n in rows:
        if skipped:
            counts["skipped_rows"] += n
        else:
            counts["input_rows"] += n
            counts["valid_rows" if valid else "rejected_rows"] += n
    return counts


def _to_driver(labelled: DataFrame) -> pd.DataFrame:
    """The model's input columns and the label as pandas, in uuid order whatever the partitioning."""
    pdf = model_input(labelled, keep=(DEFAULT,)).toPandas()
    return pdf.sort_values(UUID, kind="stable").reset_index(drop=True)


def _count_outcomes_and_labels(validated: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Valid and rejected rows, and the defaulters and non-defaulters among the valid, in one pass."""
    counts = {"input_rows": 0, "valid_rows": 0, "rejected_rows": 0, "skipped_rows": 0}
    labels = {DEFAULTS: 0, NON_DEFAULTS: 0}
    valid = F.col(REASON).isNull().alias("valid")
    for is_valid, label, n in validated.groupBy(valid, F.col(DEFAULT)).count().collect():
        counts["input_rows"] += n
        counts["valid_rows" if is_valid else "rejected_rows"] += n
        if is_valid and label is not None:
            labels[DEFAULTS if label == 1 else NON_DEFAULTS] += n
    return counts, labels


def collect_training_rows(validated: DataFrame, cfg: TrainConfig) -> tuple[dict, pd.DataFrame, dict]:
    """Row counts, the labelled rows fit trains on (pandas, in uuid order) and what the sampling did.

    With sampling = "driver" every labelled row is collected. With "spark" the non-defaulters are
    thinned inside Spark first, every defaulter kept, at the configured rate or at the rate that fits
    `max_driver_rows`; the pd is corrected by the share of non-defaulters the sample actually holds.
    """
    labelled = valid_rows(validated.drop(SKIPPED)).filter(F.col(DEFAULT).isNotNull())
    if cfg.sampling == DRIVER_SAMPLING:
        counts = _count_outcomes(validated)
        pdf = _to_driver(labelled)
        counts["unlabelled_rows"] = counts["valid_rows"] - len(pdf)
        return counts, pdf, {"mode": DRIVER_SAMPLING, "driver_rows": len(pdf)}
    # A table too large to collect is too large to cache with all its raw values as well (5M rows
    # overflow a 4 GB driver's heap): the two passes below, counts and sample, each read the input.
    validated.unpersist()
    counts, before = _count_outcomes_and_labels(validated)
    counts["unlabelled_rows"] = counts["valid_rows"] - sum(before.values())
    rate = cfg.spark_negative_rate
    if rate is None:
        rate = rate_for_budget(before, cfg.max_driver_rows)
    pdf = _to_driver(thin_non_defaulters(labelled, rate, cfg.seed))
    return counts, pdf, _thinning_record(cfg, rate, before, pdf)


def _thinning_record(cfg: TrainConfig, rate: float, before: dict[str, int], pdf: pd.DataFrame) -> dict:
    """What the thinning did, for the manifest: the rate asked for and the share of non-defaulters kept."""
    defaults = int((pdf[DEFAULT] == 1).sum())
    after = {DEFAULTS: defaults, NON_DEFAULTS: len(pdf) - defaults}
    kept = after[NON_DEFAULTS] / before[NON_DEFAULTS] if before[NON_DEFAULTS] else 1.0
    log.info(
        "sampled in Spark at rate %.6g: %d of %d defaulters and %d of %d non-defaulters to the driver",
        rate,
        after[DEFAULTS],
        before[DEFAULTS],
        after[NON_DEFAULTS],
        before[NON_DEFAULTS],
    )
    return {
        "mode": cfg.sampling,
        "method": METHOD,
        "seed": cfg.seed,
        "max_driver_rows": cfg.max_driver_rows,
        "negative_rate": rate,
        "negative_sampling_rate": kept,
        "before": before,
        "after": after,
        "observed_default_rate": before[DEFAULTS] / max(sum(before.values()), 1),
        "driver_rows": len(pdf),
    }
