"""The baseline challenger, monotone constraints, and the figures analysts read first, without Spark."""

from dataclasses import replace

import numpy as np
import pytest
from sampledata import make_history
from scipy.stats import beta, ks_2samp
from sklearn.metrics import roc_auc_score

from defaultrisk.errors import ConfigError
from defaultrisk.features import feature_matrix
from defaultrisk.schema import DEFAULT, FEATURE_NAMES
from defaultrisk.training.choice import best_result, clearly_better
from defaultrisk.training.config import (
    BaselineConfig,
    SearchConfig,
    SelectionConfig,
    TrainConfig,
    XGBoostParams,
    load_train_config,
)
from defaultrisk.training.fit import fit
from defaultrisk.training.metrics import jeffreys_interval, probability_metrics, reliability_table
from defaultrisk.training.monotone import count_violations, sweep_grid
from defaultrisk.training.resampling import Strategy
from defaultrisk.training.selection import CVResult, train_booster

SEED = 11
QUICK = XGBoostParams(n_estimators=60, max_depth=3, learning_rate=0.2, nthread=1)
SELECTION = SelectionConfig(undersampling_ratios=(0.1,), class_weight_ratios=(), round_step=10, patience=2)
NO_SEARCH = SearchConfig(enabled=False)
BASELINE = BaselineConfig(n_estimators=60, learning_rate=0.2)
CONSTRAINED = (("num_unpaid_bills", 1), ("avg_payment_span_0_12m", 1), ("num_arch_ok_0_12m", -1))


@pytest.fixture(scope="module")
def frame():
    frame, _ = make_history(8_000, seed=SEED)
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    return frame


def test_gini_and_ks_are_the_textbook_statistics():
    rng = np.random.default_rng(1)
    pds = rng.beta(0.5, 20, 4_000)
    labels = (rng.random(len(pds)) < pds).astype(int)
    metrics = probability_metrics(labels, pds)
    assert metrics["gini"] == pytest.approx(2 * roc_auc_score(labels, pds) - 1)
    assert metrics["ks"] == pytest.approx(ks_2samp(pds[labels == 1], pds[labels == 0]).statistic)


def test_each_pd_decile_has_expected_defaults_and_a_jeffreys_interval_flagged_when_missed():
    rng = np.random.default_rng(2)
    pds = rng.beta(0.5, 20, 5_000)
    labels = (rng.random(len(pds)) < pds).astype(int)
    table = reliability_table(labels, pds)
    for entry in table:
        d, n = entry["defaults"], entry["rows"]
        assert entry["expected_defaults"] == pytest.approx(entry["mean_pd"] * n)
        low = beta.ppf(0.025, d + 0.5, n - d + 0.5) if d else 0.0
        assert entry["jeffreys_low"] == pytest.approx(low)
        assert entry["jeffreys_high"] == pytest.approx(beta.ppf(0.975, d + 0.5, n - d + 0.5))
    assert sum(e["outside_interval"] for e in table) <= 2  # honest pds: ~5% of bins by chance
    # The same outcomes against pds three times too high: the top deciles are flagged.
    wrong = reliability_table(labels, np.minimum(3 * pds, 1.0))
    assert all(e["outside_interval"] for e in wrong[-3:])
    assert jeffreys_interval(0, 100)[0] == 0.0
    assert jeffreys_interval(100, 100)[1] == 1.0


def test_the_baseline_is_fitted_on_the_same_rows_and_shown_beside_the_chosen_model(frame):
    cfg = TrainConfig(xgboost=QUICK, selection=SELECTION, search=NO_SEARCH, baseline=BASELINE)
    result = fit(frame, cfg)
    baseline = result.baseline
    assert result.selection["baseline"]["params"]["max_depth"] == BASELINE.max_depth
    assert baseline["holdout"]["rows"] == result.metrics["rows"]
    assert baseline["holdout"]["defaults"] == result.metrics["defaults"]
    assert len(result.holdout_baseline_pd) == len(result.holdout_labels)
    assert baseline["holdout"]["roc_auc"] == pytest.approx(
        roc_auc_score(result.holdout_labels, result.holdout_baseline_pd)
    )
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "gini", "ks"):
        assert baseline["vs_model"][name] == {
            "model": result.metrics[name],
            "baseline": baseline["holdout"][name],
        }
    selection = result.selection
    # The baseline is the simpler model: the chosen one is kept only when it wins by more than one
    # standard error of the paired fold differences (lower log loss is better).
    chosen = selection.get("chosen_before_baseline", selection)
    gains = np.subtract(baseline_fold_scores(selection), chosen["fold_scores"])
    clearly = gains.mean() > gains.std(ddof=1) / np.sqrt(len(gains))
    assert selection["kept"] == ("chosen" if clearly else "baseline")
    if selection["kept"] == "baseline":
        assert selection["cv_score"] == selection["baseline"]["score"]


def baseline_fold_scores(selection: dict) -> list[float]:
    return selection["baseline"]["fold_scores"]


def _result(fold_scores) -> CVResult:
    return CVResult(
        Strategy("none"),
        QUICK,
        "log_loss",
        10,
        float(np.mean(fold_scores)),
        0.0,
        {},
        np.empty(0),
        np.empty(0),
        0.0,
        fold_scores=tuple(fold_scores),
    )


def test_a_less_simple_model_is_kept_only_when_it_wins_by_more_than_the_folds_noise():
    simple = _result([0.050, 0.060, 0.055])
    steady = _result([0.049, 0.059, 0.054])  # better on every fold by 0.001: clearly better
    noisy = _result([0.045, 0.064, 0.054])  # better on average, worse on one fold: within the noise
    assert clearly_better(steady, simple, "log_loss") and not clearly_better(noisy, simple, "log_loss")
    assert best_result([simple, noisy, steady], "log_loss") is steady
    assert best_result([simple, noisy], "log_loss") is simple
    assert best_result([simple, steady], "pr_auc") is simple  # higher is better there: steady is worse


def test_a_chosen_model_worse_than_the_baseline_gives_way_to_it(frame):
    # A starting point that cannot learn in its trees: cross-validation must prefer the baseline.
    weak = replace(QUICK, learning_rate=0.005, n_estimators=20)
    cfg = TrainConfig(xgboost=weak, selection=SELECTION, search=NO_SEARCH, baseline=BASELINE)
    result = fit(frame, cfg)
    selection = result.selection
    assert selection["kept"] == "baseline"
    assert selection["strategy"] == "none"
    assert selection["params"]["learning_rate"] == BASELINE.learning_rate
    assert selection["cv_score"] == selection["baseline"]["score"]
    assert selection["chosen_before_baseline"]["score"] > selection["baseline"]["score"]
    assert (
        result.booster.num_boosted_rounds()
        == selection["final_fit"]["trees"]
        > selection["baseline"]["rounds"]
    )
    # The kept model is the baseline itself: the challenger's pd is the model's raw probability.
    raw = result.booster.inplace_predict(feature_matrix(frame)[:5])
    assert raw.shape == (5,)
    assert result.baseline["holdout"]["roc_auc"] == pytest.approx(result.metrics["roc_auc"], abs=0.02)


def test_monotone_constraints_hold_on_the_sweep_and_their_cost_is_shown(frame):
    params = replace(QUICK, monotone_constraints=CONSTRAINED)
    cfg = TrainConfig(xgboost=params, selection=SELECTION, search=NO_SEARCH, baseline=BASELINE)
    result = fit(frame, cfg)
    monotone = result.monotone
    assert monotone["constraints"] == dict(CONSTRAINED)
    assert [c["feature"] for c in monotone["check"]] == [name for name, _ in CONSTRAINED]
    assert all(c["violations"] == 0 and c["grid_points"] >= 5 and c["rows"] == 200 for c in monotone["check"])
    cost = monotone["cost"]
    assert cost["roc_auc_cost"] == pytest.approx(cost["roc_auc_unconstrained"] - cost["roc_auc_constrained"])
    assert abs(cost["roc_auc_cost"]) < 0.05
    # The baseline obeys the same constraints: a kept baseline must not break them either.
    assert result.selection["baseline"]["params"]["monotone_constraints"] == CONSTRAINED


def test_the_sweep_finds_the_violations_of_an_unconstrained_model(frame):
    matrix, labels = feature_matrix(frame), frame[DEFAULT].to_numpy()
    deep = replace(QUICK, max_depth=6, learning_rate=0.3)
    free = train_booster(matrix, labels, deep, SEED, 60)
    bound = train_booster(
        matrix, labels, replace(deep, monotone_constraints=(("num_arch_ok_0_12m", -1),)), SEED, 60
    )
    column = FEATURE_NAMES.index("num_arch_ok_0_12m")
    grid = sweep_grid(matrix[:, column])
    assert count_violations(free, matrix[:300], column, grid, -1) > 0
    assert count_violations(bound, matrix[:300], column, grid, -1) == 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("num_unpaid_bills = 2", "must be -1, 0 or 1"),
        ("num_unpaid_bills = true", "must be -1, 0 or 1"),
        ("no_such_feature = 1", "unknown feature"),
        ("merchant_group = 1", "categorical"),
    ],
)
def test_monotone_settings_are_checked_when_the_config_is_read(tmp_path, section, message):
    path = tmp_path / "train.toml"
    path.write_text(f"[monotone]\n{section}\n")
    with pytest.raises(ConfigError, match=message):
        load_train_config(path)


def test_monotone_settings_are_read_in_schema_order_and_zero_means_none(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(
        "[monotone]\nnum_unpaid_bills = 1\naccount_days_in_dc_12_24m = 1\nage = 0\nnum_arch_ok_0_12m = -1\n"
    )
    cfg = load_train_config(path)
    assert cfg.xgboost.monotone_constraints == (
        ("account_days_in_dc_12_24m", 1),
        ("num_arch_ok_0_12m", -1),
        ("num_unpaid_bills", 1),
    )
    assert cfg.xgboost.booster_params(1)["monotone_constraints"] == dict(cfg.xgboost.monotone_constraints)
    assert "monotone_constraints" not in load_train_config().xgboost.booster_params(1)


def test_the_shipped_model_is_the_kept_recipe_fitted_again_on_every_labelled_row(frame):
    as_they_are = SelectionConfig(undersampling_ratios=(), class_weight_ratios=(), round_step=10, patience=2)
    cfg = TrainConfig(xgboost=QUICK, selection=as_they_are, search=NO_SEARCH, baseline=BASELINE)
    everything = fit(frame, cfg)
    measured = fit(frame, replace(cfg, final_fit="training_rows"))
    # The same choice, threshold and hold-out figures: the hold-out measured the recipe, before the refit.
    for key in ("strategy", "params", "rounds", "kept", "calibration_method"):
        assert everything.selection[key] == measured.selection[key]
    assert everything.threshold == measured.threshold and everything.metrics == measured.metrics
    labels = frame[DEFAULT].to_numpy()
    assert everything.selection["final_fit"] == {
        "rows": "all_rows",
        "labelled_rows": len(frame),
        "defaults": int(labels.sum()),
        "rows_after_resampling": len(frame),
        "trees": everything.booster.num_boosted_rounds(),
    }
    assert everything.booster.num_boosted_rounds() > measured.booster.num_boosted_rounds()  # more rows
    assert measured.selection["final_fit"]["labelled_rows"] == measured.row_counts["train_rows"] < len(frame)
    # The shipped booster is the recipe on every row, tree for tree.
    params = replace(QUICK, **everything.selection["params"])
    trees = everything.selection["final_fit"]["trees"]
    by_hand = train_booster(feature_matrix(frame), labels, params, cfg.seed, trees)
    assert everything.booster.save_raw("json") == by_hand.save_raw("json")
    assert measured.booster.save_raw("json") != by_hand.save_raw("json")
