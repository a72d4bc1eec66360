"""The backtest job's command line (`defaultrisk backtest`, `jobs/backtest.py`): arguments, run."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from defaultrisk.backtest.config import load_backtest_config
from defaultrisk.runner import run_job
from defaultrisk.scoring.command import snapshot_date as _date


def _date_pair(text: str) -> tuple[date, date]:
    first, sep, second = text.partition(",")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FROM_DATE,TO_DATE, not {text!r}")
    return _date(first.strip()), _date(second.strip())


def add_backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scored", required=True, help="root of the scored table (partitioned by date)")
    parser.add_argument("--outcomes", required=True, help="outcomes table: uuid;default_date, CSV or Parquet")
    parser.add_argument(
        "--model-dir",
        action="append",
        default=[],
        help="a model's directory or models:/NAME@ALIAS | models:/NAME/VERSION (repeat for several models)",
    )
    parser.add_argument("--window-months", type=int, help="performance window in months (default 12)")
    parser.add_argument("--observed-until", type=_date, help="the last day the outcomes are complete for")
    parser.add_argument(
        "--as-of", type=_date, help="windows ending before this date are closed (default today)"
    )
    parser.add_argument("--migration", type=_date_pair, help="FROM_DATE,TO_DATE: grade migration matrix")
    parser.add_argument("--output", help="where results go (default: SCORED/_backtest)")
    parser.add_argument(
        "--outcomes-format", choices=("auto", "csv", "parquet"), help="override auto-detection"
    )
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/backtest.toml)")


def run_backtest_job(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    overrides = {
        "scored_path": args.scored,
        "outcomes_path": args.outcomes,
        "model_dirs": tuple(args.model_dir),
        "window_months": args.window_months,
        "observed_until": args.observed_until,
        "as_of": args.as_of,
        "migration": args.migration,
        "output_dir": args.output,
        "outcomes_format": args.outcomes_format,
    }
    # A configured test that failed exits 8 (errors.warning_exit); the summary is printed all the same.
    from defaultrisk.backtest.pipeline import run_backtest

    return run_job("backtest", lambda: load_backtest_config(args.config, **overrides), run_backtest, spark)
