"""Plain JSON data: the one conversion every JSON file and summary the product writes goes through."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np


def plain(value):
    """A value as JSON has it: numpy scalars and arrays as Python numbers and lists, NaN and infinities
    as null, dates as ISO text, dictionary keys as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def write_json(path: Path, data, sort_keys: bool = False) -> None:
    """Write `data` as plain, indented JSON (never NaN, which JSON does not have) and a final newline."""
    Path(path).write_text(json.dumps(plain(data), indent=2, sort_keys=sort_keys, allow_nan=False) + "\n")
