"""The feature matrix: typed rows to XGBoost's input, for training and for scoring.

Two encoders side by side, giving the same float32 values: `feature_matrix` (pandas, training and
`score_frame`) and `matrix_input` (Spark SQL, run in the JVM before rows go to the scoring workers),
whose Arrow batches `arrow_matrix` reads by column name. `dmatrix` is the one place an XGBoost
DMatrix is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk import sql
from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES, FLAG, UUID, Feature

# XGBoost feature types: categorical features are vocabulary codes, the rest are numbers.
XGB_CATEGORICAL = "c"
XGB_NUMERIC = "q"


def model_input(df: DataFrame, features: Sequence[Feature] = FEATURES, keep: Sequence[str] = ()) -> DataFrame:
    """`uuid` and the features in the model's order; numbers as double, categories as text.

    `keep` names further columns passed through unchanged after the features (the label, in training).

    This is the only shape sent to Python: flags and whole numbers arrive as doubles with NaN for
    missing, so a batch's pandas dtypes never depend on which values it happens to hold.
    """
    return df.select(
        F.col(UUID),
        *[F.col(f.name) if f.kind == CATEGORY else F.col(f.name).cast("double") for f in features],
        *[F.col(c) for c in keep],
    )


def _as_float(feature: Feature) -> str:
    """SQL: the feature as XGBoost reads it, a float, NaN for missing (see `feature_matrix`)."""
    column = sql.name(feature.name)
    if feature.kind == CATEGORY:
        codes = " ".join(f"WHEN {sql.text(value)} THEN {code}" for code, value in enumerate(feature.values))
        value = f"CASE {column} {codes} END"
    elif feature.kind == FLAG:
        value = f"CAST({column} AS INT)"
    else:
        value = column
    # Through double first: a whole number is rounded once to double and once to float, as in pandas.
    return f"coalesce(CAST(CAST({value} AS DOUBLE) AS FLOAT), CAST('NaN' AS FLOAT)) AS {column}"


def matrix_input(df: DataFrame, features: Sequence[Feature] = FEATURES) -> DataFrame:
    """`uuid` and the features in the model's order as floats, exactly the values of `feature_matrix`.

    This is the only shape sent to the scoring workers: the JVM does the conversion, so the workers
    receive four bytes a value and stack columns into a matrix without touching a row.
    """
    return df.selectExpr(sql.name(UUID), *[_as_float(f) for f in features])


def xgb_feature_types(features: Sequence[Feature] = FEATURES) -> list[str]:
    return [XGB_CATEGORICAL if f.kind == CATEGORY else XGB_NUMERIC for f in features]


def feature_matrix(pdf: pd.DataFrame, features: Sequence[Feature] = FEATURES) -> np.ndarray:
    """A float32 matrix, columns in the model's order, NaN for missing.

    A category is its index in the schema's vocabulary; a value outside the vocabulary (a merchant
    category first seen tonight) is NaN, which XGBoost treats as missing instead of failing.
    """
    matrix = np.empty((len(pdf), len(features)), dtype=np.float32)
    for j, feature in enumerate(features):
        column = pdf[feature.name]
        if feature.kind == CATEGORY:
            codes = pd.Categorical(column, categories=list(feature.values)).codes.astype(np.float32)
            codes[codes < 0] = np.nan
            matrix[:, j] = codes
        else:
            matrix[:, j] = pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    return matrix


def arrow_matrix(batch: pa.RecordBatch, features: Sequence[Feature] = FEATURES) -> np.ndarray:
    """The float32 matrix of a batch of `matrix_input` rows, each feature read by its name."""
    matrix = np.empty((batch.num_rows, len(features)), dtype=np.float32)
    for j, feature in enumerate(features):
        matrix[:, j] = batch.column(feature.name).to_numpy(zero_copy_only=False)
    return matrix


def dmatrix(matrix: np.ndarray, labels: np.ndarray | None = None) -> xgb.DMatrix:
    """XGBoost's matrix for the schema's features: names, numeric or categorical types, NaN missing."""
    return xgb.DMatrix(
        matrix,
        label=labels,
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )
