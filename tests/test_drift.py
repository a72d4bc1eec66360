"""Population drift: PSI is ~0 for customers drawn like the training rows and large where they moved."""

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from sampledata import UNSEEN_CATEGORY, generate_customers, make_snapshot

from defaultrisk.drift import (
    ACT,
    MIN_BIN_SHARE,
    MISSING,
    NO_ROWS,
    OTHER,
    STABLE,
    WATCH,
    band,
    bin_counts,
    bin_index,
    bin_labels,
    drift_table,
    over_limit,
    psi,
    reference_profile,
)
from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES, FLAG, NUMERIC, PD, UUID
from defaultrisk.scoring.drift_report import (
    DRIFT_JSON,
    DRIFT_PARQUET,
    TOP_MOVERS_PNG,
    limit_warning,
    write_drift_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REFERENCE_ROWS = 20_000
SNAPSHOT_ROWS = 10_000
# Snapshots of 10,000 rows against a 20,000-row reference: over 15 seeds the largest PSI of any column
# was 0.010 (merchant_category: 57 bins, many of them a few rows each); pd and the rest stayed under 0.007.
SAME_POPULATION_PSI = 0.02
SHIFTED_NUMBER = "avg_payment_span_0_12m"
SHIFTED_CATEGORY = "name_in_email"
SHIFTED = {SHIFTED_NUMBER, SHIFTED_CATEGORY, PD}
SNAPSHOT_DATE = date(2026, 11, 24)


def model_input_like(frame: pd.DataFrame) -> pd.DataFrame:
    """Generated rows as the training job holds them (`features.model_input(...).toPandas()`)."""
    return frame.assign(**{f.name: frame[f.name].astype("float64") for f in FEATURES if f.kind != CATEGORY})


def typed_rows(spark, frame: pd.DataFrame, pds: np.ndarray):
    """Generated rows typed as `validate.valid_rows` types them (nulls for missing), plus their pd."""
    columns = {UUID: frame[UUID].astype(str)}
    for f in FEATURES:
        nullable = {CATEGORY: object, FLAG: "boolean", NUMERIC: "Float64"}.get(f.kind, "Int64")
        columns[f.name] = frame[f.name].astype(nullable)
    columns[PD] = np.asarray(pds, dtype=np.float64)
    schema = ", ".join(
        [f"{UUID} string", *[f"`{f.name}` {f.spark_type.simpleString()}" for f in FEATURES], f"{PD} double"]
    )
    return spark.createDataFrame(pd.DataFrame(columns), schema).cache()


def counted_in_pandas(profile: dict, pdf: pd.DataFrame) -> dict[str, list[int]]:
    """The counts `bin_counts` must give, from the training side's binning of the same rows."""
    return {
        name: np.bincount(bin_index(spec, pdf[name]), minlength=len(spec["shares"])).tolist()
        for name, spec in profile["columns"].items()
    }


@pytest.fixture(scope="module")
def reference():
    """The training side: features as the training job holds them, their pd and the profile."""
    frame, pds = generate_customers(REFERENCE_ROWS, seed=101)
    pdf = model_input_like(frame)
    return pdf, pds, reference_profile(pdf, pds)


@pytest.fixture(scope="module")
def same_population(spark):
    """Another draw from the same generator: its rows in pandas and in Spark."""
    frame, pds = generate_customers(SNAPSHOT_ROWS, seed=202)
    rows = typed_rows(spark, frame, pds)
    yield model_input_like(frame).assign(**{PD: pds}), rows
    rows.unpersist()


@pytest.fixture(scope="module")
def shifted_table(spark, reference):
    """Another draw with one number tripled, a category's share moved and pd tripled."""
    frame, pds = generate_customers(SNAPSHOT_ROWS, seed=202)
    frame[SHIFTED_NUMBER] = frame[SHIFTED_NUMBER] * 3
    frame.loc[frame.index % 2 == 0, SHIFTED_CATEGORY] = "Nick"
    rows = typed_rows(spark, frame, np.minimum(3 * pds, 1.0))
    table = drift_table(reference[2], bin_counts(rows, reference[2]))
    rows.unpersist()
    return table


def test_the_profile_is_small_plain_json_and_deterministic(reference):
    pdf, pds, profile = reference
    text = json.dumps(profile, allow_nan=False)
    assert len(text) < 20_000  # it lives in the model's manifest
    assert json.loads(text) == profile
    assert json.dumps(reference_profile(pdf, pds), allow_nan=False) == text
    assert list(profile["columns"]) == [*FEATURE_NAMES, PD]


def test_the_bins_are_meaningful(reference):
    _, _, profile = reference
    for name, spec in profile["columns"].items():
        shares = spec["shares"]
        assert len(shares) == len(bin_labels(spec)), name
        assert math.isclose(sum(shares), 1.0), name
        if "edges" in spec:
            assert np.all(np.diff(spec["edges"]) > 0), name  # ties deduplicated
            assert min(shares[:-1]) >= MIN_BIN_SHARE, name  # no empty or near-empty bin
    columns = profile["columns"]
    assert len(columns["age"]["edges"]) == 9  # a number without ties: deciles
    assert all(math.isclose(s, 0.1, abs_tol=0.01) for s in columns[PD]["shares"][:-1])
    # A count that is mostly zero: all the zeros in one bin, then the deciles of the rest.
    assert columns["num_unpaid_bills"]["edges"][0] == 0.0
    assert bin_labels(columns["merchant_group"])[-2:] == [OTHER, MISSING]
    assert bin_labels(columns["has_paid"]) == ["false", "true", MISSING]
    # The missing share is kept: account_status is missing for customers without an account.
    assert 0.4 < columns["account_status"]["shares"][-1] < 0.7


def test_typed_rows_are_typed_as_valid_rows_are(same_population):
    types = {field.name: field.dataType for field in same_population[1].schema.fields}
    assert all(types[f.name] == f.spark_type for f in FEATURES)


def test_weights_count_like_repeated_rows():
    frame, pds = generate_customers(2_000, seed=7)
    pdf = model_input_like(frame)
    weights = np.arange(len(pdf)) % 3 + 1
    weighted = reference_profile(pdf, pds, weights=weights, pd_weights=weights)
    repeated = reference_profile(pdf.loc[pdf.index.repeat(weights)], np.repeat(pds, weights))
    for name, spec in weighted["columns"].items():
        assert spec.get("edges") == repeated["columns"][name].get("edges"), name
        np.testing.assert_allclose(spec["shares"], repeated["columns"][name]["shares"], atol=1e-12)


def test_a_snapshot_drawn_like_the_training_rows_is_stable(reference, same_population):
    pdf, rows = same_population
    counts = bin_counts(rows, reference[2])
    # Spark counts every bin exactly as the training side bins the same rows in pandas.
    assert counts == counted_in_pandas(reference[2], pdf)
    table = drift_table(reference[2], counts)
    assert list(table["feature"].sort_values()) == sorted([*FEATURE_NAMES, PD])
    assert table["psi"].max() < SAME_POPULATION_PSI, table.head(3)[["feature", "psi", "moved_bin"]]
    assert set(table["band"]) == {STABLE}
    assert list(table["psi"]) == sorted(table["psi"], reverse=True)


def test_a_shifted_snapshot_acts_on_exactly_the_shifted_columns(shifted_table):
    table = shifted_table.set_index("feature")
    assert set(table.index[table["psi"] > 0.25]) == SHIFTED
    assert set(table.loc[list(SHIFTED), "band"]) == {ACT}
    assert table.drop(index=list(SHIFTED))["psi"].max() < SAME_POPULATION_PSI
    assert set(shifted_table["feature"][:3]) == SHIFTED  # the top movers come first
    name = table.loc[SHIFTED_CATEGORY]
    assert name["moved_bin"] == "Nick"
    assert name["moved_bin_share"] > 0.5
    assert name["moved_bin_reference_share"] < 0.1


def test_every_row_lands_in_one_bin_of_every_column(spark, reference):
    """Nothing is lost: missing values in `missing`, a category first seen tonight in `other`."""
    frame, _ = make_snapshot(3_000, seed=5)  # a few customers carry a merchant category never seen
    frame = frame.astype({"has_paid": "boolean"})
    for column in ("merchant_group", "has_paid", "time_hours"):
        frame.loc[frame.index % 7 == 0, column] = None
    rows = typed_rows(spark, frame, np.where(frame.index % 11 == 0, np.nan, 0.01))
    counts = bin_counts(rows, reference[2])
    columns = [*FEATURE_NAMES, PD]
    found = rows.select(
        F.count("*").alias("rows"),
        F.count_if(F.col("merchant_category") == UNSEEN_CATEGORY).alias("unseen"),
        *[F.count_if(F.col(n).isNull()).alias(n) for n in columns],
    ).first()
    rows.unpersist()
    assert found["rows"] == len(frame)
    assert {name: sum(c) for name, c in counts.items()} == dict.fromkeys(columns, len(frame))
    assert {name: c[-1] for name, c in counts.items()} == {n: found[n] for n in columns}  # `missing`
    assert all(found[n] > 0 for n in ("merchant_group", "has_paid", "time_hours", PD))
    assert found["unseen"] > 0
    assert counts["merchant_category"][-2] == found["unseen"]  # `other`
    assert counts["merchant_group"][-2] == 0


def test_only_the_asked_columns_are_counted(reference, same_population):
    profile, rows = reference[2], same_population[1]
    with pytest.raises(ValueError, match="lack the profiled columns pd"):
        bin_counts(rows.drop(PD), profile)
    with pytest.raises(ValueError, match="not in the drift profile: surname"):
        bin_counts(rows, profile, columns=["surname"])
    counts = bin_counts(rows.select(PD), profile, columns=[PD])
    assert counts == {PD: counted_in_pandas(profile, same_population[0])[PD]}


def test_psi_of_identical_shares_is_zero_and_of_empty_bins_finite():
    assert psi([0.25, 0.25, 0.5, 0.0], [10, 10, 20, 0]) == 0.0
    # A bin that held everything empties and one that held nothing fills: large, finite.
    moved = psi([1.0, 0.0], [0, 50])
    assert math.isfinite(moved)
    assert moved == pytest.approx(2 * (1 - 1e-4) * math.log(1e4))
    assert psi([0.5, 0.5], [60, 40]) == pytest.approx(0.1 * math.log(1.5), rel=1e-12)
    assert math.isnan(psi([0.5, 0.5], [0, 0]))
    with pytest.raises(ValueError, match="2 reference bins but 3 counts"):
        psi([0.5, 0.5], [1, 2, 3])


def test_bands():
    assert [band(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501, 7.0)] == [
        STABLE,
        STABLE,
        WATCH,
        WATCH,
        ACT,
        ACT,
    ]
    assert band(math.nan) == NO_ROWS


def test_bin_index_puts_unseen_and_missing_values_in_their_bins():
    spec = {"kind": CATEGORY, "values": ["a", "b"]}
    got = bin_index(spec, pd.Series(["b", "a", "zz", None, np.nan], dtype=object))
    assert got.tolist() == [1, 0, 2, 3, 3]
    spec = {"kind": "count", "edges": [0.0, 2.0]}
    assert bin_index(spec, pd.Series([0.0, 1.0, 2.0, 2.5, np.nan])).tolist() == [0, 1, 1, 2, 3]
    assert bin_labels(spec) == ["<= 0", "(0, 2]", "> 2", MISSING]


def test_the_report_writes_json_parquet_and_a_chart(tmp_path, shifted_table):
    directory = tmp_path / "_drift" / f"snapshot_date={SNAPSHOT_DATE.isoformat()}"
    summary = write_drift_report(directory, SNAPSHOT_DATE, shifted_table, limit=0.25, model_version="pd-1")

    assert sorted(p.name for p in directory.iterdir()) == sorted([DRIFT_JSON, DRIFT_PARQUET, TOP_MOVERS_PNG])
    document = json.loads((directory / DRIFT_JSON).read_text())
    assert document["snapshot_date"] == "2026-11-24"
    assert document["limit"] == 0.25
    assert document["model_version"] == "pd-1"
    assert set(document["over_limit"]) == SHIFTED
    assert [c["feature"] for c in document["columns"]] == list(shifted_table["feature"])
    assert document["bands"] == {STABLE: 39, WATCH: 0, ACT: 3}

    table = pd.read_parquet(directory / DRIFT_PARQUET)
    assert list(table["feature"]) == list(shifted_table["feature"])
    np.testing.assert_array_equal(table["psi"], shifted_table["psi"])
    assert set(table["snapshot_date"]) == {SNAPSHOT_DATE}
    assert set(table["model_version"]) == {"pd-1"}
    assert (directory / TOP_MOVERS_PNG).read_bytes()[:8] == PNG_SIGNATURE

    assert summary["max_psi"] == shifted_table["psi"].iloc[0]
    assert summary["max_psi_feature"] in SHIFTED
    assert summary["pd_psi"] > 0.25
    assert set(summary["over_limit"]) == SHIFTED
    assert summary["report"] == str(directory)
    warning = limit_warning(summary, SNAPSHOT_DATE)
    assert warning.startswith("population drift on 2026-11-24: PSI above the limit 0.25 for ")
    assert "the scores are written" in warning


def test_an_empty_snapshot_has_no_rows_not_an_error(tmp_path, reference):
    profile = reference[2]
    counts = {name: [0] * len(spec["shares"]) for name, spec in profile["columns"].items()}
    table = drift_table(profile, counts)
    assert set(table["band"]) == {NO_ROWS}
    summary = write_drift_report(tmp_path, SNAPSHOT_DATE, table, limit=0.25)
    assert summary["max_psi"] is None
    assert summary["over_limit"] == []
    assert json.loads((tmp_path / DRIFT_JSON).read_text())["columns"][0]["psi"] is None


def test_a_profile_of_another_format_is_refused(reference, same_population):
    with pytest.raises(ValueError, match="drift profile format 99"):
        bin_counts(same_population[1], {**reference[2], "format_version": 99})


def test_without_a_limit_nothing_is_over_it(tmp_path, shifted_table):
    summary = write_drift_report(tmp_path, SNAPSHOT_DATE, shifted_table, limit=None)
    assert summary["over_limit"] == [] == over_limit(shifted_table, None)
    assert limit_warning(summary, SNAPSHOT_DATE) is None
    assert json.loads((tmp_path / DRIFT_JSON).read_text())["limit"] is None
    assert over_limit(shifted_table, 100.0) == []
