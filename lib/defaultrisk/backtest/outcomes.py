"""The outcomes table: per customer the date a default was observed, validated like any input.

Columns: `uuid`, `default_date` (YYYY-MM-DD; missing (`NA`, empty) = no default observed) and
optionally `observed_until` (YYYY-MM-DD: the last day the table is complete for). CSV in the original
format (`;`, `NA`) or Parquet (text, date or timestamp columns).

Coverage, decided once per run: `--observed-until` if given, else the `observed_until` column, which
must then hold one date on every valid row. A scored customer without an outcome record counts as a
non-defaulter for a snapshot only if that date is on or after the end of the snapshot's performance
window; otherwise the snapshot is not backtested (see `window_status`). With neither, the run
stops (exit 2): absence of a record proves nothing without a declared coverage.

Every row comes out valid or rejected with a `reason` (`column: problem`, joined by `; `). A customer
whose outcome rows were rejected has an unknown outcome: it is left out of the backtest and counted,
never taken for a non-defaulter.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from defaultrisk.dates import add_months
from defaultrisk.errors import ConfigError, InputError
from defaultrisk.read import read_raw
from defaultrisk.schema import RAW_LINE, REASON, UUID, UUID_PATTERN

DEFAULT_DATE = "default_date"
OBSERVED_UNTIL = "observed_until"
KEY = "outcome_key"  # the uuid trimmed, in lower case: how outcomes meet scored rows
KNOWN = "outcome_known"  # false: the customer's outcome rows were rejected
COLUMNS = (UUID, DEFAULT_DATE, OBSERVED_UNTIL)
_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_RAW = "_raw_"
_COPIES = "_copies"


def read_outcomes(spark: SparkSession, path: str, input_format: str = "auto") -> DataFrame:
    """The outcomes table as read (CSV text or typed Parquet) with `raw_line`; fails on missing columns."""
    df = read_raw(spark, path, input_format)
    present = [c for c in df.columns if c != RAW_LINE]
    missing = [c for c in (UUID, DEFAULT_DATE) if c not in present]
    if missing:
        raise InputError(f"outcomes {path} are missing required column(s): {', '.join(missing)}")
    optional = F.col(OBSERVED_UNTIL) if OBSERVED_UNTIL in present else F.lit(None).cast("string")
    return df.select(UUID, DEFAULT_DATE, optional.alias(OBSERVED_UNTIL), RAW_LINE)


def _present(column: str) -> F.Column:
    text = F.trim(F.col(column).cast("string"))
    return F.when(F.upper(text).isin("", "NA"), None).otherwise(text)


def _as_date(df: DataFrame, column: str) -> tuple[F.Column, F.Column]:
    """The column as a date, and its problem: a value present but not a date (YYYY-MM-DD)."""
    dtype = df.schema[column].dataType
    if isinstance(dtype, T.DateType):
        return F.col(column), F.lit(None).cast("string")
    if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
        return F.to_date(F.col(column)), F.lit(None).cast("string")
    text = _present(column)
    # The pattern first: a plain cast would also take "2025" or "2025-3" as dates.
    value = F.when(text.rlike(_DATE_PATTERN), F.expr(f"try_cast(trim(`{column}`) AS DATE)"))
    problem = F.when(text.isNotNull() & value.isNull(), F.lit(f"{column}: not a date (YYYY-MM-DD)"))
    return value, problem


def validate_outcomes(raw: DataFrame) -> DataFrame:
    """Typed outcomes with `reason` (null when valid), the key, and the values as read (`_raw_*`)."""
    default_date, default_problem = _as_date(raw, DEFAULT_DATE)
    observed, observed_problem = _as_date(raw, OBSERVED_UNTIL)
    uuid = _present(UUID)
    key = F.lower(uuid)
    copies = F.count(F.lit(1)).over(Window.partitionBy(key))
    typed = raw.select(
        uuid.alias(UUID),
        key.alias(KEY),
        default_date.alias(DEFAULT_DATE),
        observed.alias(OBSERVED_UNTIL),
        F.when(uuid.isNotNull(), copies).alias(_COPIES),
        default_problem.alias("_p_default"),
        observed_problem.alias("_p_observed"),
        *[F.col(c).cast("string").alias(_RAW + c) for c in (*COLUMNS, RAW_LINE)],
    )
    problems = [
        F.when(F.col(_RAW + RAW_LINE).isNotNull(), F.lit("line: wrong number of fields")),
        F.when(F.col(UUID).isNull(), F.lit(f"{UUID}: missing")),
        F.when(~F.col(UUID).rlike(UUID_PATTERN), F.lit(f"{UUID}: malformed")),
        F.when(
            F.col(_COPIES) > 1,
            F.concat(F.lit(f"{UUID}: duplicate ("), F.col(_COPIES).cast("string"), F.lit(" rows)")),
        ),
        F.col("_p_default"),
        F.col("_p_observed"),
        F.when(
            F.col(DEFAULT_DATE) > F.col(OBSERVED_UNTIL),
            F.concat(F.lit(f"{DEFAULT_DATE}: after {OBSERVED_UNTIL} "), F.col(OBSERVED_UNTIL).cast("string")),
        ),
    ]
    joined = F.concat_ws("; ", *problems)
    return typed.select(
        UUID,
        KEY,
        DEFAULT_DATE,
        OBSERVED_UNTIL,
        F.when(joined != "", joined).alias(REASON),
        *[_RAW + c for c in (*COLUMNS, RAW_LINE)],
    )


def rejected_outcomes(validated: DataFrame) -> DataFrame:
    """The rejected rows: their values as read, as text, and the reason."""
    return validated.where(F.col(REASON).isNotNull()).select(
        *[F.col(_RAW + c).alias(c) for c in (*COLUMNS, RAW_LINE)], REASON
    )


def outcome_keys(validated: DataFrame) -> DataFrame:
    """One row per customer the outcomes speak of: `outcome_key`, `default_date`, `outcome_known`.

    Rejected rows with a well-formed uuid give their customer an unknown outcome (all copies of a
    duplicated uuid are rejected, so a key is either known or unknown, never both).
    """
    valid = validated.where(F.col(REASON).isNull()).select(KEY, DEFAULT_DATE, F.lit(True).alias(KNOWN))
    unknown = (
        validated.where(F.col(REASON).isNotNull() & F.col(UUID).rlike(UUID_PATTERN))
        .select(KEY)
        .distinct()
        .select(KEY, F.lit(None).cast("date").alias(DEFAULT_DATE), F.lit(False).alias(KNOWN))
    )
    return valid.unionByName(unknown)


def summarise(validated: DataFrame, observed_until: date | None) -> dict:
    """Row counts (one Spark job) and the table's coverage date; fails when coverage is undeclared."""
    counts = validated.agg(
        F.count(F.lit(1)).alias("input_rows"),
        F.count(F.when(F.col(REASON).isNull(), 1)).alias("valid_rows"),
        F.count(F.when(F.col(REASON).isNull() & F.col(DEFAULT_DATE).isNotNull(), 1)).alias("defaults"),
        F.collect_set(F.when(F.col(REASON).isNull(), F.col(OBSERVED_UNTIL))).alias("declared"),
    ).first()
    declared = sorted(counts["declared"])
    if observed_until is None:
        if not declared:
            raise ConfigError(
                "the outcomes declare no coverage: give --observed-until or an observed_until column "
                "(customers without a record cannot count as non-defaulters otherwise)"
            )
        if len(declared) > 1:
            raise InputError(
                f"the outcomes' observed_until holds {len(declared)} dates ({declared[0]} .. "
                f"{declared[-1]}): one table has one coverage; give --observed-until"
            )
        observed_until = declared[0]
    return {
        "input_rows": counts["input_rows"],
        "valid_rows": counts["valid_rows"],
        "rejected_rows": counts["input_rows"] - counts["valid_rows"],
        "defaults": counts["defaults"],
        OBSERVED_UNTIL: observed_until,
    }


BACKTESTED = "backtested"
WINDOW_OPEN = "window_open"  # the performance window has not ended by the as-of date
OUTCOMES_INCOMPLETE = "outcomes_incomplete"  # the outcomes do not cover the whole window


def window_status(day: date, months: int, as_of: date, observed_until: date) -> tuple[str, date]:
    """Whether a snapshot can be backtested, and the last day of its window."""
    end = add_months(day, months)
    if end >= as_of:
        return WINDOW_OPEN, end
    if end > observed_until:
        return OUTCOMES_INCOMPLETE, end
    return BACKTESTED, end
