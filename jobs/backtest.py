"""Backtest the scored pd against realised defaults: per snapshot and rating grade, and grade migration.

spark-submit jobs/backtest.py --scored DIR --outcomes PATH [--model-dir DIR ...] [--window-months 12]
    [--observed-until YYYY-MM-DD] [--as-of YYYY-MM-DD] [--migration FROM_DATE,TO_DATE]
    [--output DIR] [--config conf/backtest.toml]
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
    return parse_job_args("backtest", argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_command("backtest", argv, spark)


if __name__ == "__main__":
    sys.exit(main())
