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

from defaultrisk.training.config import SearchConfig, SelectionConfig, XGBoostParams
from defaultrisk.training.metrics import LOWER_IS_BETTER
from defaultrisk.training.resampling import Strategy
from defaultrisk.training.selection import CVResult, CVRows, CVRun

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


def rung_trees(params: XGBoostParams, budget: float | None, step: int) -> int:
    """Trees a candidate may grow at a rung: budget / learning rate, rounded up to the `step` at which
    cross-validation reads its score, at most n_estimators (None: n_estimators)."""
    if budget is None:
        return params.n_estimators
    return min(params.n_estimators, step * math.ceil(budget / params.learning_rate / step))


def _survivors(measured: dict[int, CVResult], keep: int, metric: str) -> list[int]:
    """The `keep` best candidates (the earlier one on a tie), in candidate order."""
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0
    return sorted(sorted(measured, key=lambda i: (sign * measured[i].score, i))[:keep])


class _Rungs:
    """One search's candidates, each one's latest result, and the runs still worth growing.

    A survivor's folds keep growing from where the last rung left them, never from the start; a
    candidate is closed as soon as it falls out of the rung's best `keep`, so at most keep + 1 runs hold
    their folds in memory.
    """

    def __init__(self, rows: CVRows, strategy: Strategy, selection: SelectionConfig, deadline: float):
        self.rows, self.strategy, self.selection, self.deadline = rows, strategy, selection, deadline
        self.latest: dict[int, CVResult] = {}
        self.open: dict[int, CVRun] = {}
        self.final: set[int] = set()  # measured in full (or given): nothing left to grow

    def measure(self, candidates: list[XGBoostParams], alive: list[int], budget: float | None, keep: int):
        """Each live candidate's result at this rung's budget and the best `keep` of them; None if the
        safety stop fired."""
        measured: dict[int, CVResult] = {}
        for i in alive:
            if i not in self.final:
                run = self.open.get(i) or CVRun(self.rows, self.strategy, candidates[i], self.selection)
                self.open[i] = run
                result = run.advance(
                    rung_trees(candidates[i], budget, self.selection.round_step), self.deadline
                )
                if result is None:
                    return None
                self.latest[i] = result
                if run.stopped or budget is None:
                    self.final.add(i)
                _log_candidate(candidates[i], result, self.selection.metric)
            measured[i] = self.latest[i]
            best = _survivors(measured, keep, self.selection.metric)
            for j in [j for j in self.open if j not in best or j in self.final]:
                self.open.pop(j).close()
        return _survivors(measured, keep, self.selection.metric)

    def close(self) -> None:
        for run in self.open.values():
            run.close()
        self.open.clear()


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
        state.final.add(0)
    alive = list(range(len(candidates)))
    budget: float | None = search.first_rung_budget
    rungs, stopped = [], False
    try:
        while alive:
            if len(alive) <= search.halving_factor:
                budget = None  # the last few: up to n_estimators, early stopping decides
            keep = 1 if budget is None else math.ceil(len(alive) / search.halving_factor)
            survivors = state.measure(candidates, alive, budget, keep)
            if survivors is None:
                stopped = True
                log.warning(
                    "search stopped by its %.0fs safety budget after %d rungs; the result may depend on "
                    "the machine's speed",
                    search.time_budget_seconds,
                    len(rungs),
                )
                break
            rungs.append({"budget": budget, "candidates": len(alive), "kept": keep})
            alive = [] if budget is None else survivors
            budget = None if budget is None else budget * search.halving_factor
    finally:
        state.close()
    results = [state.latest[i] for i in sorted(state.latest)]
    return SearchOutcome(results, rungs, len(candidates), stopped, time.monotonic() - started)


def _log_candidate(params: XGBoostParams, result: CVResult, metric: str) -> None:
    shown = {k: v for k, v in asdict(params).items() if k not in ("nthread", "monotone_constraints")}
    log.info(
        "search %s: %s %.5f at %d trees in %.1fs", shown, metric, result.score, result.rounds, result.seconds
    )
