"""The entry contract on Spark: `checks.check_table`, the one implementation, run on Arrow batches.

Nothing is lost: every input row comes out of `validate` once, with `reason` null (valid) or naming
every problem found in it (`column: problem`, joined by `; `). Text columns (CSV, or Parquet written
as strings) are parsed; typed Parquet columns are checked as they are. The scoring job runs the same
checks inside its scoring pass (`scoring.udf.check_and_score`); this shell serves training, the
drift sample and anyone who wants the typed rows themselves.

Only duplicates need a view of the whole input: `duplicate_keys` reads the uuid column alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from defaultrisk import sql
from defaultrisk.checks import RAW, RAW_COLUMNS, SKIPPED, check_batch, present, raw_struct
from defaultrisk.checks import duplicate_keys as keys_of
from defaultrisk.errors import InputError
from defaultrisk.schema import DEFAULT, FEATURES, INPUT_COLUMNS, RAW_LINE, REASON, REQUIRED_COLUMNS, UUID

log = logging.getLogger(__name__)
_HASH = "h"
_KEY = "key"


def _keys(batch: pa.RecordBatch) -> pa.Array:
    """The batch's non-null duplicate keys (`checks.duplicate_keys` of the trimmed uuid)."""
    keys = keys_of(present(batch.column(0)))
    return keys.filter(keys.is_valid()) if keys.null_count else keys


def _hashes(keys: pa.Array) -> np.ndarray:
    """A 64-bit hash of each key, the same in every worker process."""
    return pd.util.hash_array(keys.to_numpy(zero_copy_only=False)).view(np.int64)


def _key_hashes(batches):
    for batch in batches:
        yield pa.RecordBatch.from_arrays([pa.array(_hashes(_keys(batch)), pa.int64())], names=[_HASH])


def duplicate_keys(df: DataFrame) -> list[tuple[str, int]]:
    """Every uuid key held by more than one row, with its number of rows.

    Only the uuid column is read, and two small jobs instead of a shuffle of whole rows: rows are
    first counted by a 64-bit hash of their key (eight bytes a row cross the network, not the row);
    only the rare hashes seen more than once are then resolved to their exact keys.
    """
    uuids = df.select(UUID)
    counted = uuids.mapInArrow(_key_hashes, f"{_HASH} long").groupBy(_HASH).count()
    hashes = {r[0] for r in counted.where("count > 1").select(_HASH).collect()}
    if not hashes:
        return []

    def exact_keys(batches):
        for batch in batches:
            keys = _keys(batch)
            wanted = np.isin(_hashes(keys), np.fromiter(hashes, dtype=np.int64))
            yield pa.RecordBatch.from_arrays([keys.filter(pa.array(wanted))], names=[_KEY])

    exact = uuids.mapInArrow(exact_keys, f"{_KEY} string").groupBy(_KEY).count().where("count > 1")
    return sorted((r[0], int(r[1])) for r in exact.collect())


def raw_struct_type(df: DataFrame) -> T.StructType:
    """The input's columns as read (`RAW_COLUMNS`), with their types: the rejects' raw values."""
    types = {field.name: field.dataType for field in df.schema.fields}
    return T.StructType([T.StructField(c, types[c], True) for c in RAW_COLUMNS])


def checked_schema(raw: T.StructType | None) -> T.StructType:
    """`validate`'s output: uuid, the typed features, the label, the reason (and the values as read)."""
    fields = [
        T.StructField(UUID, T.StringType(), True),
        *[T.StructField(f.name, f.spark_type, True) for f in FEATURES],
        T.StructField(DEFAULT, T.IntegerType(), True),
        T.StructField(REASON, T.StringType(), True),
    ]
    if raw is not None:
        fields.append(T.StructField(RAW, raw, True))
    return T.StructType(fields)


def checked_batch(batch: pa.RecordBatch, labelled: bool, duplicates: Mapping[str, int], keep_raw: bool):
    """One batch through `check_table`, as `checked_schema` lays it out."""
    checked = check_batch(batch, labelled, duplicates)
    arrays = [checked.uuid, *[checked.features[f.name] for f in FEATURES], checked.default, checked.reason]
    names = [UUID, *[f.name for f in FEATURES], DEFAULT, REASON]
    if keep_raw:
        arrays.append(raw_struct(batch))
        names.append(RAW)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def validate(
    df: DataFrame,
    labelled: bool = False,
    duplicates: Mapping[str, int] | None = None,
    keep_raw: bool = True,
) -> DataFrame:
    """Type every column of a raw table and give each row its `reason` (null when valid).

    `df` has the schema's input columns (as text, or typed as a Parquet file holds them) plus
    `raw_line` (see `select_known_columns`). The result has `uuid`, the typed features, `default`
    (typed when `labelled`, else null), `reason` and, with `keep_raw`, the values as read (the struct `_raw`).
    A missing `default` is not a problem: it marks an unlabelled row. `duplicates` (key to rows) is
    found in the whole table unless given.
    """
    if duplicates is None:
        duplicates = dict(duplicate_keys(df))
    raw = raw_struct_type(df) if keep_raw else None
    columns = df.select(*[sql.name(c) for c in RAW_COLUMNS])

    def check_batches(batches):
        for batch in batches:
            if batch.num_rows:
                yield checked_batch(batch, labelled, duplicates, keep_raw)

    return columns.mapInArrow(check_batches, schema=checked_schema(raw))


def raw_value(column: str) -> F.Column:
    """A column's value as read, as text (CSV text as given; a typed Parquet value cast to text)."""
    return F.col(RAW).getField(column).cast("string")


def valid_rows(validated: DataFrame) -> DataFrame:
    """The rows that passed, without the bookkeeping columns."""
    return validated.filter(F.col(REASON).isNull()).drop(REASON, RAW)


def rejected_rows(validated: DataFrame) -> DataFrame:
    """The rows that failed: their values as read, every column as text, and the reason.

    The values become text only here, after the filter: only rejected rows pay for it.
    """
    rejected = validated.filter(F.col(REASON).isNotNull())
    return rejected.select(*[raw_value(c).alias(c) for c in RAW_COLUMNS], REASON)


def select_known_columns(df: DataFrame, required: tuple[str, ...]) -> DataFrame:
    """Fail naming every missing required column; drop (and log) columns the schema does not know.

    Returns the input columns of the schema (absent optional ones as nulls) plus `raw_line`.
    """
    present_columns = [c for c in df.columns if c != RAW_LINE]
    missing = [c for c in required if c not in present_columns]
    if missing:
        hint = ""
        if len(present_columns) == 1 and "," in present_columns[0]:
            hint = " (the header is one column: is the file comma-separated? expected ';')"
        raise InputError(f"input is missing {len(missing)} required column(s): {', '.join(missing)}{hint}")
    extra = [c for c in present_columns if c not in INPUT_COLUMNS]
    if extra:
        log.warning("ignoring %d column(s) the schema does not know: %s", len(extra), ", ".join(extra))
    return df.select(
        *[F.col(c) if c in present_columns else F.lit(None).cast("string").alias(c) for c in INPUT_COLUMNS],
        F.col(RAW_LINE),
    )


def known_columns(raw: DataFrame, labelled: bool) -> DataFrame:
    """`select_known_columns` with the columns a labelled (training) or unlabelled input must hold."""
    return select_known_columns(raw, (*REQUIRED_COLUMNS, DEFAULT) if labelled else REQUIRED_COLUMNS)


def entry_contract(raw: DataFrame, labelled: bool, skip_labelled: bool = False) -> DataFrame:
    """The input's known columns, typed and checked (`validate`), plus `SKIPPED`.

    `SKIPPED` marks a labelled row in a run that scores only unlabelled rows: neither scored nor
    rejected, only counted. Only a valid label (0 or 1) makes a row labelled: anything else in
    `default` is rejected as `default: not 0 or 1`, never skipped unseen.
    """
    validated = validate(known_columns(raw, labelled), labelled=labelled or skip_labelled)
    skipped = F.col(DEFAULT).isNotNull() if skip_labelled else F.lit(False)
    return validated.withColumn(SKIPPED, skipped)
