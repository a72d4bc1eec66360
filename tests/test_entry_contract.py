"""The entry contract (`checks.check_table`) on hostile corpora, as the jobs run it and as the service does.

Each case runs `validate` (the jobs' Spark shell of `check_table`) on rows read as the jobs read them
(the original CSV format, or Parquet with typed columns), and compares, row by row:
- the reasons, uuid, label and the typed values of the columns the corpus varies with what the Spark
  SQL implementation of the same rules gave on these rows (recorded in `data/entry_contract_expected.json`
  before it was replaced: Spark's own parsing of each text is the reference);
- every typed feature with `check_table` run directly on the very values the shell saw (its `_raw`),
  as the service runs it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sampledata import make_snapshot, write_original_csv

from defaultrisk.checks import check_table
from defaultrisk.features import checked_matrix, feature_matrix
from defaultrisk.read import read_raw
from defaultrisk.schema import DEFAULT, FEATURES, INPUT_COLUMNS, RAW_LINE, REASON, REQUIRED_COLUMNS, UUID
from defaultrisk.validate import RAW, select_known_columns, validate

from rows import row, uuid_for, write_csv

NUMBER_TEXTS = (
    *(" 5 ", "\t5", "5\x00", "+1", ".5", "5.", "1.e2", "1e5", "1E+5", "-.5e1", "00012", "-0"),
    *(
        "1d",
        "1f",
        "7D",
        "0x1p3",
        "0X1.8P1",
        "0x.8p1",
        "0x1p3d",
        "0x1p5000",
        "0x10",
        "1_0",
        "\u0661\u0662",
        "\uff11\uff12",
    ),
    *("NaN", "nan", "+NaN", "-NaN", "-nan", "+nan", "Infinity", "-Infinity", "inf", "+inf", "-INF"),
    *("INFINITY", "Infinityd", "1e400", "1e-400", "1.7976931348623159e308", "e5", "1e", "+", "--1"),
    *("1,5", "5 d", "\u00a05", "\t", "na", " NA ", "2.5", "-3", "9007199254740992", "9007199254740993"),
    *("130", "17.9", "18", "120.0", "24.0001", "2.0", "abc"),
)
FLAG_TEXTS = ("True", "False", "true", " TRUE ", "t", "yes", "Y", "n", "no", "0", "1", "1.0", "on", "\ttrue")
FLAG_TEXTS += ("True\n", "maybe", "2", "NA", "")
CATEGORY_TEXTS = (" Food & Beverage ", "Food & Beverage", "na", "", "Space travel", "\tTobacco")
NUMBER_COLUMNS = ("age", "num_active_inv", "account_status", "time_hours", "max_paid_inv_0_12m")
UUID_TEXTS = (
    "12345",
    "",
    "NA",
    " 6f6e6c6a-2081-4e6b-8eb3-4fd89b54b2d7 ",
    "6F6E6C6A-2081-4E6B-8EB3-4FD89B54B2D7",
)
UUID_TEXTS += ("6f6e6c6a-2081-4e6b-8eb3-4fd89b54b2d7\u2028", "6f6e6c6a-2081-4e6b-8eb3-4fd89b54b2d7\u0085")
UUID_TEXTS += ("\u0130x", "i\u0307X", "6f6e6c6a-2081-4e6b-8eb3-4fd89b54b2dz")
DEFAULT_TEXTS = ("0", "1", "1.0", " 1 ", "2", "x", "NA", "", "0.5", "NaN", "1d")


def _corpus_rows() -> list[dict]:
    rows, i = [], 1000
    for column in NUMBER_COLUMNS:
        for text in NUMBER_TEXTS:
            i += 1
            rows.append(row(i, **{column: text}))
    for text in FLAG_TEXTS:
        i += 1
        rows.append(row(i, has_paid=text))
    for text in CATEGORY_TEXTS:
        i += 1
        rows.append(row(i, merchant_group=text, name_in_email=text))
    for text in UUID_TEXTS:
        rows.append(row(0, uuid=text))
    for k, text in enumerate(DEFAULT_TEXTS):
        rows.append(row(2000 + k, default=text))
    rows.append(row(3000, age="young", has_paid="maybe", time_hours="25", num_unpaid_bills="-3"))
    return rows


EXPECTED = json.loads((Path(__file__).parent / "data" / "entry_contract_expected.json").read_text())


def _validated_and_checked(spark, raw, labelled: bool):
    """The jobs' and the service's outputs over the same rows, as Arrow tables in the same row order."""
    required = (*REQUIRED_COLUMNS, DEFAULT) if labelled else REQUIRED_COLUMNS
    validated = validate(select_known_columns(raw, required), labelled=labelled).toArrow()
    seen = validated.column(RAW).combine_chunks()
    seen = pa.table({c: seen.field(c) for c in (*INPUT_COLUMNS, RAW_LINE)})
    return validated, check_table(seen, labelled=labelled)


def _values(column) -> list:
    """Python values with NaN and infinities as JSON-safe words (NaN == NaN here, as Spark has it)."""
    return [_word(v) for v in column.to_pylist()]


def _word(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _assert_as_recorded(validated: pa.Table, case: str) -> None:
    """The reasons, uuid, label and varied columns as the Spark SQL rules gave them on these rows."""
    expected = EXPECTED[case]
    for column in (REASON, UUID, DEFAULT):
        assert validated.column(column).to_pylist() == expected[column], column
    for column, dtype in expected["_types"].items():
        assert str(validated.schema.field(column).type) == dtype, column
        assert _values(validated.column(column)) == expected[column], column


def _assert_same(validated: pa.Table, checked) -> None:
    assert checked.reason.to_pylist() == validated.column(REASON).to_pylist()
    assert checked.uuid.to_pylist() == validated.column(UUID).to_pylist()
    assert checked.default.to_pylist() == validated.column(DEFAULT).to_pylist()
    for feature in FEATURES:
        expected = validated.column(feature.name).combine_chunks()
        assert checked.features[feature.name].type == expected.type, feature.name
        assert _values(checked.features[feature.name]) == _values(expected), feature.name


@pytest.mark.parametrize("labelled", [False, True])
def test_same_reasons_and_values_as_recorded_on_text_rows(spark, tmp_path, labelled):
    path = write_csv(tmp_path / "corpus.csv", _corpus_rows())
    with path.open("a", encoding="utf-8") as out:  # a line cut short, and one with a field too many
        out.write(";".join(row(5000)[c] for c in INPUT_COLUMNS[:-3]) + "\n")
        out.write(";".join(row(5001)[c] for c in INPUT_COLUMNS) + ";extra\n")
    validated, checked = _validated_and_checked(spark, read_raw(spark, str(path)), labelled)
    reasons = validated.column(REASON).to_pylist()
    assert sum(r is not None for r in reasons) > 150  # the corpus is mostly problems
    assert "line: wrong number of fields" in reasons and "uuid: duplicate (2 rows)" in reasons
    _assert_as_recorded(validated, "text_labelled" if labelled else "text_unlabelled")
    _assert_same(validated, checked)


@pytest.mark.parametrize("seed", [11, 12])
def test_same_reasons_and_values_as_recorded_on_generated_snapshots(spark, tmp_path, seed):
    frame, info = make_snapshot(1500, seed=seed, bad_rows=28)
    write_original_csv(frame, tmp_path / "snapshot.csv")
    validated, checked = _validated_and_checked(spark, read_raw(spark, str(tmp_path / "snapshot.csv")), False)
    assert sum(r is not None for r in validated.column(REASON).to_pylist()) == info["expected_rejected_rows"]
    _assert_same(validated, checked)


def _typed_frame(seed: int) -> pd.DataFrame:
    """A snapshot as typed Parquet columns, with problems a typed column can hold."""
    frame, _ = make_snapshot(400, seed=seed)
    n = len(frame)
    frame["num_active_inv"] = frame["num_active_inv"].astype("int64")  # a whole-number column
    frame["account_status"] = pd.array(frame["account_status"], dtype="Int64")  # whole, with nulls
    frame.loc[:5, "num_active_inv"] = [-1, 0, 3, 2**60, -(2**60), 7]
    frame.loc[:9, "max_paid_inv_0_12m"] = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e300, 5.5, np.nan, 1.0, 2.0]
    frame["num_unpaid_bills"] = frame["num_unpaid_bills"].astype("float64")
    frame.loc[:6, "num_unpaid_bills"] = [2.5, -0.5, np.nan, np.inf, 2.0**53 + 2, -1.0, -(2.0**60)]
    frame["age"] = frame["age"].astype("float64")
    frame.loc[:4, "age"] = [17.0, 121.0, np.nan, 18.0, 120.0]
    frame["has_paid"] = np.tile([0, 1, 5, 1], n // 4 + 1)[:n]  # numbers where True/False belongs
    frame["time_hours"] = np.tile([True, False], n // 2 + 1)[:n]  # booleans where a number belongs
    frame["merchant_group"] = frame["merchant_group"].where(frame.index % 7 != 0, " NA ")
    return frame


def test_same_reasons_and_values_as_recorded_on_typed_parquet(spark, tmp_path):
    path = tmp_path / "typed.parquet"
    _typed_frame(seed=21).to_parquet(path, index=False)
    validated, checked = _validated_and_checked(spark, read_raw(spark, str(path)), False)
    assert sum(r is not None for r in validated.column(REASON).to_pylist()) > 100
    _assert_as_recorded(validated, "typed_parquet")
    _assert_same(validated, checked)


def test_uuid_duplicates_can_be_counted_over_the_whole_snapshot():
    table = pa.table({UUID: [uuid_for(1), uuid_for(2)], **{f.name: [row(1)[f.name]] * 2 for f in FEATURES}})
    checked = check_table(table, copies=np.array([3, 1]))
    assert checked.reason.to_pylist() == ["uuid: duplicate (3 rows)", None]
    assert check_table(
        table.set_column(0, UUID, pa.array([None, ""], pa.string())), uuid_required=False
    ).reason.to_pylist() == [None, None]


def test_a_count_beyond_the_long_range_is_rejected_as_too_large(spark, tmp_path):
    path = write_csv(tmp_path / "huge.csv", [row(1, num_active_inv="1e19"), row(2)])
    validated, checked = _validated_and_checked(spark, read_raw(spark, str(path)), False)
    assert checked.reason.to_pylist() == ["num_active_inv: too large", None]
    _assert_as_recorded(validated, "huge")
    _assert_same(validated, checked)


def test_the_checked_matrix_equals_the_pandas_encoders():
    frame, _ = make_snapshot(600, seed=31)  # holds unseen merchant categories and missing values
    checked = check_table(frame)
    assert checked.valid.all()
    expected = feature_matrix(checked.frame(), FEATURES)
    assert np.isnan(expected).any()
    assert np.array_equal(checked_matrix(checked), expected, equal_nan=True)
