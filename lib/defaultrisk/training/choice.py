"""Model choice on the training rows: the imbalance strategy, the parameter search and the untuned
baseline challenger, all compared by cross-validation; the hold-out plays no part.

The baseline is XGBoost with fixed, widely used settings (`[baseline]`), no resampling, its number
of trees chosen by the same early stopping. When it beats the chosen model on the selection metric
(cross-validated), the job keeps the baseline and says so: `model_selection.kept`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from defaultrisk.training.config import TrainConfig
from defaultrisk.training.metrics import LOWER_IS_BETTER
from defaultrisk.training.resampling import NO_RESAMPLING, Strategy, applicable_strategies, strategies
from defaultrisk.training.search import halving_search
from defaultrisk.training.selection import CVResult, CVRows, best_index, compare_strategies, cross_validate

log = logging.getLogger(__name__)

KEPT_CHOSEN = "chosen"
KEPT_BASELINE = "baseline"


def baseline_result(rows: CVRows, compared: list[CVResult], cfg: TrainConfig) -> CVResult | None:
    """The baseline cross-validated like any candidate (reused when the comparison already ran it)."""
    if not cfg.baseline.enabled:
        return None
    params = cfg.baseline.params(cfg.xgboost)
    for result in compared:
        if result.strategy.kind == NO_RESAMPLING and result.params == params:
            return result
    return cross_validate(rows, Strategy(NO_RESAMPLING), params, cfg.selection)


def _record(result: CVResult) -> dict:
    return {**result.summary(), "params": asdict(result.params)}


def choose_model(rows: CVRows, cfg: TrainConfig) -> tuple[CVResult, dict, CVResult | None]:
    """Cross-validate the strategies, the search and the baseline; return the kept model, the record
    of the choice (plain data) and the baseline's result (None when the baseline is off)."""
    selection = cfg.selection
    started = time.monotonic()
    candidates, skipped = applicable_strategies(strategies(selection), rows.labels, rows.folds)
    compared = compare_strategies(rows, candidates, cfg.xgboost, selection)
    best = best_result(compared, selection.metric)
    report = {
        "metric": selection.metric,
        "cv_folds": selection.cv_folds,
        "comparison": [r.summary() for r in compared],
    }
    if skipped:
        report["skipped_strategies"] = skipped
    if cfg.search.enabled:
        outcome = halving_search(rows, best.strategy, cfg.xgboost, selection, cfg.search, known=best)
        report["search"] = {"strategy": best.strategy.name, **outcome.summary()}
        best = best_result([best, *outcome.results], selection.metric)
    baseline = baseline_result(rows, compared, cfg)
    kept = KEPT_CHOSEN
    if baseline is not None:
        report["baseline"] = _record(baseline)
        # The baseline is the simpler model: the chosen one stays only if it beats it clearly.
        if best is not baseline and not clearly_better(best, baseline, selection.metric):
            log.warning(
                "the chosen model does not beat the untuned baseline by more than the folds' noise "
                "(cross-validated %s %.5f against %.5f): keeping the baseline",
                selection.metric,
                best.score,
                baseline.score,
            )
            report["chosen_before_baseline"] = _record(best)
            best, kept = baseline, KEPT_BASELINE
    report.update(kept=kept, cv_seconds=round(time.monotonic() - started, 2))
    return best, report, baseline


def best_result(results: Sequence[CVResult], metric: str) -> CVResult:
    """The first result (the simplest: no resampling, the starting point) unless the best by mean beats
    it clearly (`clearly_better`): a gain within the folds' noise does not earn a less simple model."""
    best = results[best_index([r.score for r in results], metric)]
    return best if clearly_better(best, results[0], metric) else results[0]


def clearly_better(challenger: CVResult, incumbent: CVResult, metric: str) -> bool:
    """True when `challenger` beats `incumbent` by more than one standard error of their paired
    fold-by-fold differences (the one-standard-error rule, on the same folds)."""
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    gains = sign * (np.asarray(incumbent.fold_scores) - np.asarray(challenger.fold_scores))
    if len(gains) < 2:
        return challenger.score * sign < incumbent.score * sign
    return float(gains.mean()) > float(gains.std(ddof=1)) / np.sqrt(len(gains))
