"""Training on a table too large to collect: non-defaulters thinned in Spark, pd and metrics weighted back."""

import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from defaultrisk.calibration import apply_calibration, check_calibration, logit, prior_correction
from defaultrisk.errors import ConfigError, ModelError
from defaultrisk.features import feature_matrix
from defaultrisk.model import load_model
from defaultrisk.schema import DEFAULT, UUID
from defaultrisk.training.config import ThresholdRule, load_train_config
from defaultrisk.training.metrics import evaluate, probability_metrics, reliability_table
from defaultrisk.training.pipeline import run_train
from defaultrisk.training.resampling import (
    CLASS_WEIGHT,
    NO_RESAMPLING,
    UNDERSAMPLE,
    Strategy,
    applicable_strategies,
)
from defaultrisk.training.selection import stratified_folds
from defaultrisk.training.thinning import rate_for_budget, thin_non_defaulters
from defaultrisk.training.threshold import choose_threshold

from conftest import small_train_config

RATE = 0.2
SPARK_SAMPLED = {"sampling": "spark", "spark_negative_rate": RATE}


def _history_frame(spark, history):
    """The history table as a Spark frame of uuid and label, as training sees its labelled rows."""
    frame = history[1][[UUID, DEFAULT]].astype({DEFAULT: int})
    return spark.createDataFrame(frame)


@pytest.fixture(scope="module")
def history_parquet(history, tmp_path_factory):
    """The history rows as Parquet (quicker to read than the original CSV), in row groups Spark can split."""
    path = tmp_path_factory.mktemp("parquet") / "history.parquet"
    pq.write_table(pa.Table.from_pandas(history[1], preserve_index=False), path, row_group_size=4_000)
    return path


@pytest.fixture(scope="module")
def sampled_runs(spark, history_parquet, tmp_path_factory):
    """The same table and seed trained twice with sampling = "spark"; the second run reads the input
    split into several partitions instead of one, as on another machine or cluster."""
    runs = []
    for name, partition_bytes in (("first", None), ("second", "256k")):
        model_dir = tmp_path_factory.mktemp(name)
        cfg = replace(small_train_config(history_parquet, model_dir), **SPARK_SAMPLED)
        if partition_bytes:
            spark.conf.set("spark.sql.files.maxPartitionBytes", partition_bytes)
        try:
            summary = run_train(spark, cfg)
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
        runs.append((model_dir, summary, json.loads((model_dir / "manifest.json").read_text())))
    return runs


def test_manifest_and_summary_record_the_sampling(sampled_runs, history):
    _, summary, manifest = sampled_runs[0]
    sampling = manifest["sampling"]
    labels = history[1][DEFAULT].astype(int)
    assert sampling["mode"] == "spark"
    assert sampling["negative_rate"] == RATE
    assert sampling["seed"] == manifest["training"]["seed"]
    assert manifest["training"]["sampling"] == "spark"
    assert manifest["training"]["spark_negative_rate"] == RATE
    # Counted in Spark before sampling: the whole table; after: what reached the driver.
    assert sampling["before"] == {"defaults": int(labels.sum()), "non_defaults": int((labels == 0).sum())}
    assert sampling["after"]["defaults"] == sampling["before"]["defaults"]  # every defaulter kept
    kept = sampling["after"]["non_defaults"]
    expected = RATE * sampling["before"]["non_defaults"]
    assert abs(kept - expected) < 4 * np.sqrt(expected * (1 - RATE))
    assert sampling["negative_sampling_rate"] == kept / sampling["before"]["non_defaults"]
    assert sampling["driver_rows"] == sum(sampling["after"].values())
    counts = manifest["row_counts"]
    assert counts["labelled_rows"] == len(labels) == counts["input_rows"]
    assert counts["driver_rows"] == sampling["driver_rows"] == counts["train_rows"] + counts["holdout_rows"]
    assert counts["unlabelled_rows"] == 0
    assert summary["sampling"]["mode"] == "spark"
    assert summary["sampling"]["driver_rows"] == summary["training_rows"] == sampling["driver_rows"]
    assert summary["sampling"]["negative_sampling_rate"] == sampling["negative_sampling_rate"]
    assert manifest["calibration"]["spark_negative_sampling_rate"] == sampling["negative_sampling_rate"]
    check_calibration(manifest["calibration"])


def test_the_pd_is_back_at_the_real_base_rate(sampled_runs, history):
    model_dir, _, manifest = sampled_runs[0]
    holdout = manifest["metrics"]["holdout"]
    sampling = manifest["sampling"]
    assert holdout["non_defaulter_weight"] == pytest.approx(1 / sampling["negative_sampling_rate"])
    # The hold-out holds thinned rows; weighted back, it has the table's default rate, and so does the pd.
    assert holdout["default_rate"] == pytest.approx(sampling["observed_default_rate"], rel=0.2)
    assert holdout["mean_pd"] == pytest.approx(holdout["default_rate"], rel=0.25)
    assert holdout["mean_pd_before_correction"] > 2 * holdout["default_rate"]
    assert holdout["roc_auc"] > 0.8
    # The scoring path (the manifest's calibration, nothing else) on every row of the table.
    _, frame, _ = history
    pds = load_model(model_dir).predict_pd(feature_matrix(frame))
    assert pds.mean() == pytest.approx(sampling["observed_default_rate"], rel=0.15)


def test_same_input_and_seed_give_the_same_model_however_the_input_is_split(sampled_runs):
    (first_dir, first, first_manifest), (second_dir, second, second_manifest) = sampled_runs
    assert first["model_version"] == second["model_version"]
    assert (first_dir / "model.json").read_bytes() == (second_dir / "model.json").read_bytes()
    assert first_manifest["sampling"] == second_manifest["sampling"]


def test_thinning_keeps_the_same_customers_in_any_partitioning_and_every_defaulter(spark, history):
    frame = _history_frame(spark, history)
    one = thin_non_defaulters(frame.coalesce(1), RATE, seed=7)
    many = thin_non_defaulters(frame.repartition(5), RATE, seed=7)
    ids = {r[UUID] for r in one.select(UUID).collect()}
    assert ids == {r[UUID] for r in many.select(UUID).collect()}
    other_seed = {r[UUID] for r in thin_non_defaulters(frame, RATE, seed=8).select(UUID).collect()}
    assert other_seed != ids
    labels = history[1].set_index(UUID)[DEFAULT].astype(int)
    assert labels[labels == 1].index.isin(list(ids)).all()
    # A customer kept at one rate is kept at every higher rate.
    higher = {r[UUID] for r in thin_non_defaulters(frame, 2 * RATE, seed=7).select(UUID).collect()}
    assert ids < higher


def test_a_row_budget_gives_the_rate_that_fills_it(spark, history):
    frame = _history_frame(spark, history)
    labels = history[1][DEFAULT].astype(int)
    counts = {"defaults": int(labels.sum()), "non_defaults": int((labels == 0).sum())}
    budget = 8_000
    rate = rate_for_budget(counts, budget)
    assert rate == pytest.approx((budget - counts["defaults"]) / counts["non_defaults"])
    assert thin_non_defaulters(frame, rate, seed=7).count() == pytest.approx(budget, rel=0.03)
    assert rate_for_budget(counts, 10**9) == 1.0
    with pytest.raises(ConfigError, match="leaves no room for non-defaulters"):
        rate_for_budget(counts, counts["defaults"])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('sampling = "cluster"', 'sampling must be "driver" or "spark"'),
        ("spark_negative_rate = 0.1", 'spark_negative_rate apply only with sampling = "spark"'),
        ('sampling = "spark"', "needs exactly one of spark_negative_rate"),
        (
            'sampling = "spark"\nspark_negative_rate = 0.1\nmax_driver_rows = 100',
            "got spark_negative_rate and",
        ),
        (
            'sampling = "spark"\nspark_negative_rate = 0.0',
            r"spark_negative_rate must be a number in \(0, 1\]",
        ),
        (
            'sampling = "spark"\nspark_negative_rate = 1.5',
            r"spark_negative_rate must be a number in \(0, 1\]",
        ),
        ('sampling = "spark"\nspark_negative_rate = "0.1"', "spark_negative_rate must be a number"),
        ('sampling = "spark"\nmax_driver_rows = 0', "max_driver_rows must be a whole number above 0"),
        ('sampling = "spark"\nmax_driver_rows = 1e6', "max_driver_rows must be a whole number above 0"),
    ],
)
def test_sampling_settings_are_checked_when_the_config_is_read(tmp_path, settings, message):
    path = tmp_path / "train.toml"
    path.write_text(f"[train]\n{settings}\n")
    with pytest.raises(ConfigError, match=message):
        load_train_config(path)


def test_valid_sampling_settings_are_read(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('[train]\nsampling = "spark"\nmax_driver_rows = 400_000\n')
    cfg = load_train_config(path)
    assert (cfg.sampling, cfg.max_driver_rows, cfg.spark_negative_rate) == ("spark", 400_000, None)
    assert load_train_config().sampling == "driver"


def test_spark_sampling_composes_with_prior_correction_as_a_product_of_rates():
    raw = np.linspace(0.0, 1.0, 101)
    composed = {
        "method": "prior_correction",
        "negative_sampling_rate": 0.3,
        "spark_negative_sampling_rate": 0.2,
    }
    check_calibration(composed)
    np.testing.assert_allclose(apply_calibration(raw, composed), prior_correction(raw, 0.3 * 0.2), rtol=1e-12)
    odds = apply_calibration(raw[1:-1], composed) / (1 - apply_calibration(raw[1:-1], composed))
    np.testing.assert_allclose(odds, 0.06 * raw[1:-1] / (1 - raw[1:-1]), rtol=1e-12)


def test_platt_and_isotonic_maps_are_followed_by_the_spark_prior_correction():
    raw = np.linspace(0.001, 0.999, 99)
    platt = {"method": "platt", "a": 0.9, "b": -1.5}
    expected = prior_correction(1 / (1 + np.exp(-(0.9 * logit(raw) - 1.5))), 0.25)
    composed = {**platt, "spark_negative_sampling_rate": 0.25}
    np.testing.assert_allclose(apply_calibration(raw, composed), expected, rtol=1e-12)
    # On the log-odds scale the correction is a shift by log(rate): Platt's intercept moves, nothing else.
    np.testing.assert_allclose(logit(apply_calibration(raw, composed)), 0.9 * logit(raw) - 1.5 + np.log(0.25))
    isotonic = {"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.01, 0.2, 0.6]}
    composed = {**isotonic, "spark_negative_sampling_rate": 0.25}
    np.testing.assert_allclose(
        apply_calibration(raw, composed), prior_correction(apply_calibration(raw, isotonic), 0.25), rtol=1e-12
    )


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        ({"method": "platt", "a": 1.0, "b": 0.0, "spark_negative_sampling_rate": 0.0}, r"in \(0, 1\]"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "spark_negative_sampling_rate": "0.2"}, r"in \(0, 1\]"),
        ({"method": "prior_correction", "negative_sampling_rate": 1.5}, r"in \(0, 1\]"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "temperature": 2.0}, "unknown key"),
    ],
)
def test_a_calibration_map_this_version_cannot_apply_in_full_is_refused(calibration, message):
    with pytest.raises(ModelError, match=message):
        check_calibration(calibration)


@pytest.fixture(scope="module")
def population():
    """Outcomes drawn from known pds, and a sample keeping every default and 20% of the rest."""
    rng = np.random.default_rng(11)
    pds = rng.beta(0.6, 30, 400_000)
    labels = (rng.random(len(pds)) < pds).astype(int)
    kept = (labels == 1) | (rng.random(len(pds)) < RATE)
    return labels, pds, kept, ((labels == 0) & kept).sum() / (labels == 0).sum()


def test_weighted_metrics_of_a_thinned_sample_estimate_the_populations(population):
    labels, pds, kept, rate = population
    whole = probability_metrics(labels, pds)
    thinned = probability_metrics(labels[kept], pds[kept], rate)
    unweighted = probability_metrics(labels[kept], pds[kept])
    assert thinned["rows"] == kept.sum()
    for name, tolerance in (("default_rate", 0.01), ("mean_pd", 0.01), ("log_loss", 0.02), ("brier", 0.02)):
        assert thinned[name] == pytest.approx(whole[name], rel=tolerance)
    # Unweighted, the sample is a different population: about four times the default rate.
    assert unweighted["default_rate"] > 3 * whole["default_rate"]
    assert unweighted["log_loss"] > 2 * whole["log_loss"]
    assert thinned["roc_auc"] == pytest.approx(unweighted["roc_auc"], rel=1e-12)  # a constant weight
    assert thinned["pr_auc"] == pytest.approx(whole["pr_auc"], rel=0.03)
    table, thinned_table = (
        reliability_table(labels, pds),
        reliability_table(labels[kept], pds[kept], None, 10, rate),
    )
    for bin_whole, bin_thinned in zip(table, thinned_table, strict=True):
        assert bin_thinned["mean_pd"] == pytest.approx(bin_whole["mean_pd"], rel=0.03)
        assert bin_thinned["observed_rate"] == pytest.approx(bin_whole["observed_rate"], rel=0.15, abs=1e-3)


def test_threshold_and_precision_are_the_populations(population):
    labels, pds, kept, rate = population
    rule = ThresholdRule(rule="target_precision", target=0.2)
    thinned = choose_threshold(labels[kept], pds[kept], rule, rate)
    on_whole = evaluate(labels, pds, thinned["value"])  # what the threshold does to the real population
    assert on_whole["precision_at_threshold"] == pytest.approx(0.2, abs=0.02)
    assert thinned["precision"] == pytest.approx(on_whole["precision_at_threshold"], abs=0.02)
    assert thinned["alert_rate"] == pytest.approx(on_whole["alert_rate"], rel=0.1)
    metrics = evaluate(labels[kept], pds[kept], thinned["value"], rate)
    assert metrics["precision_at_threshold"] == pytest.approx(thinned["precision"])
    assert metrics["alert_rate"] == pytest.approx(thinned["alert_rate"])
    assert metrics["false_positives"] == int(((pds[kept] >= thinned["value"]) & (labels[kept] == 0)).sum())
    # Precision read at the sample's own base rate flags far more customers than the target allows.
    naive = choose_threshold(labels[kept], pds[kept], rule)
    assert evaluate(labels, pds, naive["value"])["precision_at_threshold"] < 0.1


def test_strategies_the_rows_already_reach_are_skipped_and_said_so():
    labels = np.array([1] * 100 + [0] * 1000)  # a default ratio of 0.1
    folds = stratified_folds(labels, 3, seed=1)
    candidates = [
        Strategy(NO_RESAMPLING),
        Strategy(UNDERSAMPLE, 0.05),
        Strategy(UNDERSAMPLE, 0.3),
        Strategy(CLASS_WEIGHT, 0.05),
    ]
    kept, skipped = applicable_strategies(candidates, labels, folds)
    assert kept == [Strategy(NO_RESAMPLING), Strategy(UNDERSAMPLE, 0.3)]
    assert [s["strategy"] for s in skipped] == ["undersample_0.05", "class_weight_0.05"]
    with pytest.raises(ConfigError, match="no imbalance strategy applies"):
        applicable_strategies([Strategy(UNDERSAMPLE, 0.05)], labels, folds)
