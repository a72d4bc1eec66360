"""The parameter search: successive halving over XGBoost's main parameters, each candidate
cross-validated with early stopping.

The candidates are a fixed list of well-known untuned settings (the run's own `[xgboost]` parameters
and XGBoost's library defaults) followed by seeded random draws. Every rung gives each surviving
candidate a budget of learning rate x trees, so a slow learner gets proportionally more trees, and
keeps the best 1/halving_factor of them; the last few are cross-validated up to `n_estimators`.
Everything the search decides depends on the data and the seed only. The wall-clock budget is a
safety stop: when it fires, the search keeps what it has measured, logs a warning and says so in the
record, and that run may differ from a run on a faster machine.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from defaultrisk.config import SearchConfig, SelectionConfig, XGBoostParams
from defaultrisk.training.metrics import LOWER_IS_BETTER
from defaultrisk.training.resampling import Strategy
from defaultrisk.training.selection import CVResult, CVRows, cross_validate

log = logging.getLogger(__name__)

SEARCH_MAX_DEPTH = (2, 8)
SEARCH_LEARNING_RATE = (0.02, 0.3)
# In hessian units: at a 1.4% base rate a row weighs ~0.014, so 20 already asks ~1,400 rows per leaf.
SEARCH_MIN_CHILD_WEIGHT = (0.5, 20.0)
SEARCH_SUBSAMPLE = (0.5, 1.0)
SEARCH_COLSAMPLE = (0.4, 1.0)
SEARCH_REG_LAMBDA = (0.1, 50.0)
SEARCH_STREAM = 101  # the search's own random stream, so adding it changes nothing else
# XGBoost's library defaults: the settings of a model "fitted in a few lines".
LIBRARY_DEFAULTS = {
    "max_depth": 6,
    "learning_rate": 0.3,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_lambda": 1.0,
}


@dataclass(frozen=True)
class SearchOutcome:
    results: list[CVResult]  # each candidate's result at the last rung it reached, in candidate order
    rungs: list[dict]  # per rung: budget, candidates measured, survivors
    candidates: int  # how many candidates the list held
    stopped_by_time: bool
    seconds: float

    def summary(self) -> dict:
        return {
            "method": "successive_halving",
            "candidates_requested": self.candidates,
            "candidates_evaluated": len(self.results),
            "rungs": self.rungs,
            "stopped_by_time_budget": self.stopped_by_time,
            "seconds": round(self.seconds, 2),
            "results": [{**r.summary(), "params": asdict(r.params)} for r in self.results],
        }


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def sample_params(rng: np.random.Generator, base: XGBoostParams) -> XGBoostParams:
    """One draw of XGBoost's main parameters; the number of trees stays the CV's to choose."""
    return replace(
        base,
        max_depth=int(rng.integers(SEARCH_MAX_DEPTH[0], SEARCH_MAX_DEPTH[1] + 1)),
        learning_rate=round(_log_uniform(rng, SEARCH_LEARNING_RATE), 4),
        min_child_weight=round(_log_uniform(rng, SEARCH_MIN_CHILD_WEIGHT), 3),
        subsample=round(float(rng.uniform(*SEARCH_SUBSAMPLE)), 3),
        colsample_bytree=round(float(rng.uniform(*SEARCH_COLSAMPLE)), 3),
        reg_lambda=round(_log_uniform(rng, SEARCH_REG_LAMBDA), 3),
    )


def candidate_list(base: XGBoostParams, draws: int, seed: int) -> list[XGBoostParams]:
    """The run's own parameters, XGBoost's defaults, then `draws` seeded random draws (no repeats)."""
    rng = np.random.default_rng([seed, SEARCH_STREAM])
    listed = [base, replace(base, **LIBRARY_DEFAULTS)]
    listed += [sample_params(rng, base) for _ in range(draws)]
    return list(dict.fromkeys(listed))


def rung_trees(params: XGBoostParams, budget: float | None) -> int:
    """Trees a candidate may grow at a rung: budget / learning rate, at most n_estimators (None: all)."""
    if budget is None:
        return params.n_estimators
    return max(1, min(params.n_estimators, math.ceil(budget / params.learning_rate)))


def _survivors(measured: dict[int, CVResult], keep: int, metric: str) -> list[int]:
    """The `keep` best candidates (the earlier one on a tie), in candidate order."""
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    return sorted(sorted(measured, key=lambda i: (sign * measured[i].score, i))[:keep])


class _Rungs:
    """One search's candidates and each one's latest cross-validated result."""

    def __init__(self, rows: CVRows, strategy: Strategy, selection: SelectionConfig, deadline: float):
        self.rows, self.strategy, self.selection, self.deadline = rows, strategy, selection, deadline
        self.latest: dict[int, CVResult] = {}

    def measure(self, candidates: list[XGBoostParams], alive: list[int], budget: float | None):
        """Each live candidate's result at this rung's budget; None if the safety stop fired."""
        measured: dict[int, CVResult] = {}
        for i in alive:
            trees = rung_trees(candidates[i], budget)
            earlier = self.latest.get(i)
            # Early stopping ended it below this budget, or it already had as many trees: nothing changes.
            if earlier is not None and (earlier.stopped_early or earlier.params.n_estimators >= trees):
                measured[i] = earlier
                continue
            params = replace(candidates[i], n_estimators=trees)
            result = cross_validate(self.rows, self.strategy, params, self.selection, self.deadline)
            if result is None:
                return None
            measured[i] = self.latest[i] = result
            _log_candidate(params, result, self.selection.metric)
        return measured


def halving_search(
    rows: CVRows,
    strategy: Strategy,
    base: XGBoostParams,
    selection: SelectionConfig,
    search: SearchConfig,
    known: CVResult | None = None,
) -> SearchOutcome:
    """Successive halving of the candidate list for one strategy; see the module's docstring.

    `known`: the strategy comparison's result for `base` on these rows, reused as the first candidate.
    """
    started = time.monotonic()
    candidates = candidate_list(base, search.candidates, rows.seed)
    state = _Rungs(rows, strategy, selection, started + search.time_budget_seconds)
    if known is not None and known.params == base and known.strategy == strategy:
        state.latest[0] = known
    alive = list(range(len(candidates)))
    budget: float | None = search.first_rung_budget
    rungs, stopped = [], False
    while alive:
        if len(alive) <= search.halving_factor:
            budget = None  # the last few: up to n_estimators, early stopping decides
        measured = state.measure(candidates, alive, budget)
        if measured is None:
            stopped = True
            log.warning(
                "search stopped by its %.0fs safety budget after %d rungs; the result may depend on "
                "the machine's speed",
                search.time_budget_seconds,
                len(rungs),
            )
            break
        keep = 1 if budget is None else math.ceil(len(alive) / search.halving_factor)
        rungs.append({"budget": budget, "candidates": len(alive), "kept": keep})
        alive = [] if budget is None else _survivors(measured, keep, selection.metric)
        budget = None if budget is None else budget * search.halving_factor
    results = [state.latest[i] for i in sorted(state.latest)]
    return SearchOutcome(results, rungs, len(candidates), stopped, time.monotonic() - started)


def _log_candidate(params: XGBoostParams, result: CVResult, metric: str) -> None:
    shown = {k: v for k, v in asdict(params).items() if k not in ("nthread", "monotone_constraints")}
    log.info(
        "search %s: %s %.5f at %d trees in %.1fs", shown, metric, result.score, result.rounds, result.seconds
    )
