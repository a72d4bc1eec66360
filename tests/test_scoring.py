import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from chispa import assert_df_equality

from defaultrisk import read
from defaultrisk.errors import ModelError
from defaultrisk.features import feature_matrix, model_input, xgb_feature_types
from defaultrisk.model import load_checked
from defaultrisk.schema import FEATURE_NAMES, IS_HIGH_RISK, PD, REASON, REASON_CODES, REQUIRED_COLUMNS, UUID
from defaultrisk.scoring.core import score_frame
from defaultrisk.scoring.udf import check_and_score, check_executor_libraries, worker_model
from defaultrisk.validate import duplicate_keys, select_known_columns, valid_rows, validate

from rows import row, write_csv

SCORE_SCHEMA = f"{UUID} string, {PD} double, {IS_HIGH_RISK} boolean, {REASON_CODES} array<string>"


@pytest.fixture(scope="module")
def known_snapshot(spark, snapshot):
    """The snapshot's known columns as read, what the scoring pass takes."""
    return select_known_columns(read.read_raw(spark, str(snapshot[0])), REQUIRED_COLUMNS).cache()


@pytest.fixture(scope="module")
def valid_snapshot(known_snapshot):
    return valid_rows(validate(known_snapshot)).cache()


def _payload(trained):
    return load_checked(trained[0]).payload


def score_partitions(known, payload, reason_codes=0, reason_rows="all"):
    """The scoring pass's scored rows (uuid, pd, is_high_risk, reason_codes), as the job writes them."""
    outcome = check_and_score(known, payload, dict(duplicate_keys(known)), reason_codes, reason_rows)
    return outcome.filter(outcome[REASON].isNull()).select(UUID, PD, IS_HIGH_RISK, REASON_CODES)


def _udf_scores(known, trained):
    return score_partitions(known, _payload(trained))


def _core_scores(spark, df, model):
    expected = score_frame(model_input(df).toPandas(), model)
    return spark.createDataFrame(expected, SCORE_SCHEMA)


def test_udf_pd_equals_score_frame_exactly(spark, known_snapshot, valid_snapshot, trained, model):
    got = _udf_scores(known_snapshot, trained)
    assert_df_equality(got, _core_scores(spark, valid_snapshot, model), ignore_row_order=True)
    assert got.count() == valid_snapshot.count()


def test_nulls_and_unseen_categories_score_without_error(spark, tmp_path, trained, model):
    rows = [
        row(1),
        row(2, merchant_category="Space travel", merchant_group="Moon goods", name_in_email="???"),
        row(3, **{c: "NA" for c in ("age", "has_paid", "num_unpaid_bills", "account_status")}),
    ]
    raw = select_known_columns(
        read.read_raw(spark, str(write_csv(tmp_path / "t.csv", rows))), REQUIRED_COLUMNS
    )
    valid = valid_rows(validate(raw))
    got = _udf_scores(raw, trained)
    assert_df_equality(got, _core_scores(spark, valid, model), ignore_row_order=True)
    pds = [r[PD] for r in got.collect()]
    assert len(pds) == 3
    assert all(0.0 < p < 1.0 for p in pds)


def test_scores_do_not_depend_on_partitions_or_empty_partitions(
    spark, known_snapshot, valid_snapshot, trained
):
    few = known_snapshot.join(valid_snapshot.select(UUID).limit(5), on=UUID, how="left_semi")
    one = _udf_scores(few.coalesce(1), trained)
    spread = _udf_scores(few.repartition(12), trained)  # most of the 12 partitions are empty
    assert_df_equality(one, spread, ignore_row_order=True)
    assert spread.count() == 5


def test_scores_do_not_depend_on_the_arrow_batch_size(spark, known_snapshot, trained):
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    try:
        spark.conf.set(key, "7")
        small = _udf_scores(known_snapshot, trained).toPandas()
        spark.conf.set(key, "5000")
        large = _udf_scores(known_snapshot, trained).toPandas()
    finally:
        spark.conf.set(key, previous)
    pd.testing.assert_frame_equal(
        small.sort_values(UUID).reset_index(drop=True), large.sort_values(UUID).reset_index(drop=True)
    )


def test_empty_input_gives_empty_scores(spark, known_snapshot, trained):
    assert _udf_scores(known_snapshot.limit(0), trained).count() == 0


def test_score_frame_flags_exactly_the_pds_at_or_above_the_threshold(valid_snapshot, model):
    scores = score_frame(model_input(valid_snapshot).toPandas(), model)
    assert scores.columns.tolist() == [UUID, PD, IS_HIGH_RISK, REASON_CODES]
    np.testing.assert_array_equal(scores[IS_HIGH_RISK].to_numpy(), scores[PD].to_numpy() >= model.threshold)
    assert scores[PD].between(0, 1).all()


def test_score_frame_on_an_empty_frame(valid_snapshot, model):
    scores = score_frame(model_input(valid_snapshot).limit(0).toPandas(), model)
    assert len(scores) == 0
    assert scores.columns.tolist() == [UUID, PD, IS_HIGH_RISK, REASON_CODES]


def test_an_executor_with_another_xgboost_is_refused(spark, monkeypatch):
    check_executor_libraries(spark)  # the local executors run the driver's interpreter
    monkeypatch.setattr(xgb, "__version__", "0.0-not-the-executors")
    with pytest.raises(
        ModelError, match=r"executors run XGBoost .* but the driver runs 0\.0-not-the-executors"
    ):
        check_executor_libraries(spark)


def test_a_worker_refuses_a_model_checked_under_another_xgboost(trained):
    payload = _payload(trained)
    with pytest.raises(ModelError, match=r"the driver 0\.0-elsewhere"):
        worker_model(payload, "0.0-elsewhere")
    assert worker_model(payload, xgb.__version__).version == payload.version


def _contributions(model, frame):
    matrix = feature_matrix(frame)
    dmatrix = xgb.DMatrix(
        matrix, feature_names=list(FEATURE_NAMES), feature_types=xgb_feature_types(), enable_categorical=True
    )
    return model.booster.predict(dmatrix, pred_contribs=True)[:, :-1]


def test_reason_codes_are_the_largest_positive_contributions(valid_snapshot, model):
    frame = model_input(valid_snapshot).limit(300).toPandas()
    scores = score_frame(frame, model, reason_codes=3)
    contributions = _contributions(model, frame)
    for codes, row_contributions in zip(scores[REASON_CODES], contributions, strict=True):
        positive = {name: c for name, c in zip(FEATURE_NAMES, row_contributions, strict=True) if c > 0}
        expected = sorted(positive, key=lambda name: -positive[name])[:3]
        assert codes == expected
    assert scores[REASON_CODES].map(len).max() == 3


def test_reason_codes_in_the_udf_equal_score_frame_and_ignore_batch_size(
    spark, known_snapshot, valid_snapshot, trained, model
):
    payload = _payload(trained)
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    try:
        spark.conf.set(key, "13")
        small = score_partitions(known_snapshot, payload, reason_codes=3)
        small_rows = small.collect()
    finally:
        spark.conf.set(key, previous)
    large = score_partitions(known_snapshot, payload, reason_codes=3)
    assert_df_equality(spark.createDataFrame(small_rows, small.schema), large, ignore_row_order=True)
    core = score_frame(model_input(valid_snapshot).toPandas(), model, reason_codes=3)
    assert_df_equality(large, spark.createDataFrame(core, SCORE_SCHEMA), ignore_row_order=True)


def test_reason_codes_off_leaves_the_column_null(valid_snapshot, model):
    scores = score_frame(model_input(valid_snapshot).limit(20).toPandas(), model, reason_codes=0)
    assert scores[REASON_CODES].isna().all()


def test_high_risk_reason_rows_name_reasons_for_the_rows_at_the_threshold_only(
    spark, known_snapshot, valid_snapshot, trained, model
):
    """`reason_rows = "high_risk"` (the shipped default): the high-risk rows' reasons are the ones
    "all" gives them, whatever their batch; every other row's reason_codes is null."""
    frame = model_input(valid_snapshot).toPandas()
    every = score_frame(frame, model, reason_codes=3, reason_rows="all")
    high_only = score_frame(frame, model, reason_codes=3, reason_rows="high_risk")
    assert 0 < every[IS_HIGH_RISK].sum() < len(every)
    assert high_only[PD].tolist() == every[PD].tolist()
    for high, only, all_rows in zip(
        every[IS_HIGH_RISK], high_only[REASON_CODES], every[REASON_CODES], strict=True
    ):
        assert only == all_rows if high else only is None
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = spark.conf.get(key)
    try:
        spark.conf.set(key, "7")
        udf_rows = score_partitions(known_snapshot, _payload(trained), 3, "high_risk").collect()
    finally:
        spark.conf.set(key, previous)
    expected = spark.createDataFrame(high_only, SCORE_SCHEMA)
    assert_df_equality(spark.createDataFrame(udf_rows, SCORE_SCHEMA), expected, ignore_row_order=True)
