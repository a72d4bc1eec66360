"""The scoring job's settings: `conf/score.toml` ([score], [drift]) and the command line's values,
checked by `settings` (every problem in one `ConfigError`); the dates a run or a backfill covers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from defaultrisk.errors import ConfigError
from defaultrisk.schema import FEATURES
from defaultrisk.settings import (
    INPUT_FORMATS,
    check_flags,
    check_values,
    choice,
    fail_if,
    positive,
    read_sections,
    read_toml,
    whole,
)

log = logging.getLogger(__name__)

REASON_ROWS = ("high_risk", "all")  # which scored rows get reason codes (see ScoreConfig)
DATE_PLACEHOLDER = "{snapshot_date}"


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
    # Challengers scored beside the live model into `OUTPUT/_challengers/`: (first date or None, model
    # directory), in the order given; a dated one scores from its date on, an undated one every date.
    # Given by --challenger, never by a file.
    challengers: tuple = ()
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

    def challengers_for(self, day: date) -> list[str]:
        """The challengers' model directories that score `day` beside its live model, in order."""
        return [model_dir for first, model_dir in self.challengers if first is None or first <= day]

    @property
    def effective_rejects_dir(self) -> str:
        """Rejects go beside the scored table (`_rejects`, which Parquet readers skip) unless given."""
        return self.rejects_dir or self.output_dir.rstrip("/") + "/_rejects"


def for_date(template: str, day: date) -> str:
    """A path with `{snapshot_date}` replaced by the date (YYYY-MM-DD); other text is left as it is."""
    return template.replace(DATE_PLACEHOLDER, day.isoformat())


def load_score_config(path: Path | None = None, **overrides) -> ScoreConfig:
    """Read `conf/score.toml` (or `path`) and apply the command line's values."""
    source, raw = read_toml(path, "score.toml")
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
