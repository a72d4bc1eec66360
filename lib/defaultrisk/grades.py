"""The master scale: rating grades as intervals of pd, the same on the driver, in pandas and in Spark.

Grade g (1 = safest) holds every pd with `boundaries[g-1] <= pd < boundaries[g]`; the last grade also
holds pd = 1. `boundaries` runs from 0 to 1, so every pd in [0, 1] has exactly one grade. A pd that is
missing, NaN or outside [0, 1] has none: `grade_of` gives 0 for it, `grade_column` null.

Both assignments compare the same float64 numbers with the same strict/non-strict inequalities, so a
pd exactly on a boundary gets the same grade in numpy and in Spark.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.sql import Column
from pyspark.sql import functions as F

from defaultrisk.errors import ConfigError

NO_GRADE = 0
# The default scale: 9 grades whose inner boundaries grow geometrically from 0.1% to 25%, a factor of
# about 2.2 per grade, rounded to two significant digits. A portfolio with a 1.4% base rate then has its
# mean near the middle (grade 5: 1.1%-2.3%) and room on both sides.
DEFAULT_FIRST_BOUNDARY = 0.001
DEFAULT_LAST_BOUNDARY = 0.25
DEFAULT_GRADES = 9


@dataclass(frozen=True)
class MasterScale:
    """Grade boundaries on pd (0, ..., 1), one label and one central pd per grade."""

    boundaries: tuple[float, ...]
    labels: tuple[str, ...]
    central_pd: tuple[float, ...]

    def __post_init__(self) -> None:
        validate_scale(self.boundaries, self.labels, self.central_pd)

    @property
    def grades(self) -> int:
        return len(self.labels)

    def bounds(self, grade: int) -> tuple[float, float]:
        """The pd interval of grade `grade` (1-based)."""
        return self.boundaries[grade - 1], self.boundaries[grade]

    def label(self, grade: int) -> str:
        return self.labels[grade - 1]

    def to_manifest(self) -> dict:
        """Plain JSON numbers, as the model manifest stores the scale."""
        return {
            "boundaries": list(self.boundaries),
            "labels": list(self.labels),
            "central_pd": list(self.central_pd),
        }

    @classmethod
    def from_manifest(cls, data: dict) -> MasterScale:
        """The scale a manifest recorded; `central_pd` may be left out (geometric means)."""
        try:
            boundaries = tuple(float(b) for b in data["boundaries"])
            labels = tuple(str(x) for x in data.get("labels") or default_labels(len(boundaries) - 1))
            central = data.get("central_pd")
            central_pd = tuple(float(c) for c in central) if central else geometric_centres(boundaries)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"master scale: not a scale: {exc}") from exc
        return cls(boundaries, labels, central_pd)


def default_labels(grades: int) -> tuple[str, ...]:
    """Labels 1, 2, ...: the number of the grade, as validators speak of them."""
    return tuple(str(g) for g in range(1, grades + 1))


def geometric_centres(boundaries: Sequence[float]) -> tuple[float, ...]:
    """Each grade's geometric mean of its bounds.

    The first grade starts at 0, where a geometric mean is 0: its lower bound is taken one step of
    the next grade's ratio below its upper bound (upper² / next upper).
    """
    inner = list(boundaries)
    if len(inner) < 3 or inner[1] <= 0:
        raise ConfigError("master scale: needs at least 2 grades and a first boundary above 0")
    lower = [inner[1] ** 2 / inner[2], *inner[1:-1]]
    return tuple(math.sqrt(lo * hi) for lo, hi in zip(lower, inner[1:], strict=True))


def geometric_scale(
    first: float = DEFAULT_FIRST_BOUNDARY,
    last: float = DEFAULT_LAST_BOUNDARY,
    grades: int = DEFAULT_GRADES,
    digits: int = 2,
) -> MasterScale:
    """`grades` grades whose inner boundaries grow geometrically from `first` to `last`.

    Boundaries are rounded to `digits` significant digits, so the manifest shows readable numbers.
    """
    if grades < 3 or not 0.0 < first < last < 1.0:
        raise ConfigError(f"master scale: need grades >= 3 and 0 < first < last < 1, not {first}, {last}")
    ratio = (last / first) ** (1.0 / (grades - 2))
    inner = [float(f"{first * ratio**k:.{digits}g}") for k in range(grades - 1)]
    boundaries = (0.0, *inner, 1.0)
    return MasterScale(boundaries, default_labels(grades), geometric_centres(boundaries))


def validate_scale(boundaries: Sequence[float], labels: Sequence[str], central_pd: Sequence[float]) -> None:
    """Raise ConfigError naming the first thing wrong with a scale."""
    b = list(boundaries)
    if len(b) < 3:
        raise ConfigError(f"master scale: needs at least 2 grades, got {max(len(b) - 1, 0)}")
    if not all(isinstance(x, float) and math.isfinite(x) for x in b):
        raise ConfigError("master scale: boundaries must be finite numbers")
    if b[0] != 0.0 or b[-1] != 1.0:
        raise ConfigError(f"master scale: boundaries must start at 0 and end at 1, not {b[0]} .. {b[-1]}")
    if any(hi <= lo for lo, hi in itertools.pairwise(b)):
        raise ConfigError(f"master scale: boundaries must increase strictly: {b}")
    grades = len(b) - 1
    if len(labels) != grades or len(set(labels)) != grades or not all(labels):
        raise ConfigError(f"master scale: needs {grades} distinct non-empty labels, got {list(labels)}")
    if len(central_pd) != grades:
        raise ConfigError(f"master scale: needs {grades} central pd, got {len(central_pd)}")
    for g, (c, lo, hi) in enumerate(zip(central_pd, b, b[1:], strict=False), start=1):
        if not lo <= c <= hi:
            raise ConfigError(f"master scale: grade {g}'s central pd {c} is outside [{lo}, {hi}]")


DEFAULT_SCALE = geometric_scale()


def grade_of(pd_values, scale: MasterScale = DEFAULT_SCALE) -> np.ndarray:
    """Each pd's grade (int64, 1-based); 0 for a missing, NaN or out-of-range pd."""
    values = np.asarray(pd_values, dtype=np.float64)
    inner = np.asarray(scale.boundaries[1:-1], dtype=np.float64)
    # side="right": a pd equal to a boundary belongs to the grade that starts there.
    grades = np.searchsorted(inner, values, side="right") + 1
    valid = (values >= 0.0) & (values <= 1.0)  # False for NaN
    return np.where(valid, grades, NO_GRADE).astype(np.int64)


def grade_column(pd_col: Column | str, scale: MasterScale = DEFAULT_SCALE) -> Column:
    """The Spark column of each pd's grade (int, 1-based), null for a null or out-of-range pd.

    A `CASE WHEN pd < b1 THEN 1 WHEN pd < b2 THEN 2 ...` chain: the same comparisons as `grade_of`.
    """
    pd_col = F.col(pd_col) if isinstance(pd_col, str) else pd_col
    chain = F.when((pd_col < 0.0) | (pd_col > 1.0) | F.isnan(pd_col), F.lit(None))
    for grade, upper in enumerate(scale.boundaries[1:-1], start=1):
        chain = chain.when(pd_col < F.lit(float(upper)), F.lit(grade))
    return chain.when(pd_col <= 1.0, F.lit(scale.grades)).cast("int")


def scale_from_manifest(manifest: dict) -> MasterScale:
    """The model's master scale, or the default scale for a model trained before scales existed."""
    data = manifest.get("master_scale")
    return MasterScale.from_manifest(data) if data else DEFAULT_SCALE
