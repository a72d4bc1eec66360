"""Score a customer snapshot into the partitioned pd table.

spark-submit jobs/score.py --input PATH --model-dir DIR --output DIR --snapshot-date YYYY-MM-DD
    [--results-csv PATH] [--rejects DIR] [--unlabeled-only] [--config conf/score.toml] [--table NAME]
spark-submit jobs/score.py --input 'in/customers_{snapshot_date}.csv' --model-dir DIR --output DIR
    --from YYYY-MM-DD --to YYYY-MM-DD [--dry-run] ...        (a backfill: each date its own run)
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

from defaultrisk.cli import run_job
from defaultrisk.config import load_score_config
from defaultrisk.scoring.pipeline import run_score


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _model_dir(text: str) -> tuple[date | None, str]:
    """`DIR`, or `YYYY-MM-DD=DIR`: that model scores from that date on (in a backfill)."""
    first, sep, rest = text.partition("=")
    if sep and len(first) == 10:
        return _date(first), rest
    return None, text


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score", description=__doc__)
    parser.add_argument(
        "--input",
        required=True,
        help="customer snapshot, CSV or Parquet ({snapshot_date} is replaced)",
    )
    parser.add_argument(
        "--model-dir",
        required=True,
        action="append",
        type=_model_dir,
        help="a directory written by jobs/train.py; repeat as YYYY-MM-DD=DIR for models by date range",
    )
    parser.add_argument("--output", required=True, help="root of the scored table (partitioned by date)")
    dates = parser.add_mutually_exclusive_group(required=True)
    dates.add_argument("--snapshot-date", type=_date, help="the snapshot's date, YYYY-MM-DD")
    dates.add_argument("--from", dest="date_from", type=_date, help="first date of a backfill (with --to)")
    parser.add_argument("--to", dest="date_to", type=_date, help="last date of a backfill, inclusive")
    parser.add_argument("--results-csv", help="also write one `uuid;pd` file ({snapshot_date} is replaced)")
    parser.add_argument("--rejects", help="root of the rejected-rows table (default: OUTPUT/_rejects)")
    parser.add_argument(
        "--unlabeled-only", action="store_true", help="score only rows whose `default` is missing"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be read and written; no run")
    parser.add_argument("--table", help="register or refresh NAME, NAME_rejects, NAME_runs in the catalog")
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/score.toml)")
    parser.add_argument("--input-format", choices=("auto", "csv", "parquet"), help="override auto-detection")
    args = parser.parse_args(argv)
    if (args.date_from is None) != (args.date_to is None):
        parser.error("--from and --to go together")
    defaults = [d for first, d in args.model_dir if first is None]
    if len(defaults) > 1:
        parser.error("give one --model-dir DIR; further ones as YYYY-MM-DD=DIR")
    return args


def main(argv: list[str] | None = None, spark=None) -> int:
    args = parse_args(argv)
    ranges = tuple(sorted((first, d) for first, d in args.model_dir if first is not None))
    overrides = {
        "input_path": args.input,
        "model_dir": next((d for first, d in args.model_dir if first is None), ""),
        "model_ranges": ranges,
        "output_dir": args.output,
        "snapshot_date": args.snapshot_date or args.date_from,
        "date_to": args.date_to,
        "results_csv": args.results_csv,
        "rejects_dir": args.rejects,
        "unlabeled_only": args.unlabeled_only,
        "dry_run": args.dry_run,
        "table": args.table,
    }
    if args.input_format:
        overrides["input_format"] = args.input_format
    return run_job("score", lambda: load_score_config(args.config, **overrides), run_score, spark)


if __name__ == "__main__":
    sys.exit(main())
