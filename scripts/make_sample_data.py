"""Write sample input for the jobs: a labelled history table and nightly customer snapshots.

Snapshots follow one portfolio: each date brings back most of the previous date's customers (a few with
changed values) and some new ones. The files have the original format (`;`-separated, `NA` for missing)
so the jobs read them exactly as they read real data. Each file's true pd goes to `truth/`, beside the
data, for judging a trained model.

    python scripts/make_sample_data.py --out DIR [--history-rows 100000] [--snapshot-rows 10000]
        [--dates 2026-11-21,2026-11-22,2026-11-23] [--bad-rows 7] [--seed 7] [--unlabeled-fraction 0.0]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

# The sample-data generator is not part of the installed package: it lives in the checkout's lib/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from sampledata import (
    TRUE_PD,
    make_history,
    make_snapshots,
    write_original_csv,
    write_truth,
)
from sampledata.outcomes import make_outcomes, write_outcomes_csv

from defaultrisk.dates import add_months
from defaultrisk.schema import UUID

DEFAULT_DATES = "2026-11-21,2026-11-22,2026-11-23"


def _dates(text: str) -> list[date]:
    try:
        dates = [date.fromisoformat(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"dates must be YYYY-MM-DD, comma-separated: {exc}") from exc
    if len(set(dates)) != len(dates):
        raise argparse.ArgumentTypeError("dates must not repeat")
    return dates


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Write sample history and snapshot tables with their true pd."
    )
    parser.add_argument("--out", required=True, type=Path, help="directory to write into")
    parser.add_argument("--history-rows", type=_non_negative, default=100_000)
    parser.add_argument("--snapshot-rows", type=_non_negative, default=10_000)
    parser.add_argument("--dates", type=_dates, default=DEFAULT_DATES, help="snapshot dates, YYYY-MM-DD,...")
    parser.add_argument(
        "--bad-rows", type=_non_negative, default=7, help="invalid rows injected per snapshot"
    )
    parser.add_argument("--seed", type=_non_negative, default=7)
    parser.add_argument(
        "--window-months",
        type=_non_negative,
        default=12,
        help="outcomes: each snapshot customer's default (drawn from its true pd) within this many months",
    )
    parser.add_argument(
        "--unlabeled-fraction", type=_fraction, default=0.0, help="share of history rows without `default`"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write the history, the snapshots and their truth files, then print a JSON summary last."""
    args = _parser().parse_args(argv)
    out: Path = args.out
    truth_dir = out / "truth"

    history, history_pd = make_history(args.history_rows, args.seed, args.unlabeled_fraction)
    history_path = out / "history.csv"
    history_truth = truth_dir / "history_true_pd.csv"
    write_original_csv(history, history_path)
    print(f"wrote {history_path} ({len(history)} rows)")
    write_truth(history[UUID], history_pd, history_truth)
    print(f"wrote {history_truth} ({len(history)} rows)")
    summary: dict = {
        "history": {"path": str(history_path), "rows": len(history), "truth": str(history_truth)},
        "snapshots": [],
    }

    outcomes = []
    seen: set[str] = set()  # customers whose outcome is drawn: at their first snapshot as a valid row
    snapshots = make_snapshots(args.snapshot_rows, args.dates, args.seed, args.bad_rows)
    for day, (snapshot, info) in zip(args.dates, snapshots, strict=True):
        name = f"customers_{day.isoformat()}"
        path = out / "snapshots" / f"{name}.csv"
        truth_path = truth_dir / f"{name}_true_pd.csv"
        write_original_csv(snapshot, path)
        print(f"wrote {path} ({len(snapshot)} rows, {info['expected_rejected_rows']} invalid)")
        scored = np.ones(len(snapshot), dtype=bool)
        scored[info["rejected_rows"]] = False
        write_truth(snapshot[UUID].to_numpy()[scored], info[TRUE_PD][scored], truth_path)
        print(f"wrote {truth_path} ({int(scored.sum())} rows)")
        # A rejected row is never scored; a returning customer already has its outcome (one per customer).
        first = scored & ~snapshot[UUID].isin(seen).to_numpy()
        true_pd = np.where(first, info[TRUE_PD], np.nan)
        outcomes.append(make_outcomes(snapshot[UUID], true_pd, day, args.window_months, args.seed))
        seen.update(snapshot[UUID].to_numpy()[first])
        summary["snapshots"].append(
            {
                "date": day.isoformat(),
                "path": str(path),
                "rows": len(snapshot),
                "expected_rejected_rows": info["expected_rejected_rows"],
                "bad_kinds": info["bad_kinds"],
                "truth": str(truth_path),
                "truth_rows": int(scored.sum()),
            }
        )

    if args.dates:
        # What happened afterwards: every defaulter of every snapshot, complete up to the last window's end.
        observed_until = add_months(max(args.dates), args.window_months)
        outcomes_path = write_outcomes_csv(pd.concat(outcomes), out / "outcomes.csv", observed_until)
        defaults = int(sum(len(o) for o in outcomes))
        print(f"wrote {outcomes_path} ({defaults} defaults, observed until {observed_until})")
        summary["outcomes"] = {
            "path": str(outcomes_path),
            "defaults": defaults,
            "observed_until": str(observed_until),
        }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
