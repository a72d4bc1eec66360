"""The truth file of generated data: each customer's true pd, for comparing a model with the ceiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from defaultrisk.errors import InputError
from defaultrisk.schema import UUID

TRUE_PD = "true_pd"


def read_truth(path: str | Path) -> pd.Series:
    """The true pd of generated data (`uuid;true_pd`, as `scripts/make_sample_data.py` writes it)."""
    try:
        frame = pd.read_csv(
            path, sep=";", dtype={UUID: str}, float_precision="round_trip", keep_default_na=False
        )
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read truth file {path}: {exc}") from exc
    if list(frame.columns) != [UUID, TRUE_PD]:
        raise InputError(f"truth file {path} must have the header {UUID};{TRUE_PD}")
    values = pd.to_numeric(frame[TRUE_PD], errors="coerce")
    if values.isna().any() or not values.between(0.0, 1.0).all():
        raise InputError(f"truth file {path}: every {TRUE_PD} must be a probability in [0, 1]")
    if frame[UUID].duplicated().any():
        raise InputError(f"truth file {path}: a uuid occurs more than once")
    return pd.Series(values.to_numpy(dtype=np.float64), index=frame[UUID], name=TRUE_PD)
