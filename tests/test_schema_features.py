import numpy as np
import pandas as pd
import pytest

from defaultrisk import schema
from defaultrisk.features import feature_matrix, xgb_feature_types
from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES

ORIGINAL_HEADER = (
    "uuid;default;account_amount_added_12_24m;account_days_in_dc_12_24m;account_days_in_rem_12_24m;"
    "account_days_in_term_12_24m;account_incoming_debt_vs_paid_0_24m;account_status;"
    "account_worst_status_0_3m;account_worst_status_12_24m;account_worst_status_3_6m;"
    "account_worst_status_6_12m;age;avg_payment_span_0_12m;avg_payment_span_0_3m;merchant_category;"
    "merchant_group;has_paid;max_paid_inv_0_12m;max_paid_inv_0_24m;name_in_email;"
    "num_active_div_by_paid_inv_0_12m;num_active_inv;num_arch_dc_0_12m;num_arch_dc_12_24m;"
    "num_arch_ok_0_12m;num_arch_ok_12_24m;num_arch_rem_0_12m;num_arch_written_off_0_12m;"
    "num_arch_written_off_12_24m;num_unpaid_bills;status_last_archived_0_24m;"
    "status_2nd_last_archived_0_24m;status_3rd_last_archived_0_24m;status_max_archived_0_6_months;"
    "status_max_archived_0_12_months;status_max_archived_0_24_months;recovery_debt;"
    "sum_capital_paid_account_0_12m;sum_capital_paid_account_12_24m;sum_paid_inv_0_12m;time_hours;"
    "worst_status_active_inv"
)


def test_schema_follows_the_original_file():
    assert ";".join(schema.INPUT_COLUMNS) == ORIGINAL_HEADER
    assert len(FEATURES) == 41
    assert len(set(FEATURE_NAMES)) == 41


def test_vocabularies_match_the_real_data():
    by_name = {f.name: f for f in FEATURES}
    assert len(by_name["merchant_category"].values) == 55
    assert len(by_name["merchant_group"].values) == 12
    assert set(by_name["name_in_email"].values) == {
        "F",
        "F+L",
        "F1+L",
        "Initials",
        "L",
        "L1+F",
        "Nick",
        "no_match",
    }
    assert [f.name for f in FEATURES if f.kind == CATEGORY] == [
        "merchant_category",
        "merchant_group",
        "name_in_email",
    ]


def test_feature_spec_is_plain_data_with_types():
    spec = schema.feature_spec()
    age = next(f for f in spec if f["name"] == "age")
    assert age == {"name": "age", "kind": "count", "spark_type": "bigint", "minimum": 18.0, "maximum": 120.0}
    assert next(f for f in spec if f["name"] == "has_paid")["spark_type"] == "boolean"


def _frame(**values) -> pd.DataFrame:
    base = {f.name: [np.nan, np.nan] for f in FEATURES}
    base.update(values)
    return pd.DataFrame({"uuid": ["a", "b"], **base})


def test_feature_matrix_codes_categories_by_vocabulary_and_unseen_as_missing():
    vocab = next(f for f in FEATURES if f.name == "merchant_group").values
    pdf = _frame(merchant_group=["Electronics", "Martian goods"], age=[30.0, np.nan])
    matrix = feature_matrix(pdf)
    group = FEATURE_NAMES.index("merchant_group")
    age = FEATURE_NAMES.index("age")
    assert matrix.dtype == np.float32
    assert matrix.shape == (2, 41)
    assert matrix[0, group] == vocab.index("Electronics")
    assert np.isnan(matrix[1, group])
    assert matrix[0, age] == 30.0
    assert np.isnan(matrix[1, age])


def test_feature_matrix_ignores_the_frames_column_order():
    pdf = _frame(age=[30.0, 41.0], num_unpaid_bills=[1.0, 0.0], merchant_group=["Electronics", None])
    shuffled = pdf[list(reversed(pdf.columns))]
    np.testing.assert_array_equal(feature_matrix(pdf), feature_matrix(shuffled))


def test_feature_matrix_refuses_text_in_a_numeric_column():
    with pytest.raises(ValueError):
        feature_matrix(_frame(age=["thirty", "41"]))


def test_xgboost_feature_types_mark_categories():
    types = xgb_feature_types()
    assert types.count("c") == 3
    assert types[FEATURE_NAMES.index("merchant_category")] == "c"
