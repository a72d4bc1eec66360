"""The entry contract on Arrow batches: `validate.py`'s rules, vectorised, with its exact reason texts.

`check_table` takes the raw values of a batch (text as a CSV holds them, or typed as Parquet holds
them), types every feature and gives each row its `reason` (null when valid): the same rules, in the
same order, with the same texts as the Spark job's `validate`, generated from the same `FEATURES`.
Text is parsed the way Spark's `try_cast` parses it (Java's number grammar, Spark's special literals),
so a value reads the same here and in the nightly job. A test runs both on the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import product

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from defaultrisk.schema import (
    CATEGORY,
    CODE,
    COUNT,
    DEFAULT,
    FEATURE_NAMES,
    FEATURES,
    FLAG,
    INPUT_COLUMNS,
    RAW_LINE,
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

_STRING = pa.string()
_DOUBLE = pa.float64()
_NULL_TEXT = pa.scalar(None, _STRING)
# Every spelling of the missing-value tokens in any case: a lookup of the text as it is, without
# upper-casing every value first.
_MISSING = pc.SetLookupOptions(
    pa.array(
        sorted({"".join(c) for t in MISSING_TOKENS for c in product(*((x.lower(), x.upper()) for x in t))})
    )
)
# Java's String.trim() (inside Double.parseDouble and Spark's boolean cast) strips every char <= U+0020.
_JAVA_SPACE = "".join(chr(c) for c in range(0x21))
_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?$"
_HEX = r"^[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?$"
_JAVA_SPECIAL = r"^[+-]?(NaN|Infinity)$"  # Double.parseDouble's own, case-sensitive
_SPARK_SPECIAL = {"inf": np.inf, "+inf": np.inf, "infinity": np.inf, "+infinity": np.inf}
_SPARK_SPECIAL |= {"-inf": -np.inf, "-infinity": -np.inf, "nan": np.nan}
# Java's `$` also matches before one final line terminator; Python's `\Z` only at the very end.
# Python's engine, compiled once: Arrow's compiles its pattern on every call (60-90 us a batch).
_UUID_RE = re.compile(UUID_PATTERN.removesuffix("$") + r"(?:\r\n|[\n\r\x85\u2028\u2029])?\Z")
_TRUE = ("t", "true", "y", "yes", "1")
_FALSE = ("f", "false", "n", "no", "0")
# The bookkeeping columns of a checked table: a row's values as read (a struct of `RAW_COLUMNS`,
# kept for the rejects output), and the mark of a labelled row that a run scoring only unlabelled
# rows neither scores nor rejects.
RAW = "_raw"
RAW_COLUMNS = (*INPUT_COLUMNS, RAW_LINE)
SKIPPED = "_skipped"
# The features checked as numbers (every kind but categories and flags), in the schema's order.
NUMBERS = tuple(f for f in FEATURES if f.kind not in (CATEGORY, FLAG))


@dataclass(frozen=True)
class Checked:
    """A checked batch: trimmed `uuid`, typed features (double, int64, bool, string), label, `reason`."""

    uuid: pa.Array
    features: Mapping[str, pa.Array]
    default: pa.Array
    reason: pa.Array
    # The `NUMBERS` features' values as one float64 block (feature by row, NaN where missing): on
    # every valid row, the typed columns' values.
    numbers: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        return self.reason.is_null().to_numpy(zero_copy_only=False)

    def frame(self) -> pd.DataFrame:
        """`uuid` and the typed features as pandas (missing numbers as NaN), for `features.feature_matrix`."""
        columns = {UUID: self.uuid.to_numpy(zero_copy_only=False)}
        for f in FEATURES:
            column = self.features[f.name]
            if f.kind == CATEGORY:
                columns[f.name] = column.to_numpy(zero_copy_only=False)
            else:
                columns[f.name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return pd.DataFrame(columns)


def check_table(
    table: pa.Table | pd.DataFrame,
    labelled: bool = False,
    copies: np.ndarray | None = None,
    uuid_required: bool = True,
) -> Checked:
    """Type every feature of a batch of raw rows and give each row its `reason` (null when valid).

    `table` holds `uuid` and the features (text or typed), optionally `default` and `raw_line`.
    `copies` is each row's number of rows sharing its uuid in the whole snapshot; by default it is
    counted within the batch. With `uuid_required` False a missing uuid is no problem (the service's
    customers need not name one).
    """
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    names = set(table.column_names)
    absent = [c for c in (UUID, *(f.name for f in FEATURES)) if c not in names]
    if absent:
        raise ValueError(f"missing column(s): {', '.join(absent)}")
    n = table.num_rows
    uuid = present(_column(table, UUID))
    problems = [_line_problem(table, n), *_uuid_problems(uuid, copies, uuid_required)]
    default, label_problem = _label(table, n) if labelled else (pa.nulls(n, pa.int32()), None)
    problems.append(label_problem)
    numbers, number_problems, block = _check_numbers(table, n)
    others = {}
    for feature in FEATURES:
        if feature.name in number_problems:
            problems.append(number_problems[feature.name])
        else:
            others[feature.name], feature_problem = _check_feature(feature, _column(table, feature.name))
            problems.append(feature_problem)
    features = _Columns(others, numbers)
    return Checked(uuid=uuid, features=features, default=default, reason=_joined(problems, n), numbers=block)


def check_batch(batch: pa.RecordBatch, labelled: bool, duplicates: Mapping[str, int]) -> Checked:
    """`check_table` on one batch of a snapshot, each row's copies counted in the whole snapshot
    (`duplicates`: the keys held more than once, with their number of rows)."""
    table = pa.Table.from_batches([batch])
    return check_table(table, labelled=labelled, copies=snapshot_copies(table.column(UUID), duplicates))


def _column(table: pa.Table, name: str) -> pa.Array:
    return _chunk(table.column(name))


def _chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _joined(problems: list[pa.Array | None], n: int) -> pa.Array:
    """concat_ws of the problem columns, null for a row without any."""
    found = [p for p in problems if p is not None]
    if not found:
        return pa.nulls(n, _STRING)
    if len(found) == 1:
        return found[0]
    given = np.vstack([p.is_valid().to_numpy(zero_copy_only=False) for p in found])
    rejected = np.flatnonzero(given.any(axis=0))
    # Only rejected rows build text; pyarrow's binary_join_element_wise loses rows past a dozen inputs.
    parts = [p.take(rejected).to_pylist() for p in found]
    reasons = np.full(n, None, dtype=object)
    reasons[rejected] = [
        REASON_SEPARATOR.join(t for t in texts if t is not None) for texts in zip(*parts, strict=True)
    ]
    return pa.array(reasons, _STRING)


def _line_problem(table: pa.Table, n: int) -> pa.Array | None:
    if RAW_LINE not in table.column_names:
        return None
    wrong = _column(table, RAW_LINE).is_valid().to_numpy(zero_copy_only=False)
    return _texts(wrong, WRONG_NUMBER_OF_FIELDS)


def _texts(mask: np.ndarray, text: str) -> pa.Array | None:
    if not mask.any():
        return None
    return pa.array(np.where(mask, text, None), _STRING)


def duplicate_keys(uuid: pa.Array) -> pa.Array:
    """The key duplicates are found by: the trimmed uuid in lower case (Java's case rules)."""
    keys = pc.utf8_lower(uuid)
    exotic = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(uuid), True).to_numpy(zero_copy_only=False))
    if len(exotic):  # full case mapping, as Java's toLowerCase, for the rare non-ASCII key
        keys = keys.to_pylist()
        for i in exotic:
            keys[i] = uuid[i].as_py().lower()
        keys = pa.array(keys, _STRING)
    return keys


def copies_in_batch(uuid: pa.Array) -> np.ndarray:
    """Per row, how many rows of the batch share its uuid key (0 for a missing uuid)."""
    encoded = pc.dictionary_encode(duplicate_keys(uuid))
    if len(encoded.dictionary) == 0:
        return np.zeros(len(uuid), dtype=np.int64)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    counts = np.bincount(codes[codes >= 0], minlength=len(encoded.dictionary))
    return np.where(codes >= 0, counts[np.maximum(codes, 0)], 0)


def raw_struct(batch: pa.RecordBatch, mask: np.ndarray | None = None) -> pa.StructArray:
    """The batch's `RAW_COLUMNS` as they came, one struct a row (null where `mask` is True)."""
    return pa.StructArray.from_arrays(
        [batch.column(c) for c in RAW_COLUMNS],
        names=list(RAW_COLUMNS),
        mask=None if mask is None else pa.array(mask, pa.bool_()),
    )


def snapshot_copies(uuid: pa.Array | pa.ChunkedArray, duplicates: Mapping[str, int]) -> np.ndarray:
    """Per row, how many rows of the whole snapshot share its uuid key, from the keys held more than
    once (`duplicates`, key to rows): 1 for any other given uuid, 0 for a missing one."""
    if isinstance(uuid, pa.ChunkedArray):
        uuid = _chunk(uuid)
    given = present(uuid)
    copies = _given(given).astype(np.int64)
    if duplicates:
        keys = duplicate_keys(given)
        counts = pa.array(list(duplicates.values()), pa.int64())
        found = pc.index_in(keys, value_set=pa.array(list(duplicates), _STRING))
        held = pc.take(counts, found).fill_null(0).to_numpy(zero_copy_only=False)
        copies = np.where(held > 0, held, copies)
    return copies


def _uuid_problems(uuid: pa.Array, copies: np.ndarray | None, required: bool) -> list[pa.Array | None]:
    given = _given(uuid)
    malformed = np.array([v is not None and not _UUID_RE.match(v) for v in uuid.to_pylist()], dtype=bool)
    copies = copies_in_batch(uuid) if copies is None else np.asarray(copies)
    repeated = given & (copies > 1)
    duplicate = None
    if repeated.any():
        counts = pa.array(np.where(repeated, copies, 0)).cast(_STRING)
        texts = pc.binary_join_element_wise(problem(UUID, DUPLICATE_OPEN), counts, DUPLICATE_CLOSE, "")
        duplicate = pc.if_else(pa.array(repeated), texts, pa.scalar(None, _STRING))
    missing = _texts(~given, problem(UUID, MISSING)) if required else None
    return [missing, _texts(malformed, problem(UUID, MALFORMED)), duplicate]


def _label(table: pa.Table, n: int) -> tuple[pa.Array, pa.Array | None]:
    """The label as 0/1 (null when missing or bad) and its problem: validate's `_label`."""
    if DEFAULT not in table.column_names:
        return pa.nulls(n, pa.int32()), None
    text = present(_column(table, DEFAULT))
    values, parsed = parse_double(text)
    given = _given(text)
    bad = given & ~(parsed & ((values == 0.0) | (values == 1.0)))
    ok = given & ~bad
    default = pa.array(np.where(ok, values, 0).astype(np.int32), pa.int32(), mask=~ok)
    return default, _texts(bad, problem(DEFAULT, NOT_A_LABEL))


def present(values: pa.Array) -> pa.Array:
    """The trimmed text of each value, null when it is empty or `NA` (validate's `_present`)."""
    text = values if values.type == _STRING else pc.cast(values, _STRING)
    trimmed = pc.utf8_trim(text, characters=" ")  # Spark's trim strips spaces only
    missing = pc.is_in(trimmed, options=_MISSING)
    return pc.if_else(missing, _NULL_TEXT, trimmed) if missing.true_count else trimmed


def parse_double(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """validate's `_to_double`: the values and a mask of those that parsed.

    Java's grammar (surrounding control characters, a sign, `.5`, `5.`, an exponent, an `f`/`d`
    suffix, hexadecimal `0x1.8p1`, `NaN`, `Infinity`) plus Spark's literals `inf`, `infinity`, `nan`
    in any case. Hexadecimal values are rare enough to convert one by one.
    """
    java_only = _java_only(text)
    s = pc.utf8_trim(text, characters=_JAVA_SPACE)
    values = np.full(len(text), np.nan)
    decimal = pc.fill_null(pc.match_substring_regex(s, _DECIMAL), False).to_numpy(zero_copy_only=False)
    plain = decimal & ~java_only  # a refused value needs no value
    if plain.any():
        digits = pc.filter(s, plain)
        suffixed = _ends_with_any(digits, _SUFFIXES)
        if suffixed.true_count:  # a suffix the refusals did not see (`5d` + a control character)
            digits = pc.if_else(suffixed, pc.utf8_slice_codeunits(digits, 0, -1), digits)
        # Arrow's parser rounds correctly, as Java's and Python's do: 20-30x numpy's from Python strings.
        values[plain] = pc.cast(digits, pa.float64()).to_numpy(zero_copy_only=False)
    parsed = decimal.copy()
    # Anything else is rare (a special literal, hexadecimal, or not a number): one by one.
    for i in np.flatnonzero(s.is_valid().to_numpy(zero_copy_only=False) & ~decimal):
        value = _special(s[i].as_py())
        if value is not None:
            values[i], parsed[i] = value, True
    values[java_only] = np.nan
    return values, parsed & ~java_only


def _java_only(text: pa.Array) -> np.ndarray:
    """validate's `_to_double` refusals: a float-type suffix (`5d`, `7F`; not `inf`) or hexadecimal."""
    suffix = _ends_with_any(text, _SUFFIXES)
    if suffix.true_count:
        infinity = pc.is_in(pc.utf8_lower(text), value_set=pa.array(["inf", "+inf", "-inf"], _STRING))
        suffix = pc.and_(suffix, pc.invert(infinity))
    hexadecimal = pc.or_(pc.match_substring(text, "x"), pc.match_substring(text, "X"))
    return pc.fill_null(pc.or_(suffix, hexadecimal), False).to_numpy(zero_copy_only=False)


_SUFFIXES = tuple("dDfF")


def _ends_with_any(text: pa.Array, endings: tuple[str, ...]) -> pa.Array:
    found = pc.ends_with(text, endings[0])
    for ending in endings[1:]:
        found = pc.or_(found, pc.ends_with(text, ending))
    return pc.fill_null(found, False)


def _special(text: str) -> float | None:
    word = text.lower()
    if word in _SPARK_SPECIAL:
        return _SPARK_SPECIAL[word]
    if re.fullmatch(_JAVA_SPECIAL, text):
        return float(text)  # Python reads these words as Java does
    if re.fullmatch(_HEX, text, flags=re.ASCII):
        return _from_hex(text.rstrip("fFdD"))
    return None


def _from_hex(text: str) -> float:
    try:
        return float.fromhex(text)
    except OverflowError:  # Java rounds an out-of-range value to infinity
        return -np.inf if text.startswith("-") else np.inf


def _parse_flag(text: pa.Array) -> pa.Array:
    """Spark's `try_cast(text AS BOOLEAN)`."""
    lower = pc.utf8_lower(pc.utf8_trim(text, characters=_JAVA_SPACE))
    true = pc.is_in(lower, value_set=pa.array(_TRUE, _STRING))
    false = pc.is_in(lower, value_set=pa.array(_FALSE, _STRING))
    return pc.if_else(true, True, pc.if_else(false, pa.scalar(False), pa.scalar(None, pa.bool_())))


def _check_feature(feature: Feature, raw: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """A category or flag column typed, and its problem column (None when no row has a problem)."""
    if feature.kind == CATEGORY:
        return present(raw), None
    if pa.types.is_boolean(raw.type):
        return raw, None
    if _is_number(raw.type):  # 0 and 1 are false and true; any other number is not a flag
        value = pc.if_else(pc.equal(raw, 0), False, pc.if_else(pc.equal(raw, 1), True, None))
        value, given = value.cast(pa.bool_()), raw.is_valid()
    else:
        text = present(raw)
        value, given = _parse_flag(text), text.is_valid()
    bad = pc.and_(given, value.is_null()).to_numpy(zero_copy_only=False)
    return value, _texts(bad, problem(feature.name, NOT_TRUE_FALSE))


@dataclass(frozen=True)
class _Numbers:
    """Numeric columns as rows of one 2-D block: values (NaN where unknown), what was known, how given."""

    features: list[Feature]
    values: np.ndarray  # float64, (features, rows)
    known: np.ndarray  # bool: a number was given (and, for text, parsed)
    whole_type: np.ndarray  # bool per feature: given as an integer type
    not_a_number: np.ndarray  # bool: text given that is not a number


def _check_numbers(table: pa.Table, n: int) -> tuple[_TypedNumbers, dict[str, pa.Array | None], np.ndarray]:
    """Every numeric feature's problem column, its typed column (built when read) and the values' block.

    The rules of validate's `_number`, in its order: not a number (text), not finite (not for an
    integer type), too large and not whole (count and code columns given as other than integers),
    then the range. A column's cost here is a copy; the rules run once over the block.
    """
    features = list(NUMBERS)
    block = _Numbers(
        features,
        np.empty((len(features), n)),
        np.ones((len(features), n), dtype=bool),
        np.zeros(len(features), dtype=bool),
        np.zeros((len(features), n), dtype=bool),
    )
    columns = dict(zip(table.column_names, table.columns, strict=True))
    raws = [_chunk(columns[f.name]) for f in features]
    for k, raw in enumerate(raws):
        if raw.type == _DOUBLE:  # as Parquet and JSON hold numbers: a copy
            block.values[k] = raw.to_numpy(zero_copy_only=False)  # nulls read as NaN
            if raw.null_count:
                block.known[k] = raw.is_valid().to_numpy(zero_copy_only=False)
        else:
            _read_numbers(raw, block, k)
    codes = _problem_codes(block, _WHOLE_KIND)
    found = (codes >= 0).any(axis=1)
    problems = {f.name: _problem_texts(f, codes[k]) if found[k] else None for k, f in enumerate(features)}
    return _TypedNumbers(block, raws), problems, block.values


_WHOLE_KIND = np.array([f.kind in (COUNT, CODE) for f in NUMBERS])
# Each numeric feature's range as columns of the block's shape (no bound: infinite).
_LOW = np.array([-np.inf if f.minimum is None else f.minimum for f in NUMBERS])[:, None]
_HIGH = np.array([np.inf if f.maximum is None else f.maximum for f in NUMBERS])[:, None]


class _TypedNumbers:
    """The numeric columns as the job types them (double; long for count and code columns), each built
    when first read: the service scores from the block and never needs them."""

    def __init__(self, block: _Numbers, raws: list[pa.Array]):
        self.block, self.raws = block, raws
        self.position = {f.name: k for k, f in enumerate(block.features)}

    @cached_property
    def _whole(self) -> tuple[np.ndarray, np.ndarray]:
        # try_cast(double AS BIGINT): toward zero, null when it is not finite or out of range.
        values = self.block.values
        with np.errstate(invalid="ignore"):
            fits = self.block.known & (values >= -(2.0**63)) & (values < 2.0**63)
        return np.trunc(np.where(fits, values, 0.0)).astype(np.int64), fits

    def column(self, name: str) -> pa.Array:
        k, block = self.position[name], self.block
        raw = self.raws[k]
        if not _WHOLE_KIND[k]:
            as_double = raw.type == pa.float64()  # already the typed column
            return raw if as_double else _with_mask(block.values[k], block.known[k], pa.float64())
        if block.whole_type[k]:
            return raw if raw.type == pa.int64() else pc.cast(raw, pa.int64())
        whole, fits = self._whole
        return _with_mask(whole[k], fits[k], pa.int64())


class _Columns(Mapping):
    """The typed features by name, in the schema's order; the numeric ones built on first read."""

    def __init__(self, others: dict[str, pa.Array], numbers: _TypedNumbers):
        self._columns, self._numbers = dict(others), numbers

    def __getitem__(self, name: str) -> pa.Array:
        if name not in self._columns:
            if name not in self._numbers.position:
                raise KeyError(name)
            self._columns[name] = self._numbers.column(name)
        return self._columns[name]

    def __iter__(self):
        return iter(FEATURE_NAMES)

    def __len__(self) -> int:
        return len(FEATURE_NAMES)


def _read_numbers(raw: pa.Array, block: _Numbers, k: int) -> None:
    """Row `k` of the block from a raw column: typed numbers (or booleans) as they are, text parsed."""
    dtype = raw.type
    if not (_is_number(dtype) or pa.types.is_boolean(dtype)):
        text = present(raw)
        block.values[k], block.known[k] = parse_double(text)
        block.not_a_number[k] = _given(text) & ~block.known[k]
        return
    block.whole_type[k] = pa.types.is_integer(dtype)
    if not (block.whole_type[k] or pa.types.is_floating(dtype)):
        raw = pc.cast(raw, pa.float64(), safe=False)
    block.values[k] = raw.to_numpy(zero_copy_only=False)  # nulls read as NaN
    block.known[k] = _given(raw)


def _given(values: pa.Array) -> np.ndarray:
    if values.null_count == 0:
        return np.ones(len(values), dtype=bool)
    return values.is_valid().to_numpy(zero_copy_only=False)


# The problems of `_problem_codes`, in validate's order; the range's two follow.
_NUMBER_PROBLEMS = (NOT_A_NUMBER, NOT_FINITE, TOO_LARGE, NOT_WHOLE)


def _problem_codes(block: _Numbers, whole_kind: np.ndarray) -> np.ndarray:
    """Per feature and row, the first problem's code (-1 for none)."""
    values, known = block.values, block.known
    low, high = _LOW, _HIGH
    not_integer = ~block.whole_type[:, None]
    to_whole = whole_kind[:, None] & not_integer
    with np.errstate(invalid="ignore"):
        conditions = (
            block.not_a_number,
            known & not_integer & ~np.isfinite(values),  # before the range: NaN sorts above all in Spark
            known & to_whole & (np.abs(values) > MAX_WHOLE),  # floor() of 1e19 or more overflows there
            known & to_whole & (values != np.floor(values)),
            known & (values < low),
            known & (values > high),
        )
    codes = np.full(values.shape, -1, dtype=np.int8)
    for code in range(len(conditions) - 1, -1, -1):
        codes[conditions[code]] = code
    return codes


def _problem_texts(feature: Feature, codes: np.ndarray) -> pa.Array:
    ranges = {op: what for op, _, what in bounds(feature)}
    words = [*_NUMBER_PROBLEMS, ranges.get("<"), ranges.get(">")]
    texts = np.asarray([problem(feature.name, w) if w else None for w in words] + [None], dtype=object)
    return pa.array(texts[codes], _STRING)


def _with_mask(values: np.ndarray, valid: np.ndarray, dtype: pa.DataType) -> pa.Array:
    return pa.array(values, dtype, mask=None if valid.all() else ~valid)


def _is_number(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype)
