"""The feature matrix: typed rows to XGBoost's input, for training and for scoring.

Two encoders side by side, giving the same float32 values: `feature_matrix` (pandas, training and
`score_frame`) and `checked_matrix` (a batch's checked Arrow values, in the scoring job's workers and
the service). `dmatrix` is the one place an XGBoost DMatrix is built.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk.checks import NUMBERS, Checked
from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES, UUID, Feature

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


def checked_matrix(checked: Checked) -> np.ndarray:
    """The float32 matrix of `feature_matrix`, straight from a batch's checked values.

    The same values without a pandas frame: numbers through float64 to float32 (the checks' block),
    a flag as 0 or 1, a category as its index in the schema's vocabulary, NaN for missing or unseen.
    A test holds it equal to `feature_matrix` on every row of a generated snapshot.
    """
    matrix = np.empty((len(checked.uuid), len(FEATURES)), dtype=np.float32)
    with np.errstate(over="ignore"):  # a rejected row's huge number; valid rows fit
        matrix[:, _NUMBER_COLUMNS] = checked.numbers.T
    for j, feature in _OTHER_COLUMNS:
        column = checked.features[feature.name]
        if feature.kind == CATEGORY:
            column = pc.index_in(column, value_set=_VOCABULARIES[feature.name])
        matrix[:, j] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return matrix


_VOCABULARIES = {f.name: pa.array(f.values, pa.string()) for f in FEATURES if f.kind == CATEGORY}
_NUMBER_COLUMNS = np.array([FEATURES.index(f) for f in NUMBERS])
_OTHER_COLUMNS = [(j, f) for j, f in enumerate(FEATURES) if f not in NUMBERS]  # categories and flags


def dmatrix(matrix: np.ndarray, labels: np.ndarray | None = None) -> xgb.DMatrix:
    """XGBoost's matrix for the schema's features: names, numeric or categorical types, NaN missing."""
    return xgb.DMatrix(
        matrix,
        label=labels,
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )
