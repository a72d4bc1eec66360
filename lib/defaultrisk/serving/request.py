"""From a JSON request body to the raw table `checks.check_table` reads.

A JSON value keeps its type where it has the feature's own (numbers for numbers, strings for
categories, booleans for `has_paid`): such a column goes to the checks typed, as a Parquet column
would. A column holding a value of another type goes as text, each value written as the original
file would hold it, so a string such as `"20"` or `"abc"` reads exactly as the nightly job reads it.
"""

from __future__ import annotations

import json
import math

import pyarrow as pa

from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES, FLAG, UUID, Feature

FIELDS = frozenset((UUID, *FEATURE_NAMES))
_SCALARS = (str, int, float, bool, type(None))


class BadRequest(Exception):
    """A body that is not a customer (or a list of them): the status and a one-line explanation."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def parse_json(body: bytes):
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequest(400, f"malformed JSON: {exc}") from exc


def check_shape(customer, where: str = "body") -> None:
    """Refuse what no snapshot row could be: not an object, unknown fields, nested values."""
    if not isinstance(customer, dict):
        raise BadRequest(422, f"{where}: a customer is a JSON object of uuid and features")
    unknown = sorted(set(customer) - FIELDS)
    if unknown:
        raise BadRequest(422, f"{where}: unknown field(s): {', '.join(unknown)}")
    nested = sorted(k for k, v in customer.items() if not isinstance(v, _SCALARS))
    if nested:
        raise BadRequest(
            422, f"{where}: {', '.join(nested)}: a value must be a number, text, true/false or null"
        )


def customers_table(customers: list[dict]) -> pa.Table:
    """The customers as one raw table: `uuid` and every feature (a left-out feature is null)."""
    columns = {UUID: pa.array([_text(c.get(UUID)) for c in customers], pa.string())}
    for feature in FEATURES:
        columns[feature.name] = _column(feature, [c.get(feature.name) for c in customers])
    return pa.table(columns)


def _column(feature: Feature, values: list) -> pa.Array:
    if feature.kind == CATEGORY:
        typed = all(v is None or isinstance(v, str) for v in values)
        return pa.array(values if typed else [_text(v) for v in values], pa.string())
    if feature.kind == FLAG:
        if all(v is None or isinstance(v, bool) for v in values):
            return pa.array(values, pa.bool_())
        return pa.array([_text(v) for v in values], pa.string())
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return pa.array([None if v is None else _double(v) for v in values], pa.float64())
    return pa.array([_text(v) for v in values], pa.string())


def _double(value: int | float) -> float:
    """A JSON number as the double Java would parse from its text (correctly rounded, or infinite)."""
    try:
        return float(value)
    except OverflowError:  # an integer beyond the largest double
        return math.copysign(math.inf, value)


def _text(value) -> str | None:
    """A JSON value as the original file would write it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int) else repr(value)
