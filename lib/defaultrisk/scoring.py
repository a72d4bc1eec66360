"""The scoring core (`score_frame`, plain pandas) and its Spark shell (`score_partitions`)."""

from __future__ import annotations

import pandas as pd
from pyspark import TaskContext
from pyspark.sql import DataFrame

from defaultrisk.features import feature_matrix, model_input
from defaultrisk.model import ScoringModel
from defaultrisk.schema import FEATURES, IS_HIGH_RISK, PD, UUID

SCORE_SCHEMA = f"{UUID} string, {PD} double, {IS_HIGH_RISK} boolean"

# One loaded booster per worker process and model, reused by every task the process runs.
_WORKER_MODELS: dict[str, ScoringModel] = {}


def score_frame(pdf: pd.DataFrame, model: ScoringModel) -> pd.DataFrame:
    """Score a pandas frame of `uuid` + features: `uuid`, calibrated `pd`, `is_high_risk`."""
    pds = model.predict_pd(feature_matrix(pdf, FEATURES))
    return pd.DataFrame(
        {
            UUID: pdf[UUID].to_numpy(dtype=object),
            PD: pds,
            IS_HIGH_RISK: pds >= model.threshold,
        }
    )


def worker_model(model_bytes: bytes, manifest: dict) -> ScoringModel:
    """The model for this worker process, loaded on first use (not once per batch or per task)."""
    key = manifest["model_sha256"]
    model = _WORKER_MODELS.get(key)
    if model is None:
        context = TaskContext.get()
        nthread = int(context.cpus()) if context is not None else None
        model = ScoringModel.from_bytes(model_bytes, manifest, nthread=nthread)
        _WORKER_MODELS[key] = model
    return model


def score_partitions(df: DataFrame, model_bytes: bytes, manifest: dict) -> DataFrame:
    """Score every partition of a frame of valid rows with a pandas UDF wrapping `score_frame`.

    The UDF closes over plain values only (the checked model file's bytes and its manifest); the
    feature order and category codes come from the schema, never from what a batch happens to hold.
    """

    def score_batches(batches):
        model = worker_model(model_bytes, manifest)
        for batch in batches:
            if len(batch):
                yield score_frame(batch, model)

    return model_input(df, FEATURES).mapInPandas(score_batches, schema=SCORE_SCHEMA)
