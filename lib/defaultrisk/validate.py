"""Split a raw customer table into typed valid rows and rejected rows that say why.

Nothing is lost: every input row comes out of `validate` once, with `reason` null (valid) or naming
every problem found in it (`column: problem`, joined by `; `).

The checks are generated from the schema as Spark SQL expressions: a handful of JVM calls build the
whole plan, where column-by-column Python objects would cost thousands of round trips per run. Text
columns (CSV, or Parquet written as strings) are parsed; typed Parquet columns are checked as they are,
without a round trip through text.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from defaultrisk import sql
from defaultrisk.errors import InputError
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
    REQUIRED_COLUMNS,
    UUID,
    UUID_PATTERN,
    Feature,
)
from defaultrisk.schema_rules import (
    DUPLICATE_CLOSE,
    DUPLICATE_OPEN,
    MALFORMED,
    MAX_WHOLE,
    MISSING,
    MISSING_TOKENS,
    NOT_A_LABEL,
    NOT_A_NUMBER,
    NOT_FINITE,
    NOT_TRUE_FALSE,
    NOT_WHOLE,
    REASON_SEPARATOR,
    TOO_LARGE,
    WRONG_NUMBER_OF_FIELDS,
    bounds,
    problem,
)

RAW = "_raw_"  # prefix of the row's values as read, kept (and made text) for the rejects output
_RAW_COLUMNS = (*INPUT_COLUMNS, RAW_LINE)
_COPIES = "_copies"
_KEY = "_key"
SKIPPED = "_skipped"  # a labelled row in an --unlabeled-only run: neither scored nor rejected
log = logging.getLogger(__name__)
_NUMBERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
_WHOLE_NUMBERS = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)


def _present(column: str) -> str:
    """SQL: the trimmed text of `column`, or NULL when it is empty or `NA`."""
    tokens = ", ".join(sql.text(t) for t in MISSING_TOKENS)
    text = f"CAST({sql.name(column)} AS STRING)"
    return f"CASE WHEN upper(trim({text})) IN ({tokens}) THEN NULL ELSE trim({text}) END"


def _to_double(text: str) -> str:
    """SQL: a trimmed text as a double, or NULL unless written in a documented number format.

    Spark's cast is Java's `Double.parseDouble` (plus `inf`): beyond plain decimals with a sign and an
    exponent, and NaN and infinity, it takes only a float-type suffix (`5d`, `7F`) and hexadecimal
    (`0x1p3`). Refusing those two is the documented format, and two cheap tests on every value where
    a regex would cost a match.
    """
    suffix = f"right({text}, 1) IN ('d', 'D', 'f', 'F') AND lower({text}) NOT IN ('inf', '+inf', '-inf')"
    java_only = f"({suffix}) OR instr({text}, 'x') > 0 OR instr({text}, 'X') > 0"
    return f"CASE WHEN NOT ({java_only}) THEN try_cast({text} AS DOUBLE) END"


def _text(name: str) -> str:
    return f"_text_{name}"


def _value(name: str) -> str:
    return f"_value_{name}"


def _parse(feature: Feature, dtype: T.DataType) -> tuple[list[str], bool]:
    """First pass: each value typed once (`_value_*` null for a missing or unparsable value).

    Returns the expressions and whether a present value can fail to parse (text input, or a number
    where true/false belongs); a typed number needs no parsing, only the checks of `_check`.
    """
    column = sql.name(feature.name)
    if feature.kind == CATEGORY or not isinstance(dtype, (*_NUMBERS, T.BooleanType)):
        text = _present(feature.name)
        cast = {CATEGORY: text, FLAG: f"try_cast({text} AS BOOLEAN)"}.get(feature.kind, _to_double(text))
        return [
            f"{text} AS {sql.name(_text(feature.name))}",
            f"{cast} AS {sql.name(_value(feature.name))}",
        ], True
    if feature.kind == FLAG and not isinstance(dtype, T.BooleanType):
        value = f"CASE WHEN {column} = 0 THEN false WHEN {column} = 1 THEN true END"
        return [
            f"{column} AS {sql.name(_text(feature.name))}",
            f"{value} AS {sql.name(_value(feature.name))}",
        ], True
    if feature.kind == FLAG:
        value = column
    elif feature.kind in (COUNT, CODE) and isinstance(dtype, _WHOLE_NUMBERS):
        value = f"CAST({column} AS BIGINT)"  # already whole: nothing to check but the range
    else:
        value = f"CAST({column} AS DOUBLE)"
    return [f"{value} AS {sql.name(_value(feature.name))}"], False


def _check(feature: Feature, dtype: T.DataType, parsed: bool) -> tuple[str, str | None]:
    """Second pass: the typed value of one feature, and its problem (the first that applies), if any."""
    text, value = sql.name(_text(feature.name)), sql.name(_value(feature.name))
    problems: list[tuple[str, str]] = []
    if feature.kind == FLAG:
        if parsed:
            problems.append((f"{text} IS NOT NULL AND {value} IS NULL", NOT_TRUE_FALSE))
    elif feature.kind != CATEGORY:
        if parsed:
            problems.append((f"{text} IS NOT NULL AND {value} IS NULL", NOT_A_NUMBER))
        if not isinstance(dtype, _WHOLE_NUMBERS):  # Checked before the ranges: NaN sorts above all numbers.
            problems.append((f"isnan({value}) OR abs({value}) = double('inf')", NOT_FINITE))
        if feature.kind in (COUNT, CODE) and not isinstance(dtype, _WHOLE_NUMBERS):
            # "too large" first: the first matching branch wins, and floor() of 1e19 or more overflows
            # a long under ANSI arithmetic, which would fail the whole run.
            problems.append((f"abs({value}) > {MAX_WHOLE}", TOO_LARGE))
            problems.append((f"{value} != floor({value})", NOT_WHOLE))
        problems.extend((f"{value} {op} {bound!r}", what) for op, bound, what in bounds(feature))
    typed = (
        value
        if feature.kind in (CATEGORY, FLAG)
        else f"try_cast({value} AS {feature.spark_type.simpleString()})"
    )
    if not problems:
        return f"{typed} AS {sql.name(feature.name)}", None
    branches = " ".join(
        f"WHEN {cond} THEN {sql.text(problem(feature.name, what))}" for cond, what in problems
    )
    return f"{typed} AS {sql.name(feature.name)}", f"CASE {branches} END"


def _uuid_reasons() -> list[str]:
    uuid = sql.name(UUID)
    return [
        f"CASE WHEN {uuid} IS NULL THEN {sql.text(problem(UUID, MISSING))} END",
        f"CASE WHEN NOT {uuid} RLIKE {sql.text(UUID_PATTERN)} THEN {sql.text(problem(UUID, MALFORMED))} END",
        f"CASE WHEN {uuid} IS NOT NULL AND {_COPIES} > 1 "
        f"THEN concat({sql.text(problem(UUID, DUPLICATE_OPEN))}, {_COPIES}, {sql.text(DUPLICATE_CLOSE)}) END",
    ]


def _label() -> tuple[str, str]:
    text = _present(DEFAULT)
    number = _to_double(text)
    bad = f"({text} IS NOT NULL AND coalesce({number} NOT IN (0.0, 1.0), true))"
    typed = f"CASE WHEN {bad} THEN NULL ELSE CAST({number} AS INT) END AS {sql.name(DEFAULT)}"
    reason = f"CASE WHEN {bad} THEN {sql.text(problem(DEFAULT, NOT_A_LABEL))} END AS {sql.name(REASON)}"
    return typed, reason


def _key() -> str:
    """SQL: the key duplicates are found by: the uuid as given, trimmed, in lower case."""
    return f"lower({_present(UUID)})"


def duplicate_keys(df: DataFrame) -> list[tuple[str, int]]:
    """Every uuid (as `_key` gives it) held by more than one row, with its number of rows.

    Two small jobs instead of a shuffle of whole rows: rows are first counted by a 64-bit hash of their
    key (eight bytes a row cross the network, not the row); only the rare hashes seen more than once
    are then resolved to their exact keys.
    """
    keyed = df.selectExpr(f"{_key()} AS {_KEY}").where(f"{_KEY} IS NOT NULL")
    hashes = [
        r[0]
        for r in keyed.groupBy(F.xxhash64(_KEY).alias("h")).count().where("count > 1").select("h").collect()
    ]
    if not hashes:
        return []
    exact = keyed.where(F.xxhash64(_KEY).isin(hashes)).groupBy(_KEY).count().where("count > 1")
    return sorted((r[0], int(r[1])) for r in exact.collect())


def _with_copies(df: DataFrame, duplicates: list[tuple[str, int]]) -> DataFrame:
    if not duplicates:
        return df.withColumn(_COPIES, F.lit(1).cast("long"))
    copies = df.sparkSession.createDataFrame(duplicates, f"{_KEY} string, {_COPIES} long")
    keyed = df.withColumn(_KEY, F.expr(_key()))
    return (
        keyed.join(F.broadcast(copies), on=_KEY, how="left")
        .withColumn(_COPIES, F.coalesce(F.col(_COPIES), F.lit(1).cast("long")))
        .drop(_KEY)
    )


def validate(df: DataFrame, labelled: bool = False) -> DataFrame:
    """Type every column of a raw table and give each row its `reason` (null when valid).

    `df` has the schema's input columns (as text, or typed as a Parquet file holds them) plus
    `raw_line` (see `select_known_columns`). The result has `uuid`, the typed features, `default`
    (typed when `labelled`, else null), `reason` and the values as read (`_raw_*`). A missing
    `default` is not a problem: it marks an unlabelled row.

    Finding duplicated uuids runs two small Spark jobs now; the rest of the plan runs when used, and
    the values as read cost nothing unless rejected rows are read.
    """
    types = {field.name: field.dataType for field in df.schema.fields}
    label, label_reason = (
        _label() if labelled else (f"CAST(NULL AS INT) AS {sql.name(DEFAULT)}", f"NULL AS {REASON}")
    )
    first, parsed = [], {}
    for feature in FEATURES:
        exprs, parsed[feature.name] = _parse(feature, types[feature.name])
        first.extend(exprs)
    with_copies = _with_copies(df, duplicate_keys(df))
    typed_rows = with_copies.selectExpr(
        f"{_present(UUID)} AS {sql.name(UUID)}",
        *first,
        label,
        label_reason,
        _COPIES,
        *[f"{sql.name(c)} AS {sql.name(RAW + c)}" for c in _RAW_COLUMNS],
    )

    line_problem = f"{sql.name(RAW + RAW_LINE)} IS NOT NULL"
    typed, reasons = [], [f"CASE WHEN {line_problem} THEN {sql.text(WRONG_NUMBER_OF_FIELDS)} END"]
    reasons.extend(_uuid_reasons())
    reasons.append(sql.name(REASON))
    for feature in FEATURES:
        column, reason = _check(feature, types[feature.name], parsed[feature.name])
        typed.append(column)
        if reason:
            reasons.append(reason)
    # Each check is its own small column, so the generated code stays in methods the JIT compiles;
    # a valid row (most rows) only tests them for null and builds no text.
    problems = [f"_problem_{i}" for i in range(len(reasons))]
    checked = typed_rows.selectExpr(
        sql.name(UUID),
        *typed,
        sql.name(DEFAULT),
        *[f"{reason} AS {name}" for reason, name in zip(reasons, problems, strict=True)],
        *[sql.name(RAW + c) for c in _RAW_COLUMNS],
    )
    any_problem = " OR ".join(f"{name} IS NOT NULL" for name in problems)
    joined = f"concat_ws({sql.text(REASON_SEPARATOR)}, {', '.join(problems)})"
    return checked.selectExpr(
        sql.name(UUID),
        *[sql.name(f.name) for f in FEATURES],
        sql.name(DEFAULT),
        f"CASE WHEN {any_problem} THEN {joined} END AS {sql.name(REASON)}",
        *[sql.name(RAW + c) for c in _RAW_COLUMNS],
    )


def raw_value(column: str) -> F.Column:
    """A column's value as read, as text (CSV text as given; a typed Parquet value cast to text)."""
    return F.col(sql.name(RAW + column)).cast("string")


def valid_rows(validated: DataFrame) -> DataFrame:
    """The rows that passed, without the bookkeeping columns."""
    return validated.filter(F.col(REASON).isNull()).drop(REASON, *[RAW + c for c in _RAW_COLUMNS])


def rejected_rows(validated: DataFrame) -> DataFrame:
    """The rows that failed: their values as read, every column as text, and the reason.

    The values become text only here, after the filter: only rejected rows pay for it.
    """
    rejected = validated.filter(F.col(REASON).isNotNull())
    return rejected.select(*[raw_value(c).alias(c) for c in _RAW_COLUMNS], REASON)


def select_known_columns(df: DataFrame, required: tuple[str, ...]) -> DataFrame:
    """Fail naming every missing required column; drop (and log) columns the schema does not know.

    Returns the input columns of the schema (absent optional ones as nulls) plus `raw_line`.
    """
    present = [c for c in df.columns if c != RAW_LINE]
    missing = [c for c in required if c not in present]
    if missing:
        hint = ""
        if len(present) == 1 and "," in present[0]:
            hint = " (the header is one column: is the file comma-separated? expected ';')"
        raise InputError(f"input is missing {len(missing)} required column(s): {', '.join(missing)}{hint}")
    extra = [c for c in present if c not in INPUT_COLUMNS]
    if extra:
        log.warning("ignoring %d column(s) the schema does not know: %s", len(extra), ", ".join(extra))
    return df.select(
        *[F.col(c) if c in present else F.lit(None).cast("string").alias(c) for c in INPUT_COLUMNS],
        F.col(RAW_LINE),
    )


def entry_contract(raw: DataFrame, labelled: bool, skip_labelled: bool = False) -> DataFrame:
    """The input's known columns, typed and checked (`validate`), plus `SKIPPED`.

    `SKIPPED` marks a labelled row in a run that scores only unlabelled rows: neither scored nor
    rejected, only counted. Only a valid label (0 or 1) makes a row labelled: anything else in
    `default` is rejected as `default: not 0 or 1`, never skipped unseen.
    """
    required = (*REQUIRED_COLUMNS, DEFAULT) if labelled else REQUIRED_COLUMNS
    known = select_known_columns(raw, required)
    validated = validate(known, labelled=labelled or skip_labelled)
    skipped = F.col(DEFAULT).isNotNull() if skip_labelled else F.lit(False)
    return validated.withColumn(SKIPPED, skipped)
