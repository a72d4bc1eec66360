"""Oracle metrics, cross-validated model choice, calibration and threshold rules, without Spark."""

import itertools
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sampledata import make_history, write_truth
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from defaultrisk.calibration import (
    apply_calibration,
    check_calibration,
    fit_isotonic,
    fit_platt,
    prior_correction,
)
from defaultrisk.errors import ConfigError, InputError, ModelError
from defaultrisk.features import feature_matrix
from defaultrisk.schema import DEFAULT, UUID
from defaultrisk.training.calibration import compare_calibrations
from defaultrisk.training.choice import best_result
from defaultrisk.training.config import (
    BaselineConfig,
    SearchConfig,
    SelectionConfig,
    ThresholdRule,
    TrainConfig,
    XGBoostParams,
    load_train_config,
)
from defaultrisk.training.fit import fit
from defaultrisk.training.metrics import oracle_comparison, probability_metrics, reliability_table
from defaultrisk.training.resampling import (
    CLASS_WEIGHT,
    NO_RESAMPLING,
    UNDERSAMPLE,
    Strategy,
    resample,
    strategies,
)
from defaultrisk.training.search import LIBRARY_DEFAULTS, candidate_list, halving_search, rung_trees
from defaultrisk.training.selection import (
    CVRows,
    CVRun,
    _FoldRun,
    compare_strategies,
    cross_validate,
    stratified_folds,
    train_booster,
)
from defaultrisk.training.threshold import choose_threshold, decision_curve
from defaultrisk.training.truth import read_truth

SEED = 5
QUICK = XGBoostParams(n_estimators=60, max_depth=2, learning_rate=0.2, nthread=1)
# Cross-validation read every 20 trees, stopping after 2 readings without improvement.
CV_SETTINGS = SelectionConfig(metric="log_loss", round_step=20, patience=2)
# The strategy comparison alone: no search, no baseline challenger.
COMPARISON_ONLY = {"search": SearchConfig(enabled=False), "baseline": BaselineConfig(enabled=False)}


@pytest.fixture(scope="module")
def generated():
    """A small generated history as the model sees it: feature matrix, labels, true pd."""
    frame, true_pd = make_history(8_000, seed=SEED)
    return feature_matrix(frame), frame[DEFAULT].to_numpy(dtype=np.int64), true_pd, frame


@pytest.fixture(scope="module")
def folds(generated):
    return stratified_folds(generated[1], 3, SEED)


def test_oracle_metrics_are_the_true_pd_scored_like_any_model(generated):
    _, labels, true_pd, _ = generated
    oracle = probability_metrics(labels, true_pd)
    assert oracle["roc_auc"] == pytest.approx(roc_auc_score(labels, true_pd))
    assert oracle["pr_auc"] == pytest.approx(average_precision_score(labels, true_pd))
    assert oracle["brier"] == pytest.approx(brier_score_loss(labels, true_pd))
    assert oracle["log_loss"] == pytest.approx(log_loss(labels, true_pd))
    assert oracle["defaults"] == labels.sum()
    # The generator's truth has real signal: far better than a constant pd at the base rate.
    constant = probability_metrics(labels, np.full(len(labels), labels.mean()))
    assert oracle["log_loss"] < 0.9 * constant["log_loss"]
    gap = oracle_comparison(constant, oracle)
    assert gap["log_loss"]["difference"] == pytest.approx(constant["log_loss"] - oracle["log_loss"])
    assert gap["roc_auc"]["relative"] == pytest.approx((0.5 - oracle["roc_auc"]) / oracle["roc_auc"])


def test_truth_file_round_trips_exactly_and_bad_files_are_refused(generated, tmp_path):
    frame, true_pd = generated[3], generated[2]
    path = tmp_path / "truth.csv"
    write_truth(frame[UUID], true_pd, path)
    truth = read_truth(path)
    np.testing.assert_array_equal(truth.reindex(frame[UUID]).to_numpy(), true_pd)
    (tmp_path / "bad.csv").write_text("uuid;pd\nabc;0.1\n")
    with pytest.raises(InputError, match="header"):
        read_truth(tmp_path / "bad.csv")
    (tmp_path / "range.csv").write_text("uuid;true_pd\nabc;1.5\n")
    with pytest.raises(InputError, match="probability"):
        read_truth(tmp_path / "range.csv")
    with pytest.raises(InputError, match="cannot read"):
        read_truth(tmp_path / "missing.csv")


def test_reliability_table_bins_by_pd_decile_and_counts_every_row():
    rng = np.random.default_rng(0)
    pds = rng.beta(0.5, 20, 5_003)
    labels = (rng.random(len(pds)) < pds).astype(int)
    table = reliability_table(labels, pds, true_pd=pds)
    assert len(table) == 10
    assert sum(b["rows"] for b in table) == len(pds)
    assert sum(b["defaults"] for b in table) == labels.sum()
    assert max(b["rows"] for b in table) - min(b["rows"] for b in table) <= 1
    means = [b["mean_pd"] for b in table]
    assert means == sorted(means)
    for low, high in itertools.pairwise(table):
        assert low["pd_max"] <= high["pd_min"]
    top = np.sort(pds)[-(len(pds) // 10) :]  # the last of ten near-equal bins holds the 500 highest
    assert table[-1]["mean_pd"] == pytest.approx(top.mean(), rel=1e-12)
    assert table[-1]["mean_true_pd"] == pytest.approx(table[-1]["mean_pd"])


def test_resampling_strategies_keep_every_defaulter_and_report_the_odds_factor(generated):
    labels = generated[1]
    negatives, positives = int((labels == 0).sum()), int(labels.sum())
    plain = resample(labels, Strategy(NO_RESAMPLING), SEED)
    assert len(plain.rows) == len(labels)
    assert plain.negative_sampling_rate == 1.0
    under = resample(labels, Strategy(UNDERSAMPLE, 0.1), SEED)
    assert labels[under.rows].sum() == positives
    assert (labels[under.rows] == 0).sum() == round(positives / 0.1)
    assert under.negative_sampling_rate == pytest.approx((labels[under.rows] == 0).sum() / negatives)
    weighted = resample(labels, Strategy(CLASS_WEIGHT, 0.1), SEED)
    assert len(weighted.rows) == len(labels)
    assert weighted.scale_pos_weight == pytest.approx(0.1 * negatives / positives)
    assert weighted.negative_sampling_rate == pytest.approx(1 / weighted.scale_pos_weight)
    with pytest.raises(ConfigError):
        resample(labels, Strategy(CLASS_WEIGHT, 0.001), SEED)


def test_prior_correction_moves_an_undersampled_models_mean_pd_to_the_base_rate(generated, folds):
    matrix, labels, _, _ = generated
    fit_rows, valid_rows = folds[0]
    sample = resample(labels[fit_rows], Strategy(UNDERSAMPLE, 0.1), SEED)
    rows = fit_rows[sample.rows]
    booster = train_booster(matrix[rows], labels[rows], QUICK, SEED, 40)
    raw = booster.inplace_predict(matrix[valid_rows], validate_features=False)
    rate = labels[valid_rows].mean()
    assert raw.mean() > 3 * rate  # undersampling to 1:10 inflates the odds about sevenfold
    corrected = prior_correction(raw, sample.negative_sampling_rate)
    assert corrected.mean() == pytest.approx(rate, rel=0.3)
    assert log_loss(labels[valid_rows], corrected) < log_loss(labels[valid_rows], raw)


@pytest.mark.parametrize("fitter", [fit_platt, fit_isotonic])
def test_platt_and_isotonic_maps_give_the_base_rate_and_are_applied_from_plain_numbers(fitter):
    rng = np.random.default_rng(3)
    raw = rng.beta(1, 8, 20_000).astype(np.float32)  # an undersampled model's inflated scores
    labels = (rng.random(len(raw)) < prior_correction(raw, 0.15)).astype(int)
    calibration = fitter(raw, labels)
    check_calibration(calibration)
    assert all(isinstance(v, str | float | list) for v in calibration.values())
    pds = apply_calibration(raw, calibration)
    # Both fits are maximum likelihood with a free level: their mean equals the observed rate.
    assert pds.mean() == pytest.approx(labels.mean(), rel=1e-6)
    assert raw.mean() > 3 * labels.mean()
    assert np.all(np.diff(pds[np.argsort(raw)]) >= 0)  # a calibration never reorders customers
    assert np.array_equal(apply_calibration(raw, calibration), pds)


def test_a_calibration_that_cannot_be_applied_is_refused():
    with pytest.raises(ModelError, match="unknown calibration"):
        check_calibration({"method": "magic"})
    with pytest.raises(ModelError, match="lacks b"):
        check_calibration({"method": "platt", "a": 1.0})
    with pytest.raises(ModelError, match="increasing"):
        check_calibration({"method": "isotonic", "x": [0.2, 0.1], "y": [0.0, 0.1]})


def test_cross_validated_scores_are_measured_at_the_base_rate_on_unseen_rows(generated, folds):
    matrix, labels, _, _ = generated
    result = cross_validate(
        CVRows(matrix, labels, folds, SEED), Strategy(UNDERSAMPLE, 0.1), QUICK, CV_SETTINGS
    )
    per_fold = [
        log_loss(labels[valid], prior_correction(result.oof_raw[valid], result.oof_sampling_rate[valid]))
        for _, valid in folds
    ]
    assert result.score == pytest.approx(np.mean(per_fold), rel=1e-6)
    assert result.rounds in (20, 40, 60)
    assert result.fold_metrics["mean_pd"] == pytest.approx(labels.mean(), rel=0.3)
    assert np.all(result.oof_sampling_rate < 0.5)


def test_checkpoint_scores_come_from_the_same_pd_as_a_direct_prediction(generated, folds):
    matrix, labels, _, _ = generated
    fit_rows, valid_rows = folds[1]
    run = _FoldRun(
        CVRows(matrix, labels, folds, SEED), (fit_rows, valid_rows), Strategy(CLASS_WEIGHT, 0.2), QUICK
    )
    for trees in (1, 20, 45):
        incremental = run.grow_to(trees)
        direct = run.booster.inplace_predict(matrix[valid_rows], iteration_range=(0, trees))
        np.testing.assert_allclose(incremental, direct, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("metric", ["log_loss", "pr_auc"])
def test_strategy_comparison_picks_the_best_configured_metric(generated, folds, metric):
    matrix, labels, _, _ = generated
    candidates = [Strategy(NO_RESAMPLING), Strategy(UNDERSAMPLE, 0.05), Strategy(UNDERSAMPLE, 0.3)]
    results = compare_strategies(
        CVRows(matrix, labels, folds, SEED), candidates, QUICK, replace(CV_SETTINGS, metric=metric)
    )
    assert [r.strategy for r in results] == candidates
    scores = [r.score for r in results]
    assert len(set(scores)) == len(scores)
    chosen = best_result(results, metric)
    assert chosen.score == (min(scores) if metric == "log_loss" else max(scores))
    for r in results:  # each score is the metric it claims to be
        assert r.score == pytest.approx(r.fold_metrics[metric], rel=1e-6)


def test_training_chooses_by_cross_validation_and_records_the_comparison(generated):
    frame = generated[3].copy()
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    selection = SelectionConfig(undersampling_ratios=(0.05, 0.2), class_weight_ratios=(0.1,))
    cfg = TrainConfig(xgboost=QUICK, selection=selection, **COMPARISON_ONLY)
    result = fit(frame, cfg)
    table = result.selection["comparison"]
    assert [r["strategy"] for r in table] == [
        "none",
        "undersample_0.05",
        "undersample_0.2",
        "class_weight_0.1",
    ]
    best = min(table, key=lambda r: r["score"])
    # No resampling stays unless the best beats it by more than one standard error of the paired folds.
    gains = np.subtract(table[0]["fold_scores"], best["fold_scores"])
    kept = best if gains.mean() > gains.std(ddof=1) / np.sqrt(len(gains)) else table[0]
    assert result.selection["strategy"] == kept["strategy"]
    assert result.selection["rounds"] == kept["rounds"]
    # The shipped booster (every labelled row) grows the trees with its rows: the folds fitted on
    # (k-1)/k of the training rows.
    counts = result.row_counts
    fold_rows = counts["train_rows"] * (selection.cv_folds - 1) / selection.cv_folds
    trees = min(QUICK.n_estimators, round(kept["rounds"] * counts["labelled_rows"] / fold_rows))
    assert result.booster.num_boosted_rounds() == result.selection["final_fit"]["trees"] == trees
    methods = [c["method"] for c in result.selection["calibration_comparison"]]
    assert methods == ["prior_correction", "platt", "isotonic"]
    chosen = min(result.selection["calibration_comparison"], key=lambda c: c["log_loss"])
    assert result.calibration["method"] == chosen["method"]
    assert result.metrics["mean_pd"] == pytest.approx(result.metrics["default_rate"], rel=0.35)


def test_calibration_comparison_scores_each_map_on_rows_it_was_not_fitted_to(generated, folds):
    matrix, labels, _, _ = generated
    result = cross_validate(
        CVRows(matrix, labels, folds, SEED), Strategy(UNDERSAMPLE, 0.1), QUICK, CV_SETTINGS
    )
    table = compare_calibrations(
        result, CVRows(matrix, labels, folds, SEED), ["prior_correction", "platt", "isotonic"]
    )
    by_method = {row["method"]: row for row in table}
    assert by_method["prior_correction"]["log_loss"] == pytest.approx(result.score, rel=1e-6)
    # Fitted on all rows and scored on the same rows, isotonic would look better than it is.
    in_sample = apply_calibration(result.oof_raw, fit_isotonic(result.oof_raw, labels))
    assert log_loss(labels, in_sample) < by_method["isotonic"]["log_loss"]


def test_search_lists_the_untuned_settings_first_then_seeded_draws():
    listed = candidate_list(QUICK, 4, SEED)
    assert listed[0] == QUICK
    assert listed[1] == replace(QUICK, **LIBRARY_DEFAULTS)
    assert listed == candidate_list(QUICK, 4, SEED)
    assert listed[2:] != candidate_list(QUICK, 4, SEED + 1)[2:]
    assert len(set(listed)) == 6
    # A rung's budget is learning rate x trees (rounded up to the reading step): a slower learner gets
    # more trees, never above the cap.
    assert rung_trees(replace(QUICK, learning_rate=0.05), 2.0, 20) == 40
    assert rung_trees(replace(QUICK, learning_rate=0.06), 2.0, 20) == 40
    assert rung_trees(replace(QUICK, learning_rate=0.01), 2.0, 20) == QUICK.n_estimators
    assert rung_trees(QUICK, None, 20) == QUICK.n_estimators


def test_a_cross_validation_resumed_in_steps_equals_one_run_to_the_end(generated, folds):
    matrix, labels, _, _ = generated
    rows = CVRows(matrix, labels, folds, SEED)
    params = replace(QUICK, subsample=0.7, colsample_bytree=0.6, learning_rate=0.05)
    whole = cross_validate(rows, Strategy(NO_RESAMPLING), params, CV_SETTINGS)
    run = CVRun(rows, Strategy(NO_RESAMPLING), params, CV_SETTINGS)
    first = run.advance(20)
    assert first.rounds == 20
    stepped = run.advance(params.n_estimators)
    run.close()
    assert (stepped.rounds, stepped.score) == (whole.rounds, whole.score)
    np.testing.assert_array_equal(stepped.oof_raw, whole.oof_raw)


def test_successive_halving_is_seeded_halves_and_stops_only_at_its_safety_budget(generated, folds):
    matrix, labels, _, _ = generated
    args = (CVRows(matrix, labels, folds, SEED), Strategy(UNDERSAMPLE, 0.1), QUICK, CV_SETTINGS)
    search = SearchConfig(candidates=4, halving_factor=3, first_rung_budget=1.0, time_budget_seconds=600)
    first, again = halving_search(*args, search), halving_search(*args, search)
    assert [r.params for r in first.results] == [r.params for r in again.results]
    assert [r.score for r in first.results] == [r.score for r in again.results]
    assert not first.stopped_by_time
    # 6 candidates: the first rung keeps 2, the last grows those 2 up to n_estimators and keeps 1.
    assert first.rungs == [
        {"budget": 1.0, "candidates": 6, "kept": 2},
        {"budget": None, "candidates": 2, "kept": 1},
    ]
    assert len(first.results) == 6
    # Each result is the candidate's own parameters, measured as far as the halving let it grow.
    assert [r.params for r in first.results] == candidate_list(QUICK, 4, SEED)
    # Only the two survivors may grow past the first rung's budget (rounded up to the reading step).
    grown = [r for r in first.results if r.rounds > rung_trees(r.params, 1.0, 20)]
    assert len(grown) <= 2
    cut = halving_search(*args, replace(search, time_budget_seconds=1e-9))
    assert cut.stopped_by_time
    assert cut.results == []
    assert cut.summary()["candidates_evaluated"] == 0


def test_search_flag_adds_the_search_to_the_record_and_keeps_the_best(generated):
    frame = generated[3].copy()
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    selection = SelectionConfig(undersampling_ratios=(0.1,), class_weight_ratios=(), no_resampling=False)
    cfg = TrainConfig(
        xgboost=QUICK,
        selection=selection,
        search=SearchConfig(enabled=True, candidates=1, time_budget_seconds=600),
        baseline=BaselineConfig(enabled=False),
    )
    result = fit(frame, cfg)
    search = result.selection["search"]
    assert search["candidates_evaluated"] == 3
    assert search["results"][0]["score"] == result.selection["comparison"][0]["score"]  # reused, not rerun
    scores = [result.selection["comparison"][0]["score"]] + [r["score"] for r in search["results"]]
    assert result.selection["cv_score"] == min(scores)
    assert result.selection["kept"] == "chosen"
    assert result.baseline is None


@pytest.mark.parametrize(
    "rule",
    [
        ThresholdRule(rule="target_precision", target=0.3),
        ThresholdRule(rule="target_recall", target=0.6),
        ThresholdRule(rule="cost_ratio", cost_ratio=0.05),
    ],
)
def test_threshold_rule_meets_its_target_and_reports_what_it_does(generated, rule):
    _, labels, true_pd, _ = generated
    rng = np.random.default_rng(1)
    pds = np.clip(true_pd * np.exp(rng.normal(0, 0.3, len(true_pd))), 0, 1)  # a good, imperfect model
    chosen = choose_threshold(labels, pds, rule)
    flagged = pds >= chosen["value"]
    precision = labels[flagged].mean()
    recall = labels[flagged].sum() / labels.sum()
    assert chosen["rule_met"]
    assert chosen["precision"] == pytest.approx(precision)
    assert chosen["recall"] == pytest.approx(recall)
    assert chosen["alert_rate"] == pytest.approx(flagged.mean())
    assert chosen["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    if rule.rule == "target_precision":
        assert precision >= rule.target
    elif rule.rule == "target_recall":
        assert recall >= rule.target
    else:
        candidates = np.unique(pds)
        flags = pds[None, :] >= candidates[:, None]
        costs = rule.cost_ratio * (flags & (labels == 0)).sum(axis=1) + (~flags & (labels == 1)).sum(axis=1)
        own = rule.cost_ratio * (flagged & (labels == 0)).sum() + (~flagged & (labels == 1)).sum()
        assert own == costs.min()
        assert chosen["cost_per_customer"] == pytest.approx(own / len(labels))


def test_decision_curve_counts_ties_once():
    labels = np.array([1, 0, 1, 0, 0])
    pds = np.array([0.9, 0.9, 0.5, 0.1, 0.1])
    curve = decision_curve(labels, pds)
    np.testing.assert_array_equal(curve.thresholds, [0.1, 0.5, 0.9])
    np.testing.assert_array_equal(curve.true_positives, [2, 2, 1])
    np.testing.assert_array_equal(curve.false_positives, [3, 1, 1])


def test_selection_and_threshold_settings_are_read_and_checked(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text(
        "[selection]\nmetric = 'pr_auc'\nundersampling_ratios = [0.2]\nclass_weight_ratios = []\n"
        "[search]\nenabled = true\ncandidates = 3\ntime_budget_seconds = 9\n"
        "[threshold]\nrule = 'cost_ratio'\ncost_ratio = 0.2\n"
    )
    cfg = load_train_config(path, truth_path="t.csv")
    assert cfg.selection.metric == "pr_auc"
    assert cfg.selection.undersampling_ratios == (0.2,)
    assert cfg.selection.class_weight_ratios == ()
    assert cfg.search == SearchConfig(enabled=True, candidates=3, time_budget_seconds=9)
    assert cfg.baseline == BaselineConfig()
    assert cfg.threshold.rule == "cost_ratio"
    assert cfg.truth_path == "t.csv"
    for bad in (
        "[selection]\nmetric = 'accuracy'\n",
        "[selection]\ncv_folds = 1\n",
        "[threshold]\ncost_ratio = 0\n",
    ):
        path.write_text(bad)
        with pytest.raises(ConfigError):
            load_train_config(path)


def test_the_shipped_config_searches_from_the_untuned_baseline_and_compares_every_strategy_kind():
    cfg = load_train_config()
    kinds = {s.kind for s in strategies(cfg.selection)}
    assert kinds == {NO_RESAMPLING, UNDERSAMPLE, CLASS_WEIGHT}
    assert cfg.search.enabled
    assert cfg.baseline.enabled
    # The starting point is the baseline's hand settings, not settings tuned on the sample data.
    assert cfg.xgboost == cfg.baseline.params(cfg.xgboost)
    assert cfg.xgboost.monotone_constraints == ()
    assert cfg.truth_path is None


def test_oracle_comparison_in_training_uses_the_same_holdout_rows(generated):
    frame, true_pd = generated[3].copy(), generated[2]
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    selection = SelectionConfig(undersampling_ratios=(0.1,), class_weight_ratios=())
    result = fit(
        frame,
        TrainConfig(xgboost=QUICK, selection=selection, **COMPARISON_ONLY),
        pd.Series(true_pd, index=frame[UUID]),
    )
    oracle = result.oracle
    assert oracle["rows"] == result.metrics["rows"]
    labels = frame[DEFAULT].to_numpy()
    _, holdout = train_test_split(np.arange(len(frame)), test_size=0.2, stratify=labels, random_state=7)
    np.testing.assert_array_equal(result.holdout_true_pd, true_pd[np.sort(holdout)])
    expected = probability_metrics(result.holdout_labels, result.holdout_true_pd)
    assert oracle["metrics"] == expected
    assert oracle["vs_model"]["log_loss"]["model"] == pytest.approx(result.metrics["log_loss"])
    assert result.reliability[0]["mean_true_pd"] < result.reliability[-1]["mean_true_pd"]
