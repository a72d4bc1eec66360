"""Score a customer snapshot into the partitioned pd table (a spark-submit shim over `defaultrisk score`).

spark-submit jobs/score.py --input PATH --model-dir DIR --output DIR --snapshot-date YYYY-MM-DD
    [--results-csv PATH] [--rejects DIR] [--unlabeled-only] [--config conf/score.toml] [--table NAME]
    [--challenger DIR ...]                                   (challengers scored into OUTPUT/_challengers)
spark-submit jobs/score.py --input 'in/customers_{snapshot_date}.csv' --model-dir DIR --output DIR
    --from YYYY-MM-DD --to YYYY-MM-DD [--dry-run] ...        (a backfill: each date its own run)
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
    return parse_job_args("score", argv)


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_command("score", argv, spark)


if __name__ == "__main__":
    sys.exit(main())
