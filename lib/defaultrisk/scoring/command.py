"""The scoring job's command line (`defaultrisk score`, `jobs/score.py`): arguments, their checks, run."""

from __future__ import annotations

import argparse
import re
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from defaultrisk.runner import run_job
from defaultrisk.scoring.config import load_score_config
from defaultrisk.settings import INPUT_FORMATS

DATE_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}")


def snapshot_date(text: str) -> date:
    """A date written YYYY-MM-DD, and only so (Python would also take `2026-W01-1` or `20261124`)."""
    if not DATE_FORMAT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _model_dir(text: str) -> tuple[date | None, str]:
    """`DIR`, or `YYYY-MM-DD=DIR`: that model scores from that date on (in a backfill).

    An existing folder is a folder, whatever its name holds (`/models/m-x=1`).
    """
    first, sep, rest = text.partition("=")
    if sep and DATE_FORMAT.fullmatch(first) and not Path(text).is_dir():
        return snapshot_date(first), rest
    return None, text


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
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
        help="a directory written by the train job, or models:/NAME@ALIAS | models:/NAME/VERSION; "
        "repeat as YYYY-MM-DD=DIR for models by date range",
    )
    parser.add_argument(
        "--challenger",
        action="append",
        default=[],
        type=_model_dir,
        help="a model scored beside the live one into OUTPUT/_challengers (repeatable); "
        "YYYY-MM-DD=DIR scores from that date on",
    )
    parser.add_argument("--output", required=True, help="root of the scored table (partitioned by date)")
    dates = parser.add_mutually_exclusive_group(required=True)
    dates.add_argument("--snapshot-date", type=snapshot_date, help="the snapshot's date, YYYY-MM-DD")
    dates.add_argument(
        "--from", dest="date_from", type=snapshot_date, help="first date of a backfill (with --to)"
    )
    parser.add_argument("--to", dest="date_to", type=snapshot_date, help="last date of a backfill, inclusive")
    parser.add_argument("--results-csv", help="also write one `uuid;pd` file ({snapshot_date} is replaced)")
    parser.add_argument("--rejects", help="root of the rejected-rows table (default: OUTPUT/_rejects)")
    parser.add_argument(
        "--unlabeled-only", action="store_true", help="score only rows whose `default` is missing"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be read and written; no run")
    parser.add_argument("--table", help="register or refresh NAME, NAME_rejects, NAME_runs in the catalog")
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/score.toml)")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, help="override auto-detection")


def check_score_arguments(args: argparse.Namespace) -> str | None:
    """What argparse cannot say on its own: the usage error, if any."""
    if (args.date_from is None) != (args.date_to is None):
        return "--from and --to go together"
    if len([d for first, d in args.model_dir if first is None]) > 1:
        return "give one --model-dir DIR; further ones as YYYY-MM-DD=DIR"
    return None


def run_score_job(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    ranges = tuple(sorted((first, d) for first, d in args.model_dir if first is not None))
    overrides = {
        "input_path": args.input,
        "model_dir": next((d for first, d in args.model_dir if first is None), ""),
        "model_ranges": ranges,
        "challengers": tuple(args.challenger),
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
    from defaultrisk.scoring.pipeline import run_score

    return run_job("score", lambda: load_score_config(args.config, **overrides), run_score, spark)
