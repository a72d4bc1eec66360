"""Split a raw customer table into typed valid rows and rejected rows that say why.

Nothing is lost: every input row comes out of `validate` once, with `reason` null (valid) or naming
every problem found in it (`column: problem`, joined by `; `).

The checks are generated from the schema as Spark SQL expressions: a handful of JVM calls build the
whole plan, where column-by-column Python objects would cost thousands of round trips per run.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
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
_MAX_WHOLE = 2**53
_COPIES = "_copies"


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _present(column: str) -> str:
    """SQL: the trimmed text of `column`, or NULL when it is empty or `NA`."""
    tokens = ", ".join(_lit(t) for t in MISSING_TOKENS)
    return f"CASE WHEN upper(trim({_q(column)})) IN ({tokens}) THEN NULL ELSE trim({_q(column)}) END"


def _text(name: str) -> str:
    return f"_text_{name}"


def _value(name: str) -> str:
    return f"_value_{name}"


def _parse(feature: Feature) -> list[str]:
    """First pass: each value trimmed and cast once (`_value_*` null for a missing or unparsable value)."""
    text = _present(feature.name)
    cast = {CATEGORY: text, FLAG: f"try_cast({text} AS BOOLEAN)"}.get(
        feature.kind, f"try_cast({text} AS DOUBLE)"
    )
    return [f"{text} AS {_q(_text(feature.name))}", f"{cast} AS {_q(_value(feature.name))}"]


def _number(value: float) -> str:
    return f"{value:g}"


def _check(feature: Feature) -> tuple[str, str | None]:
    """Second pass: the typed value of one feature, and its problem (the first that applies), if any."""
    text, value = _q(_text(feature.name)), _q(_value(feature.name))
    problems: list[tuple[str, str]] = []
    if feature.kind == FLAG:
        problems.append((f"{text} IS NOT NULL AND {value} IS NULL", "not true/false"))
    elif feature.kind != CATEGORY:
        problems.append((f"{text} IS NOT NULL AND {value} IS NULL", "not a number"))
        # Checked before the ranges: Spark orders NaN above every number.
        problems.append((f"isnan({value}) OR abs({value}) = double('inf')", "not a finite number"))
        if feature.kind in (COUNT, CODE):
            problems.append((f"{value} != floor({value})", "not a whole number"))
            problems.append((f"abs({value}) > {_MAX_WHOLE}", "too large"))
        if feature.minimum is not None:
            problems.append((f"{value} < {feature.minimum!r}", f"below minimum {_number(feature.minimum)}"))
        if feature.maximum is not None:
            problems.append((f"{value} > {feature.maximum!r}", f"above maximum {_number(feature.maximum)}"))
    typed = (
        value
        if feature.kind in (CATEGORY, FLAG)
        else f"try_cast({value} AS {feature.spark_type.simpleString()})"
    )
    if not problems:
        return f"{typed} AS {_q(feature.name)}", None
    branches = " ".join(f"WHEN {cond} THEN {_lit(f'{feature.name}: {what}')}" for cond, what in problems)
    return f"{typed} AS {_q(feature.name)}", f"CASE {branches} END"


def _uuid_reasons() -> list[str]:
    uuid = _q(UUID)
    return [
        f"CASE WHEN {uuid} IS NULL THEN {_lit(f'{UUID}: missing')} END",
        f"CASE WHEN NOT {uuid} RLIKE {_lit(UUID_PATTERN)} THEN {_lit(f'{UUID}: malformed')} END",
        f"CASE WHEN {uuid} IS NOT NULL AND {_COPIES} > 1 "
        f"THEN concat({_lit(f'{UUID}: duplicate (')}, {_COPIES}, ' rows)') END",
    ]


def _label() -> tuple[str, str]:
    text = _present(DEFAULT)
    bad = f"({text} IS NOT NULL AND coalesce(try_cast({text} AS DOUBLE) NOT IN (0.0, 1.0), true))"
    typed = f"CASE WHEN {bad} THEN NULL ELSE CAST(try_cast({text} AS DOUBLE) AS INT) END AS {_q(DEFAULT)}"
    reason = f"CASE WHEN {bad} THEN {_lit(f'{DEFAULT}: not 0 or 1')} END AS {_q(REASON)}"
    return typed, reason


def validate(df: DataFrame, labelled: bool = False) -> DataFrame:
    """Type every column of a raw table and give each row its `reason` (null when valid).

    `df` has the schema's input columns as text plus `raw_line` (see `io.select_known_columns`).
    The result has `uuid`, the typed features, `default` (typed when `labelled`, else null), `reason`
    and `_raw`, the values as read. A missing `default` is not a problem: it marks an unlabelled row.
    """
    label, label_reason = (
        _label() if labelled else (f"CAST(NULL AS INT) AS {_q(DEFAULT)}", f"NULL AS {REASON}")
    )
    raw = ", ".join(_q(c) for c in (*INPUT_COLUMNS, RAW_LINE))
    parsed = df.selectExpr(
        f"{_present(UUID)} AS {_q(UUID)}",
        *[expr for feature in FEATURES for expr in _parse(feature)],
        label,
        label_reason,
        f"struct({raw}) AS {RAW}",
    ).selectExpr("*", f"count(1) OVER (PARTITION BY lower({_q(UUID)})) AS {_COPIES}")

    typed, reasons = [], [f"CASE WHEN {RAW}.{RAW_LINE} IS NOT NULL THEN 'line: wrong number of fields' END"]
    reasons.extend(_uuid_reasons())
    for feature in FEATURES:
        column, reason = _check(feature)
        typed.append(column)
        if reason:
            reasons.append(reason)
    joined = f"concat_ws({_lit(REASON_SEPARATOR)}, {', '.join(reasons)}, {_q(REASON)})"
    return parsed.selectExpr(
        _q(UUID),
        *typed,
        _q(DEFAULT),
        f"CASE WHEN {joined} = '' THEN NULL ELSE {joined} END AS {_q(REASON)}",
        RAW,
    )


def valid_rows(validated: DataFrame) -> DataFrame:
    """The rows that passed, without the bookkeeping columns."""
    return validated.filter(F.col(REASON).isNull()).drop(REASON, RAW)


def rejected_rows(validated: DataFrame) -> DataFrame:
    """The rows that failed: their values as read, every column as text, and the reason."""
    return validated.filter(F.col(REASON).isNotNull()).select(f"{RAW}.*", REASON)
