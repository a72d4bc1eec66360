"""The backtest job's settings: `conf/backtest.toml` plus the command line's values."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

from defaultrisk.errors import ConfigError
from defaultrisk.settings import read_toml

OUTCOME_FORMATS = ("auto", "csv", "parquet")
# The tests a run can be failed on (exit 8), each at `significance`:
JEFFREYS = "jeffreys"  # the snapshot's mean pd is too low for its defaults (Jeffreys p-value)
JEFFREYS_GRADE = "jeffreys_grade"  # the same for any one grade
BINOMIAL_TOO_LOW = "binomial_too_low"  # exact binomial test, one-sided: more defaults than the pd says
BINOMIAL_TOO_HIGH = "binomial_too_high"  # one-sided: fewer defaults than the pd says
BINOMIAL_TWO_SIDED = "binomial_two_sided"
AUC_DROP = "auc_drop"  # ROC AUC significantly below the value the manifest recorded at training
TESTS = (JEFFREYS, JEFFREYS_GRADE, BINOMIAL_TOO_LOW, BINOMIAL_TOO_HIGH, BINOMIAL_TWO_SIDED, AUC_DROP)


@dataclass(frozen=True)
class BacktestConfig:
    scored_path: str = ""
    outcomes_path: str = ""
    # Where `_backtest` results go; default: the scored table's `_backtest` folder.
    output_dir: str | None = None
    # Manifests by model_version: the master scale (when the table has no `grade`) and the AUC at
    # training. A snapshot scored by a model not given gets the default scale and no AUC test.
    model_dirs: tuple[str, ...] = ()
    outcomes_format: str = "auto"
    # A snapshot's performance window: the day after the snapshot to the same day `window_months` later.
    window_months: int = 12
    # Windows end before this date to count as closed (default: today, UTC).
    as_of: date | None = None
    # The last day the outcomes table is complete for; overrides an `observed_until` column.
    observed_until: date | None = None
    migration: tuple[date, date] | None = None
    significance: float = 0.05
    interval_confidence: float = 0.95
    fail_on: tuple[str, ...] = (JEFFREYS, AUC_DROP)
    plots: bool = True

    @property
    def effective_output(self) -> str:
        return self.output_dir or self.scored_path.rstrip("/") + "/_backtest"


def load_backtest_config(path: Path | None = None, **overrides) -> BacktestConfig:
    """Read `conf/backtest.toml` (or `path`) and apply the command line's values (None: not given)."""
    _, raw = read_toml(path, "backtest.toml")
    section = dict(raw.pop("backtest", {}))
    if raw:
        raise ConfigError(f"unknown section(s) in backtest config: {', '.join(sorted(raw))}")
    if isinstance(section.get("fail_on"), list):
        section["fail_on"] = tuple(section["fail_on"])
    values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    known = {f.name for f in fields(BacktestConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [backtest]: {', '.join(unknown)}")
    cfg = BacktestConfig(**values)
    _check(cfg)
    return cfg


def _check(cfg: BacktestConfig) -> None:
    if not isinstance(cfg.window_months, int) or not 1 <= cfg.window_months <= 120:
        raise ConfigError(f"window_months must be a whole number 1..120, not {cfg.window_months!r}")
    for name in ("significance", "interval_confidence"):
        value = getattr(cfg, name)
        if not isinstance(value, int | float) or not 0.0 < value < 1.0:
            raise ConfigError(f"{name} must be a number in (0, 1), not {value!r}")
    unknown = sorted(set(cfg.fail_on) - set(TESTS))
    if unknown:
        raise ConfigError(f"fail_on: unknown test(s) {', '.join(unknown)}; known: {', '.join(TESTS)}")
    if cfg.outcomes_format not in OUTCOME_FORMATS:
        raise ConfigError(f"outcomes_format must be one of {', '.join(OUTCOME_FORMATS)}")
    if cfg.migration and cfg.migration[0] >= cfg.migration[1]:
        raise ConfigError(f"--migration: FROM ({cfg.migration[0]}) must be before TO ({cfg.migration[1]})")


def check_paths(cfg: BacktestConfig) -> None:
    """The inputs are given and the output overwrites neither, nor sits among the table's dates."""
    for name, value in (("--scored", cfg.scored_path), ("--outcomes", cfg.outcomes_path)):
        if not value:
            raise ConfigError(f"{name} is required")
    out, scored = cfg.effective_output.rstrip("/"), cfg.scored_path.rstrip("/")
    if out == scored or out.startswith(cfg.outcomes_path.rstrip("/") + "/") or out == cfg.outcomes_path:
        raise ConfigError(f"--output {out} would overwrite an input")
    if out.startswith(scored + "/") and not out[len(scored) + 1 :].startswith("_"):
        raise ConfigError(f"--output {out} inside the scored table must be a folder starting with _")
