"""Train the pd model on a labelled customer table.

spark-submit jobs/train.py --input PATH --model-dir DIR [--config conf/train.toml] [--truth PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import defaultrisk  # noqa: F401
except ImportError:  # run from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from defaultrisk.cli import run_job
from defaultrisk.config import load_train_config
from defaultrisk.training.pipeline import run_train


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train", description=__doc__)
    parser.add_argument("--input", required=True, help="labelled customer table: original CSV or Parquet")
    parser.add_argument("--model-dir", required=True, help="directory to write the model and its report to")
    parser.add_argument("--config", type=Path, help="TOML settings (default: conf/train.toml)")
    parser.add_argument("--input-format", choices=("auto", "csv", "parquet"), help="override auto-detection")
    parser.add_argument("--seed", type=int, help="override the configured seed")
    parser.add_argument(
        "--truth", help="`uuid;true_pd` file of generated data: the report compares the model with it"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    args = parse_args(argv)
    overrides = {"input_path": args.input, "model_dir": args.model_dir}
    if args.input_format:
        overrides["input_format"] = args.input_format
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.truth:
        overrides["truth_path"] = args.truth
    return run_job("train", lambda: load_train_config(args.config, **overrides), run_train, spark)


if __name__ == "__main__":
    sys.exit(main())
