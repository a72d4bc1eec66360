"""The training job's command line (`defaultrisk train`, `jobs/train.py`): arguments, run."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from pyspark.sql import SparkSession

from defaultrisk.errors import ConfigError
from defaultrisk.registry.register import Registration
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
    parser.add_argument(
        "--register",
        metavar="NAME",
        help="also log the run to MLflow and register the model folder as a new version of NAME",
    )
    parser.add_argument(
        "--registry",
        metavar="DIR_OR_URI",
        help="with --register: a local registry folder or a tracking URI "
        "(default: MLFLOW_TRACKING_URI, else DEFAULTRISK_REGISTRY)",
    )


def run_train_job(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    overrides = {"input_path": args.input, "model_dir": args.model_dir}
    if args.input_format:
        overrides["input_format"] = args.input_format
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.truth:
        overrides["truth_path"] = args.truth
    registration = Registration(args.register, args.registry) if args.register else None

    def load_config():
        if args.registry and not args.register:
            raise ConfigError("--registry goes with --register NAME")
        if registration is not None:
            registration.check()  # MLflow and a registry, before an hour of training
        return load_train_config(args.config, **overrides)

    from defaultrisk.training.pipeline import run_train

    return run_job("train", load_config, partial(run_train, registration=registration), spark)
