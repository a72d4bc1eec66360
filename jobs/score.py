"""Score a customer snapshot into the partitioned pd table.

spark-submit jobs/score.py --input PATH --model-dir DIR --output DIR --snapshot-date YYYY-MM-DD
    [--results-csv PATH] [--rejects DIR] [--unlabeled-only] [--config conf/score.toml]
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
from defaultrisk.pipeline import run_score


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="score", description=__doc__)
    parser.add_argument("--input", required=True, help="customer snapshot: original CSV or Parquet")
    parser.add_argument("--model-dir", required=True, help="a directory written by jobs/train.py")
    parser.add_argument("--output", required=True, help="root of the scored table (partitioned by date)")
    parser.add_argument("--snapshot-date", required=True, type=_date, help="the snapshot's date, YYYY-MM-DD")
    parser.add_argument("--results-csv", help="also write one `uuid;pd` file here")
    parser.add_argument("--rejects", help="root of the rejected-rows table (default: OUTPUT/_rejects)")
    parser.add_argument(
        "--unlabeled-only", action="store_true", help="score only rows whose `default` is missing"
    )
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/score.toml)")
    parser.add_argument("--input-format", choices=("auto", "csv", "parquet"), help="override auto-detection")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    args = parse_args(argv)
    overrides = {
        "input_path": args.input,
        "model_dir": args.model_dir,
        "output_dir": args.output,
        "snapshot_date": args.snapshot_date,
        "results_csv": args.results_csv,
        "rejects_dir": args.rejects,
        "unlabeled_only": args.unlabeled_only,
    }
    if args.input_format:
        overrides["input_format"] = args.input_format
    return run_job("score", lambda: load_score_config(args.config, **overrides), run_score, spark)


if __name__ == "__main__":
    sys.exit(main())
