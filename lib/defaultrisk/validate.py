"""Split a raw customer table into typed valid rows and rejected rows that say why.

Nothing is lost: every input row comes out of `validate` once, with `reason` null (valid) or naming
every problem found in it (`column: problem`, joined by `; `).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from defaultrisk.schema import (
    CATEGORY,
    CODE,
    COUNT,
    DEFAULT,
    FEATURES,
    FLAG,
    INPUT_COLUMNS,
    RAW_LINE,
    REASON,
    UUID,
    UUID_PATTERN,
    Feature,
)

RAW = "_raw"  # struct of the row's values exactly as read, kept for the rejects output
REASON_SEPARATOR = "; "
MISSING_TOKENS = ("", "NA")
# Whole-number columns are stored as long; beyond 2**53 a double no longer holds every whole number.
_MAX_WHOLE = float(2**53)


def _is_missing(text: Column) -> Column:
    return text.isNull() | F.upper(text).isin(*MISSING_TOKENS)


def _number(value: float) -> str:
    return f"{value:g}"


def _parse_feature(feature: Feature) -> tuple[Column, list[Column]]:
    """The typed value of one feature, and the problems that make its row a reject."""
    text = F.trim(F.col(feature.name))
    missing = _is_missing(text)
    problems: list[Column] = []

    def problem(condition: Column, what: str) -> None:
        problems.append(F.when(~missing & condition, F.lit(f"{feature.name}: {what}")))

    if feature.kind == CATEGORY:
        return F.when(missing, None).otherwise(text).alias(feature.name), problems
    if feature.kind == FLAG:
        flag = text.try_cast("boolean")
        problem(flag.isNull(), "not true/false")
        return F.when(missing, None).otherwise(flag).alias(feature.name), problems

    number = text.try_cast("double")
    problem(number.isNull(), "not a number")
    problem(F.isnan(number) | (F.abs(number) == float("inf")), "not a finite number")
    if feature.kind in (COUNT, CODE):
        problem(number != F.floor(number), "not a whole number")
        problem(F.abs(number) > _MAX_WHOLE, "too large")
    if feature.minimum is not None:
        problem(number < feature.minimum, f"below minimum {_number(feature.minimum)}")
    if feature.maximum is not None:
        problem(number > feature.maximum, f"above maximum {_number(feature.maximum)}")
    typed = number.try_cast(feature.spark_type)
    return F.when(missing, None).otherwise(typed).alias(feature.name), problems


def _parse_uuid() -> tuple[Column, list[Column]]:
    text = F.trim(F.col(UUID))
    missing = _is_missing(text)
    copies = F.count(F.lit(1)).over(Window.partitionBy(F.lower(text)))
    problems = [
        F.when(missing, F.lit(f"{UUID}: missing")),
        F.when(~missing & ~text.rlike(UUID_PATTERN), F.lit(f"{UUID}: malformed")),
        F.when(~missing & (copies > 1), F.concat(F.lit(f"{UUID}: duplicate ("), copies, F.lit(" rows)"))),
    ]
    return text.alias(UUID), problems


def _parse_label() -> tuple[Column, list[Column]]:
    text = F.trim(F.col(DEFAULT))
    missing = _is_missing(text)
    label = text.try_cast("double")
    bad = ~missing & (label.isNull() | ~label.isin(0.0, 1.0))
    typed = F.when(missing | bad, None).otherwise(label.cast("int"))
    return typed.alias(DEFAULT), [F.when(bad, F.lit(f"{DEFAULT}: not 0 or 1"))]


def validate(df: DataFrame, labelled: bool = False) -> DataFrame:
    """Type every column of a raw table and give each row its `reason` (null when valid).

    `df` has the schema's input columns as text plus `raw_line` (see `io.select_known_columns`).
    The result has `uuid`, the typed features, `default` (typed when `labelled`, else null), `reason`
    and `_raw`, the values as read. A missing `default` is not a problem: it marks an unlabelled row.
    """
    uuid_col, problems = _parse_uuid()
    typed = [uuid_col]
    for feature in FEATURES:
        column, feature_problems = _parse_feature(feature)
        typed.append(column)
        problems.extend(feature_problems)
    if labelled:
        label, label_problems = _parse_label()
        typed.append(label)
        problems.extend(label_problems)
    else:
        typed.append(F.lit(None).cast("int").alias(DEFAULT))
    problems.insert(0, F.when(F.col(RAW_LINE).isNotNull(), F.lit("line: wrong number of fields")))

    reasons = F.concat_ws(REASON_SEPARATOR, F.array(*problems))
    raw = F.struct(*[F.col(c) for c in (*INPUT_COLUMNS, RAW_LINE)]).alias(RAW)
    return df.select(*typed, F.when(reasons == "", None).otherwise(reasons).alias(REASON), raw)


def valid_rows(validated: DataFrame) -> DataFrame:
    """The rows that passed, without the bookkeeping columns."""
    return validated.filter(F.col(REASON).isNull()).drop(REASON, RAW)


def rejected_rows(validated: DataFrame) -> DataFrame:
    """The rows that failed: their values as read, every column as text, and the reason."""
    return validated.filter(F.col(REASON).isNotNull()).select(f"{RAW}.*", REASON)
