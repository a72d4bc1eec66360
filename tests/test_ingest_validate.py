import logging

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from defaultrisk import read
from defaultrisk.errors import InputError
from defaultrisk.schema import FEATURE_NAMES, INPUT_COLUMNS, REASON, REQUIRED_COLUMNS, UUID
from defaultrisk.validate import rejected_rows, select_known_columns, valid_rows, validate

from rows import GOOD_ROW, row, uuid_for, write_csv


def _validated(spark, path, labelled=False, input_format="auto"):
    raw = select_known_columns(read.read_raw(spark, str(path), input_format), REQUIRED_COLUMNS)
    return validate(raw, labelled=labelled)


def _reasons(validated):
    return validated.select(UUID, REASON)


def test_original_format_parses_na_booleans_and_both_integer_forms(spark, tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        [
            row(1, age="20", num_active_inv="2", has_paid="True"),
            row(
                2,
                age="20.0",
                num_active_inv="2.0",
                has_paid="False",
                account_status="NA",
                avg_payment_span_0_3m="",
            ),
        ],
    )
    valid = valid_rows(_validated(spark, path)).select(
        UUID, "age", "num_active_inv", "has_paid", "account_status", "avg_payment_span_0_3m"
    )
    schema = T.StructType(
        [
            T.StructField(UUID, T.StringType()),
            T.StructField("age", T.LongType()),
            T.StructField("num_active_inv", T.LongType()),
            T.StructField("has_paid", T.BooleanType()),
            T.StructField("account_status", T.LongType()),
            T.StructField("avg_payment_span_0_3m", T.DoubleType()),
        ]
    )
    expected = spark.createDataFrame(
        [(uuid_for(1), 20, 2, True, 1, 5.25), (uuid_for(2), 20, 2, False, None, None)], schema
    )
    assert_df_equality(valid, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_kind_of_bad_value_is_rejected_with_its_reason(spark, tmp_path):
    rows = [
        row(1),
        row(2, uuid="not-a-uuid"),
        row(3, uuid="NA"),
        row(4, uuid=uuid_for(40)),
        row(5, uuid=uuid_for(40)),
        row(6, age="150"),
        row(7, age="17"),
        row(8, num_unpaid_bills="-1"),
        row(9, max_paid_inv_0_12m="abc"),
        row(10, num_active_inv="2.5"),
        row(11, has_paid="maybe"),
        row(12, time_hours="NaN", avg_payment_span_0_12m="inf"),
        row(13, merchant_category="Space travel", account_status="7"),
    ]
    validated = _validated(spark, write_csv(tmp_path / "t.csv", rows))
    expected = spark.createDataFrame(
        [
            (uuid_for(1), None),
            ("not-a-uuid", "uuid: malformed"),
            (None, "uuid: missing"),
            (uuid_for(40), "uuid: duplicate (2 rows)"),
            (uuid_for(40), "uuid: duplicate (2 rows)"),
            (uuid_for(6), "age: above maximum 120"),
            (uuid_for(7), "age: below minimum 18"),
            (uuid_for(8), "num_unpaid_bills: below minimum 0"),
            (uuid_for(9), "max_paid_inv_0_12m: not a number"),
            (uuid_for(10), "num_active_inv: not a whole number"),
            (uuid_for(11), "has_paid: not true/false"),
            (uuid_for(12), "avg_payment_span_0_12m: not a finite number; time_hours: not a finite number"),
            (uuid_for(13), None),
        ],
        f"{UUID} string, {REASON} string",
    )
    assert_df_equality(_reasons(validated), expected, ignore_row_order=True, ignore_nullable=True)


def test_rejects_keep_the_raw_values_as_read(spark, tmp_path):
    validated = _validated(
        spark, write_csv(tmp_path / "t.csv", [row(1), row(2, age="150.0", num_unpaid_bills="x")])
    )
    rejects = rejected_rows(validated)
    assert rejects.columns == [*INPUT_COLUMNS, "raw_line", REASON]
    got = rejects.select("age", "num_unpaid_bills", REASON).collect()
    assert [tuple(r) for r in got] == [
        ("150.0", "x", "age: above maximum 120; num_unpaid_bills: not a number")
    ]


def test_generated_snapshot_reconciles(spark, snapshot):
    path, frame, info = snapshot
    validated = _validated(spark, path)
    valid, rejected = valid_rows(validated).count(), rejected_rows(validated).count()
    assert valid + rejected == len(frame)
    assert rejected == info["expected_rejected_rows"]


def test_wrong_number_of_fields_is_a_reject_not_a_silent_null(spark, tmp_path):
    path = write_csv(tmp_path / "t.csv", [row(1), row(2)])
    text = path.read_text().splitlines()
    text[2] = ";".join(text[2].split(";")[:20])  # a truncated last line
    path.write_text("\n".join(text) + "\n")
    reasons = {r[UUID]: r[REASON] for r in _reasons(_validated(spark, path)).collect()}
    assert reasons == {uuid_for(1): None, uuid_for(2): "line: wrong number of fields"}


def test_byte_order_mark_in_the_header_is_ignored(spark, tmp_path):
    path = write_csv(tmp_path / "t.csv", [row(1)])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert valid_rows(_validated(spark, path)).count() == 1


def test_missing_columns_are_all_named(spark, tmp_path):
    columns = [c for c in INPUT_COLUMNS if c not in ("age", "has_paid", UUID)]
    path = write_csv(tmp_path / "t.csv", [row(1)], columns=columns)
    with pytest.raises(InputError) as excinfo:
        _validated(spark, path)
    message = str(excinfo.value)
    assert "3 required column(s)" in message
    for name in ("uuid", "age", "has_paid"):
        assert name in message


def test_extra_columns_are_ignored_and_logged(spark, tmp_path, caplog):
    path = write_csv(
        tmp_path / "t.csv",
        [{**row(1), "favourite_colour": "blue"}],
        columns=[*INPUT_COLUMNS, "favourite_colour"],
    )
    with caplog.at_level(logging.WARNING, logger="defaultrisk.validate"):
        validated = _validated(spark, path)
    assert "favourite_colour" in caplog.text
    assert "favourite_colour" not in valid_rows(validated).columns
    assert valid_rows(validated).count() == 1


def test_parquet_input_validates_like_the_csv(spark, tmp_path, snapshot):
    path, frame, _ = snapshot
    typed = frame.copy()
    typed["age"] = pd.to_numeric(
        typed["age"], errors="coerce"
    )  # a typed column, as a Parquet producer writes it
    parquet = tmp_path / "snapshot.parquet"
    typed.astype({c: "string" for c in typed.columns if c != "age"}).to_parquet(parquet)
    from_csv = valid_rows(_validated(spark, path))
    from_parquet = valid_rows(_validated(spark, parquet))
    assert from_parquet.count() > 0
    assert_df_equality(
        from_csv.select(UUID, *FEATURE_NAMES),
        from_parquet.select(UUID, *FEATURE_NAMES),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_unreadable_input_is_an_input_error(spark, tmp_path):
    with pytest.raises(InputError, match="cannot read input"):
        read.read_raw(spark, str(tmp_path / "nope.csv"))


def test_labelled_table_rejects_a_label_that_is_not_0_or_1(spark, tmp_path):
    path = write_csv(
        tmp_path / "t.csv", [row(1, default="1"), row(2, default="0.0"), row(3, default="2"), row(4)]
    )
    validated = _validated(spark, path, labelled=True).select(UUID, "default", REASON)
    expected = spark.createDataFrame(
        [
            (uuid_for(1), 1, None),
            (uuid_for(2), 0, None),
            (uuid_for(3), None, "default: not 0 or 1"),
            (uuid_for(4), None, None),
        ],
        f"{UUID} string, default int, {REASON} string",
    )
    assert_df_equality(validated, expected, ignore_row_order=True, ignore_nullable=True)
    assert GOOD_ROW["default"] == "NA"


def test_parquet_has_paid_written_as_0_and_1_reads_as_false_and_true(spark, tmp_path):
    frame = pd.DataFrame([row(1), row(2), row(3)])
    frame["has_paid"] = pd.Series([0, 1, None], dtype="Int64")
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    validated = _validated(spark, path).select(UUID, "has_paid", REASON)
    expected = spark.createDataFrame(
        [(uuid_for(1), False, None), (uuid_for(2), True, None), (uuid_for(3), None, None)],
        f"{UUID} string, has_paid boolean, {REASON} string",
    )
    assert_df_equality(validated, expected, ignore_row_order=True, ignore_nullable=True)
