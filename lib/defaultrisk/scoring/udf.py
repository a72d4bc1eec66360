"""The Spark shell of the scoring core: one Arrow UDF that checks and scores each partition, and its
worker model cache."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import xgboost as xgb
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from defaultrisk import sql
from defaultrisk.checks import RAW, RAW_COLUMNS, SKIPPED
from defaultrisk.errors import ModelError, first_line
from defaultrisk.model import ModelPayload, ScoringModel
from defaultrisk.schema import IS_HIGH_RISK, PD, REASON, REASON_CODES, UUID
from defaultrisk.scoring.core import challenger_pd_column, check_and_score_batch
from defaultrisk.validate import raw_struct_type

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
        raise ModelError(f"cannot load XGBoost on the executors: {first_line(exc)}") from exc
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


def outcome_schema(known: DataFrame, challengers: int = 0) -> T.StructType:
    """The scoring pass's rows: a scored row's pd, flag and reasons, or a rejected row's reason and
    values as read (typed as the input holds them), or the mark of a skipped row; then each
    challenger's pd (`challenger_pd_column`)."""
    return T.StructType(
        [
            T.StructField(UUID, T.StringType(), True),
            T.StructField(PD, T.DoubleType(), True),
            T.StructField(IS_HIGH_RISK, T.BooleanType(), True),
            T.StructField(REASON_CODES, T.ArrayType(T.StringType(), True), True),
            T.StructField(REASON, T.StringType(), True),
            T.StructField(SKIPPED, T.BooleanType(), True),
            T.StructField(RAW, raw_struct_type(known), True),
            *[
                T.StructField(challenger_pd_column(i), T.DoubleType(), True)
                for i in range(1, challengers + 1)
            ],
        ]
    )


def check_and_score(  # noqa: PLR0913 (callers pass the first six by position; challengers by name)
    known: DataFrame,
    payload: ModelPayload,
    duplicates: Mapping[str, int],
    reason_codes: int = 0,
    reason_rows: str = "all",
    skip_labelled: bool = False,
    *,
    challengers: Sequence[ModelPayload] = (),
) -> DataFrame:
    """Check and score every row of a raw table in one Arrow UDF: each row crosses to Python once.

    `known` holds the input's known columns as read (`validate.known_columns`), text or typed; each
    batch goes through the entry contract (`checks`) and the valid rows through `score_matrix`, the
    core `score_frame` and the service share. The UDF closes over plain values only (a broadcast of the
    checked models' payloads: file bytes, version, threshold and calibration; the snapshot's duplicated
    uuid keys);
    the feature order and category codes come from the schema, never from what a batch holds.

    Challengers (their checked payloads, shipped and cached on workers like the live model's) score
    the same valid rows from the same matrix, one pd column each; with none the pass is exactly the
    live model's.
    """
    driver_xgboost = xgb.__version__
    duplicates = dict(duplicates)
    challengers = tuple(challengers)
    # The models travel as one broadcast, fetched once per executor, not inside every task's closure
    # (a live model and a challenger of a few hundred kB each would make each task's binary large).
    models = known.sparkSession.sparkContext.broadcast((payload, challengers))

    def check_and_score_batches(batches):
        live, shadow_payloads = models.value
        model = worker_model(live, driver_xgboost)
        shadows = [worker_model(p, driver_xgboost) for p in shadow_payloads]
        for batch in batches:
            if batch.num_rows:
                yield check_and_score_batch(
                    batch, model, duplicates, reason_codes, reason_rows, skip_labelled, challengers=shadows
                )

    columns = known.select(*[sql.name(c) for c in RAW_COLUMNS])
    return columns.mapInArrow(check_and_score_batches, schema=outcome_schema(known, len(challengers)))
