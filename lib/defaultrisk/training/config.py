"""The training job's settings: `conf/train.toml` in frozen dataclasses, plus the command line's values.

Every value a file sets is checked against its field's declared type and range when it is loaded, and
every problem is reported at once in one `ConfigError` naming section, key, expected and found.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

from defaultrisk.schema import CATEGORY, FEATURES
from defaultrisk.settings import (
    INPUT_FORMATS,
    at_least_zero,
    check_flags,
    check_values,
    choice,
    fail_if,
    found,
    fraction,
    positive,
    ratios,
    read_sections,
    read_toml,
    setting,
    whole,
)

log = logging.getLogger(__name__)

THRESHOLD_RULES = ("target_precision", "target_recall", "cost_ratio", "max_f1")
SELECTION_METRICS = ("log_loss", "pr_auc")
CALIBRATION_METHODS = ("prior_correction", "platt", "isotonic")
DRIVER_SAMPLING = "driver"
SPARK_SAMPLING = "spark"
SAMPLING_MODES = (DRIVER_SAMPLING, SPARK_SAMPLING)
ALL_ROWS, TRAINING_ROWS = "all_rows", "training_rows"
FINAL_FITS = (ALL_ROWS, TRAINING_ROWS)


@dataclass(frozen=True)
class XGBoostParams:
    n_estimators: int = whole(300, 1)
    max_depth: int = whole(4, 1)
    learning_rate: float = fraction(0.05)
    subsample: float = fraction(0.8)
    colsample_bytree: float = fraction(0.8)
    min_child_weight: float = at_least_zero(1.0)
    reg_lambda: float = at_least_zero(1.0)
    nthread: int = whole(2, 1)
    # A credit team's stated directions: (feature, +1 risk never falls / -1 never rises as it grows),
    # from the [monotone] section.
    monotone_constraints: tuple[tuple[str, int], ...] = ()

    def booster_params(self, seed: int) -> dict:
        constraints = dict(self.monotone_constraints)
        return {
            "objective": "binary:logistic",
            "eval_metric": "logloss",
            "tree_method": "hist",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "nthread": self.nthread,
            "seed": seed,
            **({"monotone_constraints": constraints} if constraints else {}),
        }


@dataclass(frozen=True)
class ThresholdRule:
    rule: str = choice("target_precision", THRESHOLD_RULES)
    # The precision or recall to reach (target_precision, target_recall).
    target: float = fraction(0.3)
    # cost_ratio rule: what a false alarm costs relative to a missed default.
    cost_ratio: float = positive(0.1)


@dataclass(frozen=True)
class SelectionConfig:
    """Which imbalance strategies cross-validation compares, and how the winner is chosen."""

    cv_folds: int = whole(3, 2)
    metric: str = choice("log_loss", SELECTION_METRICS)
    no_resampling: bool = True
    # Minority-to-majority ratios after random undersampling (imbalanced-learn's sampling_strategy).
    undersampling_ratios: tuple[float, ...] = ratios((0.05, 0.1, 0.3))
    # The same ratios reached by weighting the defaulters (XGBoost's scale_pos_weight) instead.
    class_weight_ratios: tuple[float, ...] = ratios((0.1,))
    # Cross-validation reads each fold's score every `round_step` trees to choose the number of trees,
    # and stops adding trees when the mean score has not improved for `patience` such readings.
    round_step: int = whole(20, 1)
    patience: int = whole(3, 1)
    calibration_methods: tuple[str, ...] = setting(
        CALIBRATION_METHODS,
        "a non-empty list of " + ", ".join(f'"{m}"' for m in CALIBRATION_METHODS),
        lambda v: bool(v) and set(v) <= set(CALIBRATION_METHODS),
    )


@dataclass(frozen=True)
class SearchConfig:
    """Successive halving over XGBoost's main parameters: a fixed list of well-known settings plus
    `candidates` seeded random draws; the budget is in trees, the time only a logged safety stop."""

    enabled: bool = True
    candidates: int = whole(12, 0)
    time_budget_seconds: float = positive(300.0)
    # Each rung keeps the best 1/halving_factor of the candidates and gives them halving_factor times
    # the budget; the first rung's budget is learning_rate x trees (so slow learners get more trees).
    halving_factor: int = whole(3, 2)
    first_rung_budget: float = positive(2.0)


@dataclass(frozen=True)
class BaselineConfig:
    """The untuned challenger fitted in every run: fixed, widely used settings, no resampling."""

    enabled: bool = True
    n_estimators: int = whole(600, 1)
    max_depth: int = whole(4, 1)
    learning_rate: float = fraction(0.05)
    min_child_weight: float = at_least_zero(5.0)
    subsample: float = fraction(0.8)
    colsample_bytree: float = fraction(0.7)
    reg_lambda: float = at_least_zero(1.0)

    def params(self, base: XGBoostParams) -> XGBoostParams:
        """The baseline's parameters; threads and monotone constraints are the run's."""
        fixed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "enabled"}
        return dataclasses.replace(base, **fixed)


@dataclass(frozen=True)
class TrainConfig:
    input_path: str = ""
    model_dir: str = ""
    input_format: str = choice("auto", INPUT_FORMATS)
    # Optional `uuid;true_pd` file of generated data: the report then compares the model with the truth.
    truth_path: str | None = None
    seed: int = whole(7, 0)
    holdout_fraction: float = fraction(0.2, include_one=False)
    # What the shipped model is fitted on once the hold-out has checked the choice: "all_rows" (the
    # training and hold-out rows: the same recipe, a fifth more data) or "training_rows" (the very
    # booster the hold-out measured).
    final_fit: str = choice(ALL_ROWS, FINAL_FITS)
    # How the labelled rows reach the driver: "driver" collects them all; "spark" first keeps every
    # defaulter and a seeded fraction of the non-defaulters inside Spark: `spark_negative_rate`, or the
    # rate that brings the expected row count to `max_driver_rows` (one of the two).
    sampling: str = choice(DRIVER_SAMPLING, SAMPLING_MODES)
    spark_negative_rate: float | None = fraction(None)
    max_driver_rows: int | None = setting(None, "a whole number above 0", lambda v: v > 0)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    xgboost: XGBoostParams = field(default_factory=XGBoostParams)
    threshold: ThresholdRule = field(default_factory=ThresholdRule)


def load_train_config(path: Path | None = None, **overrides) -> TrainConfig:
    """Read `conf/train.toml` (or `path`) and apply the command line's values."""
    source, raw = read_toml(path, "train.toml")
    problems: list[str] = []
    known = ("train", "selection", "search", "baseline", "xgboost", "threshold", "monotone")
    tables = read_sections(raw, known, problems)
    if tables["xgboost"].pop("monotone_constraints", None) is not None:
        problems.append("[xgboost] monotone_constraints: directions go in their own [monotone] section")
    monotone = _monotone(tables["monotone"], problems)
    train = check_values(TrainConfig, tables["train"], "[train]", problems)
    sections = {
        "selection": SelectionConfig(
            **check_values(SelectionConfig, tables["selection"], "[selection]", problems)
        ),
        "search": SearchConfig(**check_values(SearchConfig, tables["search"], "[search]", problems)),
        "baseline": BaselineConfig(
            **check_values(BaselineConfig, tables["baseline"], "[baseline]", problems)
        ),
        "xgboost": XGBoostParams(
            **check_values(XGBoostParams, tables["xgboost"], "[xgboost]", problems),
            monotone_constraints=monotone,
        ),
        "threshold": ThresholdRule(
            **check_values(ThresholdRule, tables["threshold"], "[threshold]", problems)
        ),
    }
    check_flags(TrainConfig, overrides, problems)
    fail_if(problems, source)
    cfg = TrainConfig(**{**train, **overrides, **sections})
    # Settings that must agree with each other, checked once each value is right on its own.
    if cfg.xgboost.n_estimators < cfg.selection.round_step:
        problems.append(
            f"[xgboost] n_estimators must be at least [selection] round_step ({cfg.selection.round_step}), "
            f"found {cfg.xgboost.n_estimators}"
        )
    if not cfg.selection.no_resampling and not (
        cfg.selection.undersampling_ratios or cfg.selection.class_weight_ratios
    ):
        problems.append("[selection] compares no strategy: enable no_resampling or give a ratio")
    problems.extend(_sampling_problems(cfg))
    fail_if(problems, source)
    log.info("train config from %s", source)
    return cfg


def _monotone(section: dict, problems: list[str]) -> tuple[tuple[str, int], ...]:
    """`[monotone]`: feature = -1 | 0 | 1, for known features XGBoost reads as numbers; schema order."""
    kinds = {f.name: f.kind for f in FEATURES}
    good = {}
    for name, direction in section.items():
        if name not in kinds:
            problems.append(f"[monotone] {name} is an unknown feature")
        elif kinds[name] == CATEGORY:
            problems.append(f"[monotone] {name} is categorical: only numeric features can be monotone")
        elif isinstance(direction, bool) or direction not in (-1, 0, 1):
            problems.append(f"[monotone] {name} must be -1, 0 or 1, found {found(direction)}")
        else:
            good[name] = int(direction)
    return tuple((f.name, good[f.name]) for f in FEATURES if good.get(f.name))


def _sampling_problems(cfg: TrainConfig) -> list[str]:
    """The sampling mode and its one setting: a rate or a row budget, only with "spark"."""
    given = [k for k in ("spark_negative_rate", "max_driver_rows") if getattr(cfg, k) is not None]
    if cfg.sampling == DRIVER_SAMPLING and given:
        return [f'[train] {" and ".join(given)} apply only with sampling = "spark"']
    if cfg.sampling == SPARK_SAMPLING and len(given) != 1:
        return [
            '[train] sampling = "spark" needs exactly one of spark_negative_rate (the fraction of '
            "non-defaulters kept) and max_driver_rows (the row budget the fraction is derived from)"
            + (f"; got {' and '.join(given)}" if given else "")
        ]
    return []
