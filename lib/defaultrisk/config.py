"""Job configuration: TOML files in `conf/` loaded into frozen dataclasses, flags for what changes per run."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from defaultrisk.errors import ConfigError
from defaultrisk.schema import CATEGORY, FEATURES

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
INPUT_FORMATS = ("auto", "csv", "parquet")
THRESHOLD_RULES = ("target_precision", "target_recall", "cost_ratio", "max_f1")
SELECTION_METRICS = ("log_loss", "pr_auc")
CALIBRATION_METHODS = ("prior_correction", "platt", "isotonic")
DATE_PLACEHOLDER = "{snapshot_date}"
DRIVER_SAMPLING = "driver"
SPARK_SAMPLING = "spark"
SAMPLING_MODES = (DRIVER_SAMPLING, SPARK_SAMPLING)


@dataclass(frozen=True)
class XGBoostParams:
    n_estimators: int = 300
    max_depth: int = 4
    learning_rate: float = 0.05
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    nthread: int = 2
    # A credit team's stated directions: (feature, +1 risk never falls / -1 never rises as it grows).
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
    rule: str = "target_precision"
    # The precision or recall to reach (target_precision, target_recall).
    target: float = 0.3
    # cost_ratio rule: what a false alarm costs relative to a missed default.
    cost_ratio: float = 0.1


@dataclass(frozen=True)
class SelectionConfig:
    """Which imbalance strategies cross-validation compares, and how the winner is chosen."""

    cv_folds: int = 3
    metric: str = "log_loss"
    no_resampling: bool = True
    # Minority-to-majority ratios after random undersampling (imbalanced-learn's sampling_strategy).
    undersampling_ratios: tuple[float, ...] = (0.05, 0.1, 0.3)
    # The same ratios reached by weighting the defaulters (XGBoost's scale_pos_weight) instead.
    class_weight_ratios: tuple[float, ...] = (0.1,)
    # Cross-validation reads each fold's score every `round_step` trees to choose the number of trees,
    # and stops adding trees when the mean score has not improved for `patience` such readings.
    round_step: int = 20
    patience: int = 3
    calibration_methods: tuple[str, ...] = CALIBRATION_METHODS


@dataclass(frozen=True)
class SearchConfig:
    """Successive halving over XGBoost's main parameters: a fixed list of well-known settings plus
    `candidates` seeded random draws; the budget is in trees, the time only a logged safety stop."""

    enabled: bool = True
    candidates: int = 12
    time_budget_seconds: float = 300.0
    # Each rung keeps the best 1/halving_factor of the candidates and gives them halving_factor times
    # the budget; the first rung's budget is learning_rate x trees (so slow learners get more trees).
    halving_factor: int = 3
    first_rung_budget: float = 2.0


@dataclass(frozen=True)
class BaselineConfig:
    """The untuned challenger fitted in every run: fixed, widely used settings, no resampling."""

    enabled: bool = True
    n_estimators: int = 600
    max_depth: int = 4
    learning_rate: float = 0.05
    min_child_weight: float = 5.0
    subsample: float = 0.8
    colsample_bytree: float = 0.7
    reg_lambda: float = 1.0

    def params(self, base: XGBoostParams) -> XGBoostParams:
        """The baseline's parameters; threads and monotone constraints are the run's."""
        fixed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "enabled"}
        return dataclasses.replace(base, **fixed)


@dataclass(frozen=True)
class TrainConfig:
    input_path: str = ""
    model_dir: str = ""
    input_format: str = "auto"
    # Optional `uuid;true_pd` file of generated data: the report then compares the model with the truth.
    truth_path: str | None = None
    seed: int = 7
    holdout_fraction: float = 0.2
    # How the labelled rows reach the driver: "driver" collects them all; "spark" first keeps every
    # defaulter and a seeded fraction of the non-defaulters inside Spark: `spark_negative_rate`, or the
    # rate that brings the expected row count to `max_driver_rows` (one of the two).
    sampling: str = DRIVER_SAMPLING
    spark_negative_rate: float | None = None
    max_driver_rows: int | None = None
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    xgboost: XGBoostParams = field(default_factory=XGBoostParams)
    threshold: ThresholdRule = field(default_factory=ThresholdRule)


@dataclass(frozen=True)
class ScoreConfig:
    input_path: str = ""
    model_dir: str = ""
    output_dir: str = ""
    snapshot_date: date | None = None
    results_csv: str | None = None
    rejects_dir: str | None = None
    unlabeled_only: bool = False
    input_format: str = "auto"
    # Digits after the decimal point for pd in results.csv (fixed notation, never scientific).
    results_csv_decimals: int = 10
    # How many features pushing each customer's risk up to name in `reason_codes`; 0 turns them off.
    reason_codes: int = 3
    # A backfill scores every date from `snapshot_date` to `date_to` (inclusive), each its own run;
    # `{snapshot_date}` in the input path (and results.csv path) is replaced by the date.
    date_to: date | None = None
    # Models by date range: (first date, model directory), sorted; a date takes the last range that
    # starts on or before it, and `model_dir` when none does.
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


def _read_toml(path: Path | None, default_name: str) -> dict:
    if path is None:
        path = CONF_DIR / default_name
        if not path.exists():
            return {}
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _build(cls, values: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{where}]: {', '.join(unknown)}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"bad settings in [{where}]: {exc}") from exc


def _check_format(value: str) -> None:
    if value not in INPUT_FORMATS:
        raise ConfigError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, not {value!r}")


def load_train_config(path: Path | None = None, **overrides) -> TrainConfig:
    """Read `conf/train.toml` (or `path`) and apply the command line's values."""
    raw = _read_toml(path, "train.toml")
    raw = dict(raw)
    monotone = _monotone(raw.pop("monotone", {}))
    if "monotone_constraints" in raw.get("xgboost", {}):
        raise ConfigError("monotone constraints go in their own [monotone] section: feature = -1 | 0 | 1")
    xgb = _build(XGBoostParams, {**raw.pop("xgboost", {}), "monotone_constraints": monotone}, "xgboost")
    threshold = _build(ThresholdRule, raw.pop("threshold", {}), "threshold")
    selection_values = dict(raw.pop("selection", {}))
    for key in ("undersampling_ratios", "class_weight_ratios", "calibration_methods"):
        if isinstance(selection_values.get(key), list):
            selection_values[key] = tuple(selection_values[key])
    selection = _build(SelectionConfig, selection_values, "selection")
    search = _build(SearchConfig, raw.pop("search", {}), "search")
    baseline = _build(BaselineConfig, raw.pop("baseline", {}), "baseline")
    train = raw.pop("train", {})
    if raw:
        raise ConfigError(f"unknown section(s) in train config: {', '.join(sorted(raw))}")
    sections = {"xgboost": xgb, "threshold": threshold, "selection": selection, "search": search}
    sections["baseline"] = baseline
    cfg = _build(TrainConfig, {**train, **overrides, **sections}, "train")
    _check_format(cfg.input_format)
    if not 0.0 < cfg.holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be between 0 and 1, not {cfg.holdout_fraction}")
    if threshold.rule not in THRESHOLD_RULES:
        rules = ", ".join(THRESHOLD_RULES)
        raise ConfigError(f"threshold rule must be one of {rules}, not {threshold.rule!r}")
    if not 0.0 < threshold.target <= 1.0:
        raise ConfigError(f"threshold target must be in (0, 1], not {threshold.target}")
    if not threshold.cost_ratio > 0.0:
        raise ConfigError(f"threshold cost_ratio must be above 0, not {threshold.cost_ratio}")
    _check_selection(selection)
    check_sampling(cfg)
    if search.candidates < 0 or not search.time_budget_seconds > 0:
        raise ConfigError("search needs candidates >= 0 and time_budget_seconds > 0")
    if search.halving_factor < 2 or not search.first_rung_budget > 0:
        raise ConfigError("search needs halving_factor >= 2 and first_rung_budget > 0")
    if xgb.n_estimators < selection.round_step:
        raise ConfigError(f"xgboost n_estimators must be at least round_step ({selection.round_step})")
    return cfg


def _monotone(section: dict) -> tuple[tuple[str, int], ...]:
    """`[monotone]`: feature = -1 | 0 | 1, for known features XGBoost reads as numbers; schema order."""
    kinds = {f.name: f.kind for f in FEATURES}
    for name, direction in section.items():
        if name not in kinds:
            raise ConfigError(f"[monotone] names an unknown feature: {name!r}")
        if kinds[name] == CATEGORY:
            raise ConfigError(f"[monotone] {name} is categorical: only numeric features can be monotone")
        if isinstance(direction, bool) or direction not in (-1, 0, 1):
            raise ConfigError(f"[monotone] {name} must be -1, 0 or 1, not {direction!r}")
    return tuple((f.name, int(section[f.name])) for f in FEATURES if section.get(f.name))


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_sampling(cfg: TrainConfig) -> None:
    """The sampling mode and its one setting: a rate in (0, 1] or a row budget, only with "spark"."""
    if cfg.sampling not in SAMPLING_MODES:
        modes = " or ".join(f'"{m}"' for m in SAMPLING_MODES)
        raise ConfigError(f"sampling must be {modes}, not {cfg.sampling!r}")
    given = [k for k in ("spark_negative_rate", "max_driver_rows") if getattr(cfg, k) is not None]
    if cfg.sampling == DRIVER_SAMPLING:
        if given:
            raise ConfigError(f'{" and ".join(given)} apply only with sampling = "spark"')
        return
    if len(given) != 1:
        raise ConfigError(
            'sampling = "spark" needs exactly one of spark_negative_rate (the fraction of non-defaulters '
            "kept) and max_driver_rows (the row budget the fraction is derived from)"
            + (f"; got {' and '.join(given)}" if given else "")
        )
    rate, budget = cfg.spark_negative_rate, cfg.max_driver_rows
    if rate is not None and not (_is_number(rate) and 0.0 < rate <= 1.0):
        raise ConfigError(f"spark_negative_rate must be a number in (0, 1], not {rate!r}")
    if budget is not None and not (isinstance(budget, int) and not isinstance(budget, bool) and budget > 0):
        raise ConfigError(f"max_driver_rows must be a whole number above 0, not {budget!r}")


def _check_selection(selection: SelectionConfig) -> None:
    if selection.metric not in SELECTION_METRICS:
        metrics = ", ".join(SELECTION_METRICS)
        raise ConfigError(f"selection metric must be one of {metrics}, not {selection.metric!r}")
    if selection.cv_folds < 2:
        raise ConfigError(f"cv_folds must be at least 2, not {selection.cv_folds}")
    if selection.round_step < 1 or selection.patience < 1:
        raise ConfigError("round_step and patience must be at least 1")
    ratios = (*selection.undersampling_ratios, *selection.class_weight_ratios)
    if any(not 0.0 < r <= 1.0 for r in ratios):
        raise ConfigError(f"undersampling and class weight ratios must be in (0, 1], not {list(ratios)}")
    if not selection.no_resampling and not ratios:
        raise ConfigError("selection compares no strategy: enable no_resampling or give a ratio")
    unknown = sorted(set(selection.calibration_methods) - set(CALIBRATION_METHODS))
    if unknown or not selection.calibration_methods:
        methods = ", ".join(CALIBRATION_METHODS)
        raise ConfigError(f"calibration_methods must be a non-empty list of {methods}; got {unknown}")


def for_date(template: str, day: date) -> str:
    """A path with `{snapshot_date}` replaced by the date (YYYY-MM-DD); other text is left as it is."""
    return template.replace(DATE_PLACEHOLDER, day.isoformat())


def load_score_config(path: Path | None = None, **overrides) -> ScoreConfig:
    """Read `conf/score.toml` (or `path`) and apply the command line's values."""
    raw = dict(_read_toml(path, "score.toml"))
    score = raw.pop("score", {})
    drift = raw.pop("drift", {})
    if raw:
        raise ConfigError(f"unknown section(s) in score config: {', '.join(sorted(raw))}")
    unknown = sorted(set(drift) - {"enabled", "psi_limit", "min_rows"})
    if unknown:
        raise ConfigError(f"unknown setting(s) in [drift]: {', '.join(unknown)}")
    if "enabled" in drift:
        score["drift"] = drift["enabled"]
    if "psi_limit" in drift:
        score["psi_limit"] = drift["psi_limit"]
    if "min_rows" in drift:
        score["drift_min_rows"] = drift["min_rows"]
    cfg = _build(ScoreConfig, {**score, **overrides}, "score")
    if cfg.psi_limit is not None and not (isinstance(cfg.psi_limit, int | float) and cfg.psi_limit > 0):
        raise ConfigError(f"psi_limit must be a number above 0, not {cfg.psi_limit!r}")
    _check_dates(cfg)
    _check_format(cfg.input_format)
    if not 1 <= cfg.results_csv_decimals <= 17:
        raise ConfigError(f"results_csv_decimals must be 1..17, not {cfg.results_csv_decimals}")
    if not 0 <= cfg.reason_codes <= len(FEATURES):
        raise ConfigError(f"reason_codes must be 0..{len(FEATURES)}, not {cfg.reason_codes}")
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
