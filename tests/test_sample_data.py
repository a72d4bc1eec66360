"""The sample data generator: realistic, deterministic tables whose defaults carry learnable signal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sampledata import (
    BAD_KINDS,
    DEFAULT_RATE,
    UNSEEN_CATEGORY,
    generate_customers,
    make_history,
    make_snapshot,
    make_snapshots,
    snapshot_seed,
    write_original_csv,
    write_truth,
)
from sklearn.metrics import roc_auc_score

from defaultrisk.schema import (
    CATEGORY,
    CODE,
    COUNT,
    DEFAULT,
    FEATURE_NAMES,
    FEATURES,
    FLAG,
    INPUT_COLUMNS,
    MERCHANT_CATEGORIES,
    MERCHANT_GROUPS,
    NAME_IN_EMAIL,
    NUMERIC,
    UUID,
    UUID_PATTERN,
)

REPO = Path(__file__).resolve().parents[1]
ROWS = 50_000
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
WHOLE = {f.name for f in FEATURES if f.kind in (COUNT, CODE)}
MISSING_TEXT = ("", "NA")

# Missing shares measured on the real customer rows; every other feature is never missing.
REAL_MISSING = {
    "account_days_in_dc_12_24m": 0.115,
    "account_days_in_rem_12_24m": 0.115,
    "account_days_in_term_12_24m": 0.115,
    "account_incoming_debt_vs_paid_0_24m": 0.596,
    "account_status": 0.544,
    "account_worst_status_0_3m": 0.544,
    "account_worst_status_12_24m": 0.671,
    "account_worst_status_3_6m": 0.576,
    "account_worst_status_6_12m": 0.604,
    "avg_payment_span_0_12m": 0.237,
    "avg_payment_span_0_3m": 0.492,
    "num_active_div_by_paid_inv_0_12m": 0.228,
    "num_arch_written_off_0_12m": 0.177,
    "num_arch_written_off_12_24m": 0.177,
    "worst_status_active_inv": 0.698,
}


@pytest.fixture(scope="module")
def labelled() -> tuple[pd.DataFrame, np.ndarray]:
    return make_history(ROWS, seed=7)


@pytest.fixture(scope="module")
def customers(labelled) -> pd.DataFrame:
    return labelled[0].drop(columns=[DEFAULT])


def _csv_bytes(df: pd.DataFrame, path: Path) -> bytes:
    write_original_csv(df, path)
    return path.read_bytes()


def _read_text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)


def _invalid_rows(raw: pd.DataFrame) -> set[int]:
    """Rows a reader must reject, judged from the text alone: bad keys, bad numbers, out-of-range values."""
    bad: set[int] = set()
    keys = raw[UUID].str.strip()
    bad |= set(np.flatnonzero(~keys.str.fullmatch(UUID_PATTERN)))
    bad |= set(np.flatnonzero(keys.str.lower().duplicated(keep=False) & (keys != "")))
    for feature in FEATURES:
        if feature.kind in (CATEGORY, FLAG):
            continue
        for row, text in enumerate(raw[feature.name].str.strip()):
            if text in MISSING_TEXT:
                continue
            try:
                value = float(text)
            except ValueError:
                bad.add(row)
                continue
            if (
                (feature.name in WHOLE and value != np.floor(value))
                or (feature.minimum is not None and value < feature.minimum)
                or (feature.maximum is not None and value > feature.maximum)
            ):
                bad.add(row)
    return bad


def test_columns_follow_the_schema(labelled):
    frame, true_pd = labelled
    assert list(frame.columns) == list(INPUT_COLUMNS)
    assert len(frame) == len(true_pd) == ROWS
    small, small_pd = generate_customers(50, seed=1)
    assert list(small.columns) == [UUID, *FEATURE_NAMES]
    assert len(small_pd) == 50
    snapshot, _ = make_snapshot(50, seed=1, bad_rows=3)
    assert list(snapshot.columns) == [UUID, *FEATURE_NAMES]
    assert len(snapshot) == 53


def test_uuids_are_canonical_lowercase_v4_and_unique(customers):
    assert customers[UUID].map(lambda u: bool(UUID4.match(u))).all()
    assert customers[UUID].is_unique


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    first = _csv_bytes(make_history(400, seed=3, unlabeled_fraction=0.2)[0], tmp_path / "a.csv")
    again = _csv_bytes(make_history(400, seed=3, unlabeled_fraction=0.2)[0], tmp_path / "b.csv")
    other = _csv_bytes(make_history(400, seed=4, unlabeled_fraction=0.2)[0], tmp_path / "c.csv")
    assert first == again
    assert first != other

    snap = _csv_bytes(make_snapshot(300, seed=3, bad_rows=9)[0], tmp_path / "s1.csv")
    assert snap == _csv_bytes(make_snapshot(300, seed=3, bad_rows=9)[0], tmp_path / "s2.csv")

    frame, true_pd = generate_customers(200, seed=3)
    write_truth(frame[UUID], true_pd, tmp_path / "t1.csv")
    write_truth(frame[UUID], true_pd, tmp_path / "t2.csv")
    assert (tmp_path / "t1.csv").read_bytes() == (tmp_path / "t2.csv").read_bytes()


def test_mean_true_pd_is_the_real_default_rate(labelled):
    assert abs(labelled[1].mean() - DEFAULT_RATE) < 0.0005
    _, small_pd = generate_customers(300, seed=5)
    assert abs(small_pd.mean() - DEFAULT_RATE) < 0.0005
    assert ((labelled[1] > 0) & (labelled[1] < 1)).all()


def test_labels_are_whole_and_default_at_the_real_rate(labelled):
    labels = labelled[0][DEFAULT]
    assert labels.notna().all()
    assert set(labels.unique()) <= {0, 1}
    assert abs(labels.mean() - DEFAULT_RATE) < 0.002

    partly, _ = make_history(4000, seed=2, unlabeled_fraction=0.3)
    assert 0.26 < partly[DEFAULT].isna().mean() < 0.34
    assert set(partly[DEFAULT].dropna().unique()) <= {0, 1}


def test_missing_values_come_in_the_real_groups(customers):
    missing = customers.isna()
    assert (missing["account_status"] == missing["account_worst_status_0_3m"]).all()
    days = ["account_days_in_dc_12_24m", "account_days_in_rem_12_24m", "account_days_in_term_12_24m"]
    assert missing[days].eq(missing[days[0]], axis=0).all(axis=None)
    for window in ("account_worst_status_3_6m", "account_worst_status_6_12m", "account_worst_status_12_24m"):
        assert missing.loc[missing["account_status"], window].all()
    assert (missing["worst_status_active_inv"] == (customers["num_active_inv"] == 0)).all()
    assert (missing["num_arch_written_off_0_12m"] == missing["num_arch_written_off_12_24m"]).all()
    assert missing.loc[missing["avg_payment_span_0_12m"], "avg_payment_span_0_3m"].all()


def test_missing_rates_match_the_real_data(customers):
    rates = customers.isna().mean()
    for name in FEATURE_NAMES:
        assert abs(rates[name] - REAL_MISSING.get(name, 0.0)) < 0.02, name
    assert rates[UUID] == 0.0


def test_whole_number_columns_hold_whole_numbers_and_known_codes(customers):
    for feature in FEATURES:
        if feature.name not in WHOLE:
            continue
        values = customers[feature.name].dropna().to_numpy(dtype=float)
        assert (values == np.floor(values)).all(), feature.name
        if feature.kind == CODE:
            assert set(np.unique(values)) <= set(feature.values), feature.name


def test_values_stay_within_the_schema(customers):
    for feature in FEATURES:
        column = customers[feature.name]
        if feature.kind in (COUNT, CODE, NUMERIC):
            values = column.dropna().to_numpy(dtype=float)
            if feature.minimum is not None:
                assert values.min() >= feature.minimum, feature.name
            if feature.maximum is not None:
                assert values.max() <= feature.maximum, feature.name
    assert set(customers["merchant_category"]) <= set(MERCHANT_CATEGORIES)
    assert set(customers["name_in_email"]) <= set(NAME_IN_EMAIL)
    assert customers["name_in_email"].nunique() >= len(NAME_IN_EMAIL) - 1
    group_of = {cat: group for group, cats in MERCHANT_GROUPS.items() for cat in cats}
    assert (customers["merchant_category"].map(group_of) == customers["merchant_group"]).all()
    assert customers["has_paid"].dtype == bool
    assert 0.75 < customers["has_paid"].mean() < 0.95


def test_distributions_look_like_the_real_ones(customers):
    assert 31 <= customers["age"].median() <= 37
    assert 14 <= customers["time_hours"].median() <= 17.5
    assert 4000 <= customers["max_paid_inv_0_12m"].median() <= 8500
    assert 10 <= customers["avg_payment_span_0_12m"].median() <= 20
    assert customers["num_unpaid_bills"].median() <= 1
    assert (customers["recovery_debt"] > 0).mean() < 0.01
    shares = customers["merchant_group"].value_counts(normalize=True)
    assert shares.index[0] == "Entertainment"
    assert 0.4 < shares["Entertainment"] < 0.57


def test_original_csv_text(tmp_path):
    frame, _ = make_history(3000, seed=1, unlabeled_fraction=0.1)
    path = tmp_path / "history.csv"
    data = _csv_bytes(frame, path)
    assert b"\r" not in data
    text = data.decode("utf-8")
    lines = text.split("\n")
    assert lines[0] == ";".join(INPUT_COLUMNS)
    assert lines[-1] == ""
    assert all(line.count(";") == len(INPUT_COLUMNS) - 1 for line in lines[1:-1])
    assert len(lines) == len(frame) + 2

    raw = _read_text(path)
    assert set(raw["has_paid"]) == {"True", "False"}
    assert "NA" in set(raw[DEFAULT]) and "NA" in set(raw["account_status"])
    assert "" not in set(raw.to_numpy().ravel())
    integer_written = raw["status_max_archived_0_24_months"]
    assert "2" in set(integer_written) and not integer_written.str.contains(r"\.").any()
    float_written = raw["account_worst_status_0_3m"]
    assert "2.0" in set(float_written) and float_written[float_written != "NA"].str.endswith(".0").all()

    back = pd.read_csv(path, sep=";", na_values=["NA"], keep_default_na=False)
    for name in FEATURE_NAMES:
        if frame[name].dtype.kind in "if":
            np.testing.assert_allclose(back[name].to_numpy(float), frame[name].to_numpy(float), err_msg=name)
        else:
            assert (back[name] == frame[name]).all(), name


def test_snapshot_bad_rows_are_exactly_the_expected_ones(tmp_path):
    bad_rows = 2 * len(BAD_KINDS)
    frame, info = make_snapshot(3000, seed=5, bad_rows=bad_rows)
    assert info["bad_kinds"] == list(BAD_KINDS) * 2
    write_original_csv(frame, tmp_path / "snapshot.csv")
    raw = _read_text(tmp_path / "snapshot.csv")
    assert len(raw) == 3000 + bad_rows
    invalid = _invalid_rows(raw)
    assert len(invalid) == info["expected_rejected_rows"] == bad_rows + 2
    assert invalid == set(info["rejected_rows"])
    assert np.isnan(info["true_pd"][sorted(invalid)]).all()
    assert not np.isnan(np.delete(info["true_pd"], sorted(invalid))).any()

    keys = raw[UUID]
    assert (keys == "not-a-uuid").sum() == 2 and (keys == "").sum() == 2
    assert keys[keys.str.fullmatch(UUID_PATTERN)].duplicated().sum() == 2
    assert {"150", "12"} <= set(raw["age"])
    assert (raw["num_unpaid_bills"] == "-1").sum() == 2
    assert (raw["max_paid_inv_0_12m"] == "abc").sum() == 2
    assert (raw["num_active_inv"] == "2.5").sum() == 2

    unseen = set(np.flatnonzero(raw["merchant_category"] == UNSEEN_CATEGORY))
    assert len(unseen) >= 3
    assert not unseen & invalid


def test_snapshot_without_bad_rows_is_all_valid_but_has_an_unseen_category(tmp_path):
    frame, info = make_snapshot(200, seed=8)
    write_original_csv(frame, tmp_path / "clean.csv")
    raw = _read_text(tmp_path / "clean.csv")
    assert info["expected_rejected_rows"] == 0 and info["bad_kinds"] == []
    assert _invalid_rows(raw) == set()
    assert (raw["merchant_category"] == UNSEEN_CATEGORY).sum() == 1


def test_true_pd_ranks_defaults_well_but_not_perfectly(labelled):
    frame, true_pd = labelled
    assert 0.85 < roc_auc_score(frame[DEFAULT].astype(int), true_pd) < 0.95


def test_true_pd_follows_the_risk_drivers(labelled):
    frame, true_pd = labelled
    risk = pd.Series(true_pd, index=frame.index)
    status = frame["status_max_archived_0_24_months"]
    assert risk[status == 3].mean() > 2 * risk[status == 1].mean()
    assert risk[frame["age"] < 22].mean() > risk[frame["age"] > 50].mean()
    assert risk[~frame["has_paid"]].mean() > risk[frame["has_paid"]].mean()


def test_cli_writes_files_truth_and_summary(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = ["--out", str(out), "--history-rows", "500", "--snapshot-rows", "300"]
    args += ["--dates", "2026-11-21,2026-11-22", "--bad-rows", "7", "--seed", "3"]
    done = subprocess.run(
        [sys.executable, "scripts/make_sample_data.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    stdout = done.stdout.strip().split("\n")
    summary = json.loads(stdout[-1])
    assert (
        len(stdout) == 1 + 2 + 2 * 2 + 1
    )  # history and its truth, each snapshot and its truth, the outcomes

    history = _read_text(out / "history.csv")
    assert summary["history"]["rows"] == len(history) == 500
    history_truth = pd.read_csv(out / "truth" / "history_true_pd.csv", sep=";")
    assert list(history_truth.columns) == [UUID, "true_pd"]
    assert list(history_truth[UUID]) == list(history[UUID])

    seen: set[str] = set()
    for entry, day in zip(summary["snapshots"], ("2026-11-21", "2026-11-22"), strict=True):
        path = out / "snapshots" / f"customers_{day}.csv"
        assert Path(entry["path"]) == path
        snapshot = _read_text(path)
        assert entry["rows"] == len(snapshot) == 307
        assert entry["expected_rejected_rows"] == len(_invalid_rows(snapshot)) == 8
        truth = pd.read_csv(out / "truth" / f"customers_{day}_true_pd.csv", sep=";")
        assert len(truth) == len(snapshot) - entry["expected_rejected_rows"]
        assert set(truth[UUID]) <= set(snapshot[UUID])
        if seen:  # the second date brings back most of the first date's customers
            assert 0.6 * len(truth) < len(seen & set(truth[UUID])) < 0.9 * len(truth)
        seen |= set(truth[UUID])


def test_snapshots_follow_one_portfolio():
    """Each later date brings back about 80% of the previous date's customers, about 3% of them with
    changed values and true pd; the first is the single snapshot of its date; uuids stay unique."""
    days = [date(2025, 11, 21), date(2025, 11, 22)]
    (first, first_info), (second, second_info) = make_snapshots(2000, days, seed=4)
    alone, alone_info = make_snapshot(2000, snapshot_seed(4, days[0]))
    pd.testing.assert_frame_equal(first, alone)
    np.testing.assert_array_equal(first_info["true_pd"], alone_info["true_pd"])
    assert second[UUID].is_unique and list(second.columns) == list(first.columns)
    assert (second.dtypes == first.dtypes).all()
    both = first.merge(second, on=UUID, suffixes=("_1", "_2"))
    assert 1550 < len(both) < 1650
    features = [f for f in FEATURE_NAMES if f != "merchant_category"]  # damage writes the unseen one
    same = np.ones(len(both), dtype=bool)
    for name in features:
        a, b = both[f"{name}_1"], both[f"{name}_2"]
        same &= ((a == b) | (a.isna() & b.isna())).to_numpy()
    assert 0.015 < 1 - same.mean() < 0.05
    # A returning customer keeps its true pd unless its values changed.
    pd_first = pd.Series(first_info["true_pd"], index=first[UUID])
    pd_second = pd.Series(second_info["true_pd"], index=second[UUID])
    kept = pd_first[both[UUID]].to_numpy() == pd_second[both[UUID]].to_numpy()
    valid = np.isfinite(pd_first[both[UUID]].to_numpy()) & np.isfinite(pd_second[both[UUID]].to_numpy())
    np.testing.assert_array_equal(kept[valid], same[valid])
