"""The backtest's Spark parts on small real tables: grades, outcomes validation, labelling, AUC sums."""

from __future__ import annotations

from collections import Counter
from datetime import date

import numpy as np
import pytest
from pyspark.sql import functions as F

from defaultrisk.backtest import measures, stats
from defaultrisk.backtest.outcomes import (
    outcome_keys,
    read_outcomes,
    rejected_outcomes,
    summarise,
    validate_outcomes,
)
from defaultrisk.errors import ConfigError, InputError
from defaultrisk.grades import DEFAULT_SCALE, MasterScale, geometric_scale, grade_column, grade_of

from rows import uuid_for


def test_numpy_and_spark_grades_agree_exactly_at_and_around_every_boundary(spark):
    scale = geometric_scale(0.002, 0.3, grades=8, digits=3)
    inner = np.array(scale.boundaries[1:-1])
    values = np.concatenate(
        [inner, np.nextafter(inner, 0), np.nextafter(inner, 1), [0.0, 1.0, 0.5, -0.01, 1.01, np.nan]]
    )
    frame = spark.createDataFrame([(i, float(v)) for i, v in enumerate(values)], "i int, pd double")
    frame = frame.union(spark.createDataFrame([(len(values), None)], "i int, pd double"))
    in_spark = [
        r.grade for r in frame.select("i", grade_column("pd", scale).alias("grade")).orderBy("i").collect()
    ]
    expected = grade_of(values, scale)
    assert [g or 0 for g in in_spark] == [*expected.tolist(), 0]
    # lower <= pd < upper: a boundary starts the next grade; just below it is still the grade before.
    assert expected[: len(inner)].tolist() == list(range(2, scale.grades + 1))
    assert expected[len(inner) : 2 * len(inner)].tolist() == list(range(1, scale.grades))
    assert expected[-6:].tolist() == [1, scale.grades, grade_of([0.5], scale)[0], 0, 0, 0]
    assert in_spark[-3:] == [None, None, None]


def test_master_scale_round_trips_through_its_manifest_form_and_is_validated():
    data = DEFAULT_SCALE.to_manifest()
    assert data["boundaries"][0] == 0.0 and data["boundaries"][-1] == 1.0
    assert len(data["labels"]) == len(data["central_pd"]) == len(data["boundaries"]) - 1 == 9
    assert MasterScale.from_manifest(data) == DEFAULT_SCALE
    for g in range(1, 10):
        lower, upper = DEFAULT_SCALE.bounds(g)
        assert lower <= DEFAULT_SCALE.central_pd[g - 1] <= upper
    with pytest.raises(ConfigError, match="increase strictly"):
        MasterScale.from_manifest({"boundaries": [0.0, 0.2, 0.1, 1.0]})
    with pytest.raises(ConfigError, match="start at 0 and end at 1"):
        MasterScale.from_manifest({"boundaries": [0.0, 0.1, 0.9]})
    with pytest.raises(ConfigError, match="central pd"):
        MasterScale.from_manifest({**data, "central_pd": [0.5] * 9})


OUTCOMES_CSV = """uuid;default_date;observed_until
{a};2025-03-04;2025-12-31
{b};NA;2025-12-31
{c};2025-13-01;2025-12-31
not-a-uuid;2025-01-01;2025-12-31
{d};2025-02-02;2025-12-31
{d};NA;2025-12-31
;2025-01-01;2025-12-31
{e};2025-5-1;2025-12-31
{f};2026-02-01;2025-12-31
{g};2025-01-01
"""


def test_outcome_rows_are_rejected_with_reasons_and_nothing_is_lost(spark, tmp_path):
    ids = {k: uuid_for(i) for i, k in enumerate("abcdefg", start=1)}
    path = tmp_path / "outcomes.csv"
    path.write_text(OUTCOMES_CSV.format(**ids))
    validated = validate_outcomes(read_outcomes(spark, str(path)))
    reasons = Counter((r.uuid, r.reason) for r in rejected_outcomes(validated).collect())
    assert reasons == Counter(
        [
            (ids["c"], "default_date: not a date (YYYY-MM-DD)"),
            ("not-a-uuid", "uuid: malformed"),
            (ids["d"], "uuid: duplicate (2 rows)"),
            (ids["d"], "uuid: duplicate (2 rows)"),  # both copies: neither is known to be right
            (None, "uuid: missing"),  # an empty field reads as null
            (ids["e"], "default_date: not a date (YYYY-MM-DD)"),
            (ids["f"], "default_date: after observed_until 2025-12-31"),
            (ids["g"], "line: wrong number of fields"),
        ]
    )
    info = summarise(validated, observed_until=None)
    assert info == {
        "input_rows": 10,
        "valid_rows": 2,
        "rejected_rows": 8,
        "defaults": 1,
        "observed_until": date(2025, 12, 31),
    }
    keys = {r.outcome_key: (r.default_date, r.outcome_known) for r in outcome_keys(validated).collect()}
    # A customer whose rows were rejected has an unknown outcome, never a silent non-default.
    assert keys == {
        ids["a"]: (date(2025, 3, 4), True),
        ids["b"]: (None, True),
        **{ids[k]: (None, False) for k in "cdefg"},
    }


def test_coverage_must_be_declared_once(spark, tmp_path):
    path = tmp_path / "outcomes.csv"
    path.write_text(f"uuid;default_date\n{uuid_for(1)};2025-01-02\n")
    validated = validate_outcomes(read_outcomes(spark, str(path)))
    with pytest.raises(ConfigError, match="declare no coverage"):
        summarise(validated, observed_until=None)
    assert summarise(validated, date(2025, 6, 30))["observed_until"] == date(2025, 6, 30)
    two = tmp_path / "two.csv"
    two.write_text(
        f"uuid;default_date;observed_until\n{uuid_for(1)};NA;2025-01-02\n{uuid_for(2)};NA;2025-02-02\n"
    )
    with pytest.raises(InputError, match="2 dates"):
        summarise(validate_outcomes(read_outcomes(spark, str(two))), observed_until=None)
    bad = tmp_path / "bad.csv"
    bad.write_text("id;default_date\n1;NA\n")
    with pytest.raises(InputError, match="missing required column"):
        read_outcomes(spark, str(bad))


def test_labelling_counts_defaults_inside_the_window_only(spark):
    snap, end = date(2024, 1, 31), date(2025, 1, 31)
    scored = spark.createDataFrame(
        [(snap, uuid_for(i), 0.01 * i, 1) for i in range(1, 7)],
        "snapshot_date date, uuid string, pd double, grade int",
    )
    outcomes = spark.createDataFrame(
        [
            (uuid_for(1), date(2024, 2, 1), True),  # first day of the window: a default
            (uuid_for(2), end, True),  # last day: a default
            (uuid_for(3), date(2025, 2, 1), True),  # after the window: not a default
            (uuid_for(4), snap, True),  # in default on the snapshot date: left out
            (uuid_for(5), None, False),  # outcome rows rejected: left out
        ],
        "outcome_key string, default_date date, outcome_known boolean",
    )
    windows = spark.createDataFrame([(snap, end)], "snapshot_date date, window_end date")
    got = measures.labelled_rows(scored, outcomes, windows).orderBy("pd").collect()
    assert [(r.defaulted, r.outcome_status) for r in got] == [
        (1, measures.IN_BACKTEST),
        (1, measures.IN_BACKTEST),
        (0, measures.IN_BACKTEST),
        (0, measures.DEFAULTED_BEFORE),
        (0, measures.OUTCOME_REJECTED),
        (0, measures.IN_BACKTEST),  # no record, and the outcomes cover the window
    ]


def test_spark_auc_sums_equal_the_numpy_delong_reference(spark):
    rng = np.random.default_rng(4)
    n = 4000
    pd_values = np.round(rng.beta(0.5, 30, size=n), 4)  # ties, as rounded pd have
    outcome = (rng.random(n) < pd_values).astype(int)
    days = [date(2024, 1, 1), date(2024, 2, 1)]
    rows = [
        (days[i % 2], float(p), int(y), measures.IN_BACKTEST)
        for i, (p, y) in enumerate(zip(pd_values, outcome, strict=True))
    ]
    labelled = spark.createDataFrame(
        rows, "snapshot_date date, pd double, defaulted int, outcome_status string"
    )
    sums = measures.discrimination(labelled.withColumn("grade", F.lit(1)))
    for k, day in enumerate(days):
        auc, variance = stats.auc_from_sums(*sums[day])
        ref_auc, ref_variance = stats.auc_delong(outcome[k::2], pd_values[k::2])
        assert auc == pytest.approx(ref_auc, abs=1e-12)
        assert variance == pytest.approx(ref_variance, rel=1e-9)
