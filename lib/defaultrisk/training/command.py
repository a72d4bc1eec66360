"""The training job's command line (`defaultrisk train`, `jobs/train.py`): arguments, run."""

from __future__ import annotations

import argparse
from pathlib import Path

from pyspark.sql import SparkSession

from defaultrisk.runner import run_job
from defaultrisk.settings import INPUT_FORMATS
from defaultrisk.training.config import load_train_config


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="labelled customer table: original CSV or Parquet")
    parser.add_argument("--model-dir", required=True, help="directory to write the model and its report to")
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/train.toml)")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, help="override auto-detection")
    parser.add_argument("--seed", type=int, help="override the configured seed")
    parser.add_argument(
        "--truth", help="`uuid;true_pd` file of generated data: the report compares the model with it"
    )


def run_train_job(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    overrides = {"input_path": args.input, "model_dir": args.model_dir}
    if args.input_format:
        overrides["input_format"] = args.input_format
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.truth:
        overrides["truth_path"] = args.truth
    from defaultrisk.training.pipeline import run_train

    return run_job("train", lambda: load_train_config(args.config, **overrides), run_train, spark)
