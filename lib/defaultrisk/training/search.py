"""An optional seeded random search over XGBoost's main parameters, each candidate cross-validated."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from defaultrisk.config import SearchConfig, SelectionConfig, XGBoostParams
from defaultrisk.training.resampling import Strategy
from defaultrisk.training.selection import CVResult, CVRows, cross_validate

log = logging.getLogger(__name__)

SEARCH_MAX_DEPTH = (2, 6)
SEARCH_LEARNING_RATE = (0.02, 0.3)
SEARCH_MIN_CHILD_WEIGHT = (0.5, 50.0)
SEARCH_SUBSAMPLE = (0.5, 1.0)
SEARCH_COLSAMPLE = (0.4, 1.0)
SEARCH_REG_LAMBDA = (0.1, 50.0)
SEARCH_STREAM = 101  # the search's own random stream, so adding it changes nothing else


@dataclass(frozen=True)
class SearchOutcome:
    results: list[CVResult]
    candidates: int  # how many were asked for
    stopped_by_time: bool
    seconds: float

    def summary(self) -> dict:
        return {
            "candidates_requested": self.candidates,
            "candidates_evaluated": len(self.results),
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


def random_search(
    rows: CVRows, strategy: Strategy, base: XGBoostParams, selection: SelectionConfig, search: SearchConfig
) -> SearchOutcome:
    """Cross-validate seeded random parameter sets for one strategy, within a time budget.

    The draws depend on the seed only; the budget can cut the list short (a candidate still running
    when it expires is dropped), so a run that must repeat exactly needs a budget it does not reach.
    """
    started = time.monotonic()
    deadline = started + search.time_budget_seconds
    rng = np.random.default_rng([rows.seed, SEARCH_STREAM])
    results: list[CVResult] = []
    stopped = False
    for _ in range(search.candidates):
        params = sample_params(rng, base)
        result = cross_validate(rows, strategy, params, selection, deadline)
        if result is None:
            stopped = True
            break
        log.info(
            "search %s: %s %.5f at %d trees", asdict(params), selection.metric, result.score, result.rounds
        )
        results.append(result)
    return SearchOutcome(results, search.candidates, stopped, time.monotonic() - started)
