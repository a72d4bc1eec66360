"""The scoring core (`score_frame`, plain pandas) and its Spark shell (`score_partitions`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession

from defaultrisk.errors import ModelError
from defaultrisk.features import feature_matrix, matrix_input, xgb_feature_types
from defaultrisk.model import ScoringModel
from defaultrisk.schema import FEATURE_NAMES, FEATURES, IS_HIGH_RISK, PD, REASON_CODES, UUID

SCORE_SCHEMA = f"{UUID} string, {PD} double, {IS_HIGH_RISK} boolean, {REASON_CODES} array<string>"
_REASONS = pa.list_(pa.string())

# One loaded booster per worker process and model, reused by every task the process runs.
_WORKER_MODELS: dict[str, ScoringModel] = {}


def top_reasons(model: ScoringModel, matrix: np.ndarray, count: int) -> list[list[str]]:
    """Per row, the `count` features that push its risk up most, by XGBoost's own contributions.

    `pred_contribs` gives each feature's additive share of the row's log-odds (TreeSHAP); only
    positive shares are reasons. Ties go to the earlier feature, so the answer never depends on
    the batch.
    """
    if len(matrix) == 0:
        return []
    dmatrix = xgb.DMatrix(
        matrix,
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )
    contributions = model.booster.predict(dmatrix, pred_contribs=True)[:, :-1]  # the last column is the bias
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :count]
    shares = np.take_along_axis(contributions, order, axis=1)
    names = np.asarray(FEATURE_NAMES, dtype=object)
    return [names[idx[share > 0]].tolist() for idx, share in zip(order, shares, strict=True)]


def score_matrix(matrix: np.ndarray, model: ScoringModel, reason_codes: int = 0) -> tuple:
    """pd, is_high_risk and reason codes (or None) for a matrix built like `features.feature_matrix`."""
    pds = model.predict_pd(matrix)
    reasons = top_reasons(model, matrix, reason_codes) if reason_codes else None
    return pds, pds >= model.threshold, reasons


def score_frame(pdf: pd.DataFrame, model: ScoringModel, reason_codes: int = 0) -> pd.DataFrame:
    """Score a pandas frame of `uuid` + features: `uuid`, calibrated `pd`, `is_high_risk`, `reason_codes`.

    `reason_codes` is how many reasons to name per row; with 0 the column holds nulls.
    """
    pds, high, reasons = score_matrix(feature_matrix(pdf, FEATURES), model, reason_codes)
    return pd.DataFrame(
        {
            UUID: pdf[UUID].to_numpy(dtype=object),
            PD: pds,
            IS_HIGH_RISK: high,
            REASON_CODES: pd.Series(reasons if reasons is not None else [None] * len(pds), dtype=object),
        }
    )


def arrow_matrix(batch: pa.RecordBatch) -> np.ndarray:
    """The float32 matrix of a batch of `features.matrix_input` rows (its columns after `uuid`)."""
    matrix = np.empty((batch.num_rows, len(FEATURES)), dtype=np.float32)
    for j in range(len(FEATURES)):
        matrix[:, j] = batch.column(j + 1).to_numpy(zero_copy_only=False)
    return matrix


def score_batch(batch: pa.RecordBatch, model: ScoringModel, reason_codes: int = 0) -> pa.RecordBatch:
    """Score one Arrow batch of `features.matrix_input` rows; `uuid` passes through untouched."""
    pds, high, reasons = score_matrix(arrow_matrix(batch), model, reason_codes)
    return pa.RecordBatch.from_arrays(
        [
            batch.column(0),
            pa.array(pds, type=pa.float64()),
            pa.array(high, type=pa.bool_()),
            pa.array(reasons, type=_REASONS) if reasons is not None else pa.nulls(len(pds), _REASONS),
        ],
        names=[UUID, PD, IS_HIGH_RISK, REASON_CODES],
    )


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


def worker_model(model_bytes: bytes, manifest: dict, driver_xgboost: str) -> ScoringModel:
    """The model for this worker process, loaded on first use (not once per batch or per task)."""
    if xgb.__version__ != driver_xgboost:
        raise ModelError(f"this executor runs XGBoost {xgb.__version__}, the driver {driver_xgboost}")
    key = manifest["model_sha256"]
    model = _WORKER_MODELS.get(key)
    if model is None:
        context = TaskContext.get()
        nthread = int(context.cpus()) if context is not None else None
        model = ScoringModel.from_bytes(model_bytes, manifest, nthread=nthread)
        _WORKER_MODELS[key] = model
    return model


def score_partitions(df: DataFrame, model_bytes: bytes, manifest: dict, reason_codes: int = 0) -> DataFrame:
    """Score every partition of a frame of valid rows with an Arrow UDF sharing `score_frame`'s core.

    Only `uuid` and the features, already floats, go to Python, as Arrow batches that become the
    matrix without a pandas frame in between; `uuid` comes back as it went. The UDF closes over
    plain values only (the checked model file's bytes and its manifest); the feature order and
    category codes come from the schema, never from what a batch happens to hold.
    """

    driver_xgboost = xgb.__version__

    def score_batches(batches):
        model = worker_model(model_bytes, manifest, driver_xgboost)
        for batch in batches:
            if batch.num_rows:
                yield score_batch(batch, model, reason_codes)

    return matrix_input(df, FEATURES).mapInArrow(score_batches, schema=SCORE_SCHEMA)
