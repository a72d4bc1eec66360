"""Backtest the scored pd against realised defaults: per snapshot and rating grade, and grade migration.

spark-submit jobs/backtest.py --scored DIR --outcomes PATH [--model-dir DIR ...] [--window-months 12]
    [--observed-until YYYY-MM-DD] [--as-of YYYY-MM-DD] [--migration FROM_DATE,TO_DATE]
    [--output DIR] [--config conf/backtest.toml]
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

try:
    import defaultrisk  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from defaultrisk.backtest.config import load_backtest_config
from defaultrisk.backtest.pipeline import run_backtest
from defaultrisk.cli import run_job


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _date_pair(text: str) -> tuple[date, date]:
    first, sep, second = text.partition(",")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FROM_DATE,TO_DATE, not {text!r}")
    return _date(first.strip()), _date(second.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backtest", description=__doc__)
    parser.add_argument("--scored", required=True, help="root of the scored table (partitioned by date)")
    parser.add_argument("--outcomes", required=True, help="outcomes table: uuid;default_date, CSV or Parquet")
    parser.add_argument(
        "--model-dir", action="append", default=[], help="a model's directory (repeat for several models)"
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    args = parse_args(argv)
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
    return run_job("backtest", lambda: load_backtest_config(args.config, **overrides), run_backtest, spark)


if __name__ == "__main__":
    sys.exit(main())
