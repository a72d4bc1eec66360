"""The scoring core: plain numpy and pandas, no Spark. The Spark job (`udf.py`) and any other shell
share it, so a row's pd does not depend on where it was scored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from defaultrisk.checks import RAW, SKIPPED, check_batch, raw_struct
from defaultrisk.features import checked_matrix, dmatrix, feature_matrix
from defaultrisk.model import ScoringModel
from defaultrisk.schema import (
    FEATURE_NAMES,
    FEATURES,
    IS_HIGH_RISK,
    PD,
    REASON,
    REASON_CODES,
    UUID,
)

_REASONS = pa.list_(pa.string())
OUTCOME_COLUMNS = (UUID, PD, IS_HIGH_RISK, REASON_CODES, REASON, SKIPPED, RAW)


def challenger_pd_column(number: int) -> str:
    """The outcome's pd column of the `number`-th challenger (1-based), after `OUTCOME_COLUMNS`."""
    return f"_pd_{number}"


def feature_contributions(model: ScoringModel, matrix: np.ndarray) -> np.ndarray:
    """Each feature's additive share of each row's log-odds (exact path-dependent TreeSHAP), rows x
    features: the model's TreeSHAP tables (`treeshap.py`), or XGBoost's `pred_contribs` for a
    booster they do not cover. The bias is left out."""
    explainer = model.explainer
    if explainer is not None:
        return explainer.contributions(matrix)
    return model.booster.predict(dmatrix(matrix), pred_contribs=True)[:, :-1]  # the last column is the bias


def top_reasons(model: ScoringModel, matrix: np.ndarray, count: int) -> list[list[str]]:
    """Per row, the `count` features that push its risk up most, by TreeSHAP (`feature_contributions`).

    Only positive shares are reasons. Ties go to the earlier feature, so the answer never depends
    on the batch.
    """
    if len(matrix) == 0:
        return []
    contributions = feature_contributions(model, matrix)
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :count]
    shares = np.take_along_axis(contributions, order, axis=1)
    names = np.asarray(FEATURE_NAMES, dtype=object)
    return [names[idx[share > 0]].tolist() for idx, share in zip(order, shares, strict=True)]


def score_matrix(matrix: np.ndarray, model: ScoringModel, reason_codes: int = 0, reason_rows: str = "all"):
    """pd, is_high_risk and reason codes (or None) for a matrix built like `features.feature_matrix`.

    With `reason_rows="high_risk"` only the rows at or above the threshold get reasons (the others
    None): TreeSHAP runs on those rows alone, and a row's reasons never depend on its batch.
    """
    pds = model.predict_pd(matrix)
    high = pds >= model.threshold
    if not reason_codes:
        return pds, high, None
    if reason_rows == "all":
        return pds, high, top_reasons(model, matrix, reason_codes)
    reasons: list = [None] * len(pds)
    rows = np.flatnonzero(high)
    for row, named in zip(rows, top_reasons(model, matrix[rows], reason_codes), strict=True):
        reasons[row] = named
    return pds, high, reasons


def score_frame(pdf: pd.DataFrame, model: ScoringModel, reason_codes: int = 0, reason_rows: str = "all"):
    """Score a pandas frame of `uuid` + features: `uuid`, calibrated `pd`, `is_high_risk`, `reason_codes`.

    `reason_codes` is how many reasons to name per row (0: the column holds nulls); `reason_rows`
    which rows get them ("all", or "high_risk": the others hold nulls).
    """
    pds, high, reasons = score_matrix(feature_matrix(pdf, FEATURES), model, reason_codes, reason_rows)
    return pd.DataFrame(
        {
            UUID: pdf[UUID].to_numpy(dtype=object),
            PD: pds,
            IS_HIGH_RISK: high,
            REASON_CODES: pd.Series(reasons if reasons is not None else [None] * len(pds), dtype=object),
        }
    )


def check_and_score_batch(  # noqa: PLR0913 (callers pass the first six by position; challengers by name)
    batch: pa.RecordBatch,
    model: ScoringModel,
    duplicates: Mapping[str, int],
    reason_codes: int = 0,
    reason_rows: str = "all",
    skip_labelled: bool = False,
    *,
    challengers: Sequence[ScoringModel] = (),
) -> pa.RecordBatch:
    """One batch of raw rows through the entry contract and the model, as `OUTCOME_COLUMNS` lays it out.

    Every row comes back once: scored (`reason` null), rejected (its `reason`, and its values as
    read in `RAW`), or skipped (a labelled row when `skip_labelled`). `duplicates` holds the uuid keys
    seen more than once in the whole snapshot, with their number of rows.

    Each challenger adds one pd column (`challenger_pd_column`), null where the live pd is: the
    same scored rows, from the same matrix (the model loader refuses any feature list but the
    schema's, so every model of a run reads one encoding), without reason codes. With none the
    batch is exactly the live model's.
    """
    checked = check_batch(batch, skip_labelled, duplicates)
    n = batch.num_rows
    valid = checked.valid
    skipped = np.zeros(n, dtype=bool)
    if skip_labelled:
        skipped = checked.default.is_valid().to_numpy(zero_copy_only=False)
    scoring = valid & ~skipped
    rows = np.flatnonzero(scoring)
    pds, high, reasons = np.zeros(n), np.zeros(n, dtype=bool), np.full(n, None, dtype=object)
    challenger_pds = [np.zeros(n) for _ in challengers]
    if len(rows):
        matrix = checked_matrix(checked)[rows]
        scored = score_matrix(matrix, model, reason_codes, reason_rows)
        pds[rows], high[rows] = scored[0], scored[1]
        if scored[2] is not None:
            reasons[rows] = scored[2]
        for challenger, values in zip(challengers, challenger_pds, strict=True):
            values[rows] = challenger.predict_pd(matrix)
    unscored = None if len(rows) == n else ~scoring
    rejected = ~valid & ~skipped
    raw = raw_struct(batch, mask=~rejected)
    return pa.RecordBatch.from_arrays(
        [
            checked.uuid,
            pa.array(pds, type=pa.float64(), mask=unscored),
            pa.array(high, type=pa.bool_(), mask=unscored),
            pa.array(reasons, type=_REASONS),
            checked.reason,
            pa.array(skipped, type=pa.bool_()),
            raw,
            *[pa.array(values, type=pa.float64(), mask=unscored) for values in challenger_pds],
        ],
        names=[*OUTCOME_COLUMNS, *[challenger_pd_column(i) for i in range(1, len(challengers) + 1)]],
    )
