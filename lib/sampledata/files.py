"""Writing tables in the original file format, and the truth file kept apart from them."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from defaultrisk.schema import CODE, COUNT, FEATURES, UUID

TRUE_PD = "true_pd"
CSV_SEPARATOR = ";"
CSV_MISSING = "NA"
WHOLE_KINDS = (COUNT, CODE)
WHOLE_COLUMNS = tuple(f.name for f in FEATURES if f.kind in WHOLE_KINDS)


def _whole_columns_as_integers(df: pd.DataFrame) -> pd.DataFrame:
    """Whole-number columns without missing values written as `2`; with missing values pandas writes `2.0`."""
    out = df.copy()
    for name in WHOLE_COLUMNS:
        if name not in out or out[name].dtype.kind != "f":
            continue
        values = out[name].to_numpy()
        if not np.isnan(values).any() and np.all(values == np.floor(values)):
            out[name] = values.astype(np.int64)
    return out


def write_original_csv(df: pd.DataFrame, path: str | PathLike) -> None:
    """Write a table in the original file format: `;`-separated, header, `NA` for missing, `True`/`False`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _whole_columns_as_integers(df).to_csv(
        path, sep=CSV_SEPARATOR, na_rep=CSV_MISSING, index=False, lineterminator="\n", encoding="utf-8"
    )


def write_truth(uuids: Sequence[str], true_pd: Sequence[float], path: str | PathLike) -> None:
    """Write `uuid;true_pd`, kept apart from the data so an evaluation can score a model against it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = list(uuids)
    probabilities = np.asarray(true_pd, dtype=float)
    if len(ids) != len(probabilities):
        raise ValueError(f"{len(ids)} uuids but {len(probabilities)} probabilities")
    lines = [f"{UUID}{CSV_SEPARATOR}{TRUE_PD}"]
    lines.extend(f"{u}{CSV_SEPARATOR}{float(p)!r}" for u, p in zip(ids, probabilities, strict=True))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
