"""The Spark shell of the scoring core: an Arrow UDF over each partition, and its worker model cache."""

from __future__ import annotations

import xgboost as xgb
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession

from defaultrisk.errors import ModelError
from defaultrisk.features import matrix_input
from defaultrisk.model import ModelPayload, ScoringModel
from defaultrisk.schema import FEATURES, IS_HIGH_RISK, PD, REASON_CODES, UUID
from defaultrisk.scoring.core import score_batch

SCORE_SCHEMA = f"{UUID} string, {PD} double, {IS_HIGH_RISK} boolean, {REASON_CODES} array<string>"

# One loaded booster per worker process and model identity, reused by every task the process runs;
# its TreeSHAP tables (`ScoringModel.explainer`) are built on its first reason codes and kept with it.
_WORKER_MODELS: dict[str, ScoringModel] = {}


def xgboost_version() -> str:
    return xgb.__version__


def check_executor_libraries(spark: SparkSession) -> None:
    """Fail before scoring if an executor runs another XGBoost than the driver (or none at all).

    Trees score differently across XGBoost releases; the executors must run the environment the
    driver checked the model with (scripts ship it as one packed archive on a cluster).
    """
    slots = max(1, spark.sparkContext.defaultParallelism)
    try:
        found = set(
            spark.sparkContext.parallelize(range(slots), slots).map(lambda _: xgboost_version()).collect()
        )
    except Exception as exc:  # a Py4J error wrapping the executor's own
        raise ModelError(f"cannot load XGBoost on the executors: {str(exc).strip().splitlines()[0]}") from exc
    if found != {xgb.__version__}:
        raise ModelError(
            f"executors run XGBoost {', '.join(sorted(found))} but the driver runs {xgb.__version__}: "
            "ship the driver's environment to the executors"
        )


def worker_model(payload: ModelPayload, driver_xgboost: str) -> ScoringModel:
    """The model for this worker process, loaded on first use (not once per batch or per task).

    Cached by `model_version`, which covers the booster and every manifest field scoring reads: two
    models sharing a booster but not a threshold or calibration are two entries.
    """
    if xgb.__version__ != driver_xgboost:
        raise ModelError(f"this executor runs XGBoost {xgb.__version__}, the driver {driver_xgboost}")
    model = _WORKER_MODELS.get(payload.version)
    if model is None:
        context = TaskContext.get()
        nthread = int(context.cpus()) if context is not None else None
        model = ScoringModel.from_payload(payload, nthread=nthread)
        _WORKER_MODELS[payload.version] = model
    return model


def score_partitions(df: DataFrame, payload: ModelPayload, reason_codes: int = 0, reason_rows: str = "all"):
    """Score every partition of a frame of valid rows with an Arrow UDF sharing `score_frame`'s core.

    Only `uuid` and the features, already floats, go to Python, as Arrow batches that become the
    matrix without a pandas frame in between; `uuid` comes back as it went. The UDF closes over
    plain values only (the checked model file's bytes, version, threshold and calibration); the
    feature order and category codes come from the schema, never from what a batch happens to hold.
    """
    driver_xgboost = xgb.__version__

    def score_batches(batches):
        model = worker_model(payload, driver_xgboost)
        for batch in batches:
            if batch.num_rows:
                yield score_batch(batch, model, reason_codes, reason_rows)

    return matrix_input(df, FEATURES).mapInArrow(score_batches, schema=SCORE_SCHEMA)
