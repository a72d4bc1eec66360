"""What a snapshot holds besides clean customers: invalid rows to reject, and a category never seen before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from defaultrisk.schema import UUID

UNSEEN_CATEGORY = "Space travel"
UNSEEN_CATEGORY_SHARE = 0.001
UNSEEN_CATEGORY_MIN_ROWS = 200

MALFORMED_UUID = "malformed_uuid"
EMPTY_UUID = "empty_uuid"
DUPLICATE_UUID = "duplicate_uuid"
NEGATIVE_COUNT = "negative_count"
AGE_OUT_OF_RANGE = "age_out_of_range"
NOT_A_NUMBER = "not_a_number"
NOT_WHOLE = "not_whole"
BAD_KINDS = (
    MALFORMED_UUID,
    EMPTY_UUID,
    DUPLICATE_UUID,
    NEGATIVE_COUNT,
    AGE_OUT_OF_RANGE,
    NOT_A_NUMBER,
    NOT_WHOLE,
)
BAD_AGES = (150, 12)
BAD_NUMBER_COLUMN = "max_paid_inv_0_12m"
NEGATIVE_COUNT_COLUMN = "num_unpaid_bills"
NOT_WHOLE_COLUMN = "num_active_inv"
# The column and value each kind writes; a duplicated uuid and a bad age depend on the row.
BAD_VALUES = {
    MALFORMED_UUID: (UUID, "not-a-uuid"),
    EMPTY_UUID: (UUID, ""),
    NEGATIVE_COUNT: (NEGATIVE_COUNT_COLUMN, -1),
    NOT_A_NUMBER: (BAD_NUMBER_COLUMN, "abc"),
    NOT_WHOLE: (NOT_WHOLE_COLUMN, 2.5),
}


@dataclass(frozen=True)
class Damage:
    """Rows to break and how, rows whose uuid gets copied, and rows that get the unseen category."""

    bad_positions: np.ndarray
    kinds: list[str]
    duplicate_targets: np.ndarray
    unseen_rows: np.ndarray

    def rejected_rows(self) -> np.ndarray:
        """Every invalid row: both rows of a duplicated uuid are rejected."""
        return np.sort(np.concatenate([self.bad_positions, self.duplicate_targets])).astype(np.int64)


def plan_damage(rng: np.random.Generator, n: int, bad_rows: int) -> Damage:
    """Spread `bad_rows` invalid rows over `n + bad_rows` rows, cycling through `BAD_KINDS`."""
    positions = rng.permutation(n + bad_rows)
    bad_positions = np.sort(positions[:bad_rows])
    kinds = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad_rows)]
    duplicates = kinds.count(DUPLICATE_UUID)
    if duplicates > n:
        raise ValueError(f"{duplicates} duplicated uuids need at least as many customers, got n={n}")
    clean = positions[bad_rows:]
    unseen_count = max(int(n >= UNSEEN_CATEGORY_MIN_ROWS), round(UNSEEN_CATEGORY_SHARE * n))
    return Damage(
        bad_positions=bad_positions,
        kinds=kinds,
        duplicate_targets=clean[:duplicates],
        unseen_rows=clean[duplicates : duplicates + unseen_count],
    )


def apply_damage(df: pd.DataFrame, damage: Damage) -> None:
    """Write the unseen category and the invalid values into `df` in place."""
    df.iloc[damage.unseen_rows, df.columns.get_loc("merchant_category")] = UNSEEN_CATEGORY
    # A numeric column would refuse text or change its dtype for a fraction; an object column takes both.
    if NOT_A_NUMBER in damage.kinds:
        _as_object(df, BAD_NUMBER_COLUMN)
    if NOT_WHOLE in damage.kinds:
        _as_object(df, NOT_WHOLE_COLUMN)
    donors = iter(damage.duplicate_targets)
    for i, (row, kind) in enumerate(zip(damage.bad_positions, damage.kinds, strict=True)):
        column, value = _bad_value(df, kind, i, donors)
        df.iat[row, df.columns.get_loc(column)] = value


def _bad_value(df: pd.DataFrame, kind: str, index: int, donors: Iterator[int]) -> tuple[str, object]:
    """The column and value that make a row invalid as `kind`; `index` counts the bad rows so far."""
    if kind == DUPLICATE_UUID:
        return UUID, df.iat[next(donors), df.columns.get_loc(UUID)]
    if kind == AGE_OUT_OF_RANGE:
        return "age", BAD_AGES[(index // len(BAD_KINDS)) % len(BAD_AGES)]
    return BAD_VALUES[kind]


def _as_object(df: pd.DataFrame, column: str) -> None:
    if df[column].dtype != object:
        df[column] = pd.Series(df[column].to_numpy().tolist(), index=df.index, dtype=object)
