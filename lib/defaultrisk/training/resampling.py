"""Imbalance strategies: the training rows as they are, undersampled (imbalanced-learn), or weighted.

Each strategy multiplies the odds of default by 1/b (b: the share of non-defaulters it keeps, or the
inverse of the defaulters' weight); prior correction with b undoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from imblearn.under_sampling import RandomUnderSampler

from defaultrisk.errors import ConfigError
from defaultrisk.training.config import SelectionConfig

log = logging.getLogger(__name__)

NO_RESAMPLING = "none"
UNDERSAMPLE = "undersample"
CLASS_WEIGHT = "class_weight"


@dataclass(frozen=True)
class Strategy:
    """How the training rows meet the class imbalance: as they are, undersampled, or weighted."""

    kind: str
    ratio: float = 1.0  # minority:majority ratio reached by undersampling or weighting

    @property
    def name(self) -> str:
        return NO_RESAMPLING if self.kind == NO_RESAMPLING else f"{self.kind}_{self.ratio:g}"


@dataclass(frozen=True)
class Resampled:
    rows: np.ndarray  # positions of the rows the booster trains on, ascending
    scale_pos_weight: float
    # The strategy multiplies the odds of default by 1/b; prior correction with b undoes it.
    negative_sampling_rate: float


def strategies(selection: SelectionConfig) -> list[Strategy]:
    chosen = [Strategy(NO_RESAMPLING)] if selection.no_resampling else []
    chosen += [Strategy(UNDERSAMPLE, r) for r in selection.undersampling_ratios]
    chosen += [Strategy(CLASS_WEIGHT, r) for r in selection.class_weight_ratios]
    return chosen


def applicable_strategies(
    candidates: Sequence[Strategy], labels: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[list[Strategy], list[dict]]:
    """The strategies that can act on these rows, and those set aside with the reason.

    Undersampling or weighting to a minority:majority ratio the rows already exceed would have to drop
    defaulters or weight them down; rows whose non-defaulters were thinned in Spark can be there already.
    """
    subsets = [labels, *(labels[fit_rows] for fit_rows, _ in folds)]
    reached = max(int(s.sum()) / max(int(np.sum(s == 0)), 1) for s in subsets)
    kept, skipped = [], []
    for strategy in candidates:
        if strategy.kind != NO_RESAMPLING and strategy.ratio < reached:
            reason = f"ratio {strategy.ratio:g} is below the rows' own default ratio {reached:.4g}"
            log.warning("strategy %s skipped: %s", strategy.name, reason)
            skipped.append({"strategy": strategy.name, "reason": reason})
        else:
            kept.append(strategy)
    if not kept:
        raise ConfigError(
            f"no imbalance strategy applies: the training rows' default ratio is {reached:.4g}, above "
            "every undersampling and class weight ratio; give a higher ratio or enable no_resampling"
        )
    return kept, skipped


def undersample(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Indices kept by imbalanced-learn's random undersampling of the non-defaulters, in input order."""
    sampler = RandomUnderSampler(sampling_strategy=ratio, random_state=seed)
    try:
        kept, _ = sampler.fit_resample(np.arange(len(labels)).reshape(-1, 1), labels)
    except ValueError as exc:
        raise ConfigError(f"undersampling ratio {ratio} cannot be applied: {exc}") from exc
    return np.sort(kept.ravel())


def resample(labels: np.ndarray, strategy: Strategy, seed: int) -> Resampled:
    """The rows and weight a strategy trains on, and the odds factor its pd must be corrected by."""
    everything = np.arange(len(labels))
    negatives = int(np.sum(labels == 0))
    if strategy.kind == NO_RESAMPLING:
        return Resampled(everything, 1.0, 1.0)
    if strategy.kind == UNDERSAMPLE:
        kept = undersample(labels, strategy.ratio, seed)
        return Resampled(kept, 1.0, int(np.sum(labels[kept] == 0)) / negatives)
    if strategy.kind == CLASS_WEIGHT:
        weight = strategy.ratio * negatives / int(labels.sum())
        if weight < 1.0:
            raise ConfigError(
                f"class weight ratio {strategy.ratio} is below the data's default ratio; it would "
                "weight the defaulters down"
            )
        return Resampled(everything, weight, 1.0 / weight)
    raise ValueError(f"unknown strategy {strategy.kind!r}")
