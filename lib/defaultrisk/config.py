"""Job configuration: TOML files in `conf/` loaded into frozen dataclasses, flags for what changes per run.

Every value a file sets is checked against its field's declared type and range when it is loaded
(a boolean is not a number, a string is not a number, a whole number is a number), and every problem
is reported at once in one `ConfigError` naming section, key, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from defaultrisk.errors import ConfigError
from defaultrisk.schema import CATEGORY, FEATURES
from defaultrisk.settings import (
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
    setting,
    whole,
)

log = logging.getLogger(__name__)


def _conf_dir() -> Path:
    """The checkout's `conf/` when the package runs from a checkout; else the copy built into the package.

    `setup.py` copies `conf/` into the wheel (`defaultrisk/conf/`), so there is one source and an
    installed package or a cluster-mode driver reads the same defaults as the checkout.
    """
    here = Path(__file__).resolve()
    checkout_conf = here.parents[2] / "conf"
    if here.parents[1].name == "lib" and checkout_conf.is_dir():
        return checkout_conf
    return here.parent / "conf"


CONF_DIR = _conf_dir()
INPUT_FORMATS = ("auto", "csv", "parquet")
REASON_ROWS = ("high_risk", "all")  # which scored rows get reason codes (see ScoreConfig)
THRESHOLD_RULES = ("target_precision", "target_recall", "cost_ratio", "max_f1")
SELECTION_METRICS = ("log_loss", "pr_auc")
CALIBRATION_METHODS = ("prior_correction", "platt", "isotonic")
DATE_PLACEHOLDER = "{snapshot_date}"
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


@dataclass(frozen=True)
class DriftSettings:
    """The `[drift]` section of `conf/score.toml`; becomes ScoreConfig's drift fields."""

    enabled: bool = True
    psi_limit: float | None = positive(0.25)
    min_rows: int = whole(1000, 0)


@dataclass(frozen=True)
class ScoreConfig:
    input_path: str = ""
    model_dir: str = ""
    output_dir: str = ""
    snapshot_date: date | None = None
    results_csv: str | None = None
    rejects_dir: str | None = None
    unlabeled_only: bool = False
    input_format: str = choice("auto", INPUT_FORMATS)
    # Digits after the decimal point for pd in results.csv (fixed notation, never scientific).
    results_csv_decimals: int = whole(10, 1, 17)
    # How many features pushing each customer's risk up to name in `reason_codes`; 0 turns them off.
    reason_codes: int = whole(3, 0, len(FEATURES))
    # Which rows get them: "high_risk" (pd at or above the model's threshold: the customers a decision
    # goes against; the others' reason_codes are null) or "all" (exact TreeSHAP for every row: slow).
    reason_rows: str = choice("high_risk", REASON_ROWS)
    # A backfill scores every date from `snapshot_date` to `date_to` (inclusive), each its own run;
    # `{snapshot_date}` in the input path (and results.csv path) is replaced by the date.
    date_to: date | None = None
    # Models by date range: (first date, model directory), sorted; a date takes the last range that
    # starts on or before it, and `model_dir` when none does. Given by --model-dir, never by a file.
    model_ranges: tuple = ()
    dry_run: bool = False
    # Register or refresh the scored table, NAME_rejects and NAME_runs in the session's catalog.
    table: str | None = None
    # Drift: PSI of each feature and of pd against the training data; above the limit, a warning and
    # exit code 6 (the scores are written all the same). None: report without a limit.
    drift: bool = True
    psi_limit: float | None = 0.25
    # Below this many input rows PSI is mostly sampling noise: the report is written, the limit ignored.
    drift_min_rows: int = 1000

    @property
    def dates(self) -> list[date]:
        """The snapshot dates this run scores, in order."""
        if self.snapshot_date is None:
            return []
        last = self.date_to or self.snapshot_date
        return [self.snapshot_date + timedelta(days=i) for i in range((last - self.snapshot_date).days + 1)]

    def model_for(self, day: date) -> str:
        """The model directory that scores `day`."""
        chosen = self.model_dir
        for first, model_dir in self.model_ranges:
            if first <= day:
                chosen = model_dir
        if not chosen:
            raise ConfigError(f"no model directory covers {day.isoformat()}")
        return chosen

    @property
    def effective_rejects_dir(self) -> str:
        """Rejects go beside the scored table (`_rejects`, which Parquet readers skip) unless given."""
        return self.rejects_dir or self.output_dir.rstrip("/") + "/_rejects"


def _read_toml(path: Path | None, default_name: str) -> tuple[str, dict]:
    """The file's name and its contents; the shipped default when no path is given."""
    if path is None:
        path = CONF_DIR / default_name
        if not path.exists():
            return "built-in defaults", {}
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return str(path), tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_train_config(path: Path | None = None, **overrides) -> TrainConfig:
    """Read `conf/train.toml` (or `path`) and apply the command line's values."""
    source, raw = _read_toml(path, "train.toml")
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


def for_date(template: str, day: date) -> str:
    """A path with `{snapshot_date}` replaced by the date (YYYY-MM-DD); other text is left as it is."""
    return template.replace(DATE_PLACEHOLDER, day.isoformat())


def load_score_config(path: Path | None = None, **overrides) -> ScoreConfig:
    """Read `conf/score.toml` (or `path`) and apply the command line's values."""
    source, raw = _read_toml(path, "score.toml")
    problems: list[str] = []
    tables = read_sections(raw, ("score", "drift"), problems)
    score = check_values(ScoreConfig, tables["score"], "[score]", problems)
    for key in ("drift", "psi_limit", "drift_min_rows"):
        if key in score:  # one way to say it: [drift] enabled, psi_limit, min_rows
            problems.append(f"[score] {key} is not a known setting (drift settings go in [drift])")
    drift = DriftSettings(**check_values(DriftSettings, tables["drift"], "[drift]", problems))
    check_flags(ScoreConfig, overrides, problems)
    fail_if(problems, source)
    drift_fields = {"drift": drift.enabled, "psi_limit": drift.psi_limit, "drift_min_rows": drift.min_rows}
    cfg = ScoreConfig(**{**score, **drift_fields, **overrides})
    _check_dates(cfg)
    log.info("score config from %s", source)
    return cfg


def _check_dates(cfg: ScoreConfig) -> None:
    if cfg.date_to is None:
        return
    if cfg.snapshot_date is None or cfg.date_to < cfg.snapshot_date:
        raise ConfigError(f"the backfill ends ({cfg.date_to}) before it starts ({cfg.snapshot_date})")
    if len(cfg.dates) > 1:
        for name, value in (("input", cfg.input_path), ("results-csv", cfg.results_csv)):
            if value and DATE_PLACEHOLDER not in value:
                raise ConfigError(
                    f"a backfill reads and writes one path per date: put {DATE_PLACEHOLDER} in --{name}"
                )


def as_dict(cfg) -> dict:
    """The effective config as plain data, for the start-of-run log line and the manifest."""
    return dataclasses.asdict(cfg)
