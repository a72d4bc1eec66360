"""Train the pd model on a labelled customer table (a spark-submit shim over `defaultrisk train`).

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

from defaultrisk.cli import parse_args as parse_job_args
from defaultrisk.cli import run_command


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return parse_job_args("train", argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_command("train", argv, spark)


if __name__ == "__main__":
    sys.exit(main())
