"""The training job against an untuned XGBoost and the true pd, on labelled data whose truth is known.

    python scripts/realistic_benchmark.py [--source real|generator] [--output DIR] [--seed N]

`--source real` (default) builds the labelled set from the 10,000 real customer rows of
`../shared/data/test.csv` with a default mechanism of this script's own (`true_pd` below: a logistic
model with interactions and thresholds over real columns, not the sample generator's), base rate 1.4%.
The real rows are split into two disjoint pools of customers, 6,000 and 4,000: 90,000 labelled rows are
drawn with replacement from the first, 60,000 scored rows from the second, each draw with its own uuid
and its own default drawn from the row's true pd. Repeating a customer with fresh outcomes stands in for
a larger population with the same mix of profiles; keeping the scored customers out of the labelled
pool means the scored figures are out of sample (no customer's profile is seen in training).
`--source generator` takes 150,000 rows of the sample generator instead (its own true pd).

It writes both tables in the original format (`;`, `NA`), runs `jobs/train.py` (timed, Spark start-up
included), scores the 60,000 rows with the model through `score_frame`, fits the untuned XGBoost of
issue 14 on the same 90,000 rows (600 trees, depth 4, learning rate 0.03, min_child_weight 5,
subsample 0.8, colsample 0.7, native categoricals, no resampling) and prints the table: ROC AUC, PR AUC,
log loss and its ratio to the true pd's, mean pd against the observed rate. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from sampledata import make_history, write_original_csv, write_truth  # noqa: E402

from defaultrisk.features import dmatrix, feature_matrix  # noqa: E402
from defaultrisk.model import load_model  # noqa: E402
from defaultrisk.schema import DEFAULT, FEATURE_NAMES, UUID  # noqa: E402
from defaultrisk.scoring.core import score_frame  # noqa: E402
from defaultrisk.training.metrics import probability_metrics  # noqa: E402

REAL_ROWS = REPO.parent / "shared" / "data" / "test.csv"
LABELLED_ROWS = 90_000
SCORED_ROWS = 60_000
LABELLED_POOL_SHARE = 0.6
BASE_RATE = 0.014
ISSUE_BASELINE = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "max_depth": 4,
    "eta": 0.03,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.7,
    "nthread": 1,
}
ISSUE_BASELINE_TREES = 600


def _flag(condition) -> np.ndarray:
    return np.asarray(condition, dtype=float)


def risk_score(df: pd.DataFrame) -> np.ndarray:
    """This benchmark's own log-odds of default (without the intercept), over real columns."""
    num = {c: df[c].to_numpy(dtype=float) for c in FEATURE_NAMES if df[c].dtype != object}
    with np.errstate(invalid="ignore"):  # NaN compares False: a missing value adds nothing
        archived = _flag(num["status_max_archived_0_24_months"] >= 2) + _flag(
            num["status_max_archived_0_24_months"] >= 3
        )
        young = _flag(num["age"] < 28)
        dc_on_bad_account = np.log1p(np.nan_to_num(num["account_days_in_dc_12_24m"])) * _flag(
            num["account_worst_status_0_3m"] >= 2
        )
        late = 0.8 * _flag(num["avg_payment_span_0_12m"] > 25) + 0.5 * _flag(
            num["avg_payment_span_0_3m"] > 35
        )
        risky_goods = df["merchant_group"].isin(["Intangible products", "Erotic Materials", "Electronics"])
        terms = (
            0.9 * archived
            + 0.35 * np.log1p(num["num_unpaid_bills"]) * (1.0 + young)
            + 0.6 * dc_on_bad_account
            + late
            + 0.6 * _flag(~df["has_paid"].to_numpy(dtype=bool)) * _flag(num["num_active_inv"] >= 2)
            - 0.25 * np.log1p(num["num_arch_ok_0_12m"])
            - 0.12 * np.log1p(num["sum_paid_inv_0_12m"] / 1000.0)
            + 0.7 * _flag(num["status_last_archived_0_24m"] >= 2)
            + 0.5 * _flag(risky_goods) * _flag(num["age"] < 30)
            + 0.5 * _flag(num["time_hours"] < 5)
            + 0.6 * _flag(num["recovery_debt"] > 0)
            + 0.4 * _flag(num["account_incoming_debt_vs_paid_0_24m"] > 1)
            + 0.5 * _flag(np.isnan(num["account_status"]))
            + 0.02 * np.clip(40 - num["age"], -20, 20)
        )
    return 1.4 * terms


def intercept(df: pd.DataFrame, rate: float = BASE_RATE) -> float:
    """The intercept that makes the mean pd of `df` `rate` (bisection: the mean rises with it)."""
    score = risk_score(df)
    low, high = -30.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2
        if np.mean(1 / (1 + np.exp(-(mid + score)))) < rate:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def true_pd(df: pd.DataFrame, shift: float) -> np.ndarray:
    """The one default mechanism, the same function for every row: the score plus the intercept."""
    return 1 / (1 + np.exp(-(shift + risk_score(df))))


def _with_outcomes(rows: pd.DataFrame, rng: np.random.Generator, truth: np.ndarray) -> pd.DataFrame:
    rows = rows.reset_index(drop=True).copy()
    rows[UUID] = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(rows))]
    rows[DEFAULT] = (rng.random(len(rows)) < truth).astype(int)
    return rows


def real_tables(seed: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """Labelled and scored rows drawn from disjoint pools of the real customers, with their true pd."""
    rng = np.random.default_rng(seed)
    real = pd.read_csv(REAL_ROWS, keep_default_na=False, na_values=[""])
    real["has_paid"] = real["has_paid"].astype(str).eq("True")
    shift = intercept(real)  # solved once on all real customers: base rate 1.4% over the population
    order = rng.permutation(len(real))
    cut = int(LABELLED_POOL_SHARE * len(real))
    tables = []
    for pool, rows in ((order[:cut], LABELLED_ROWS), (order[cut:], SCORED_ROWS)):
        drawn = real.iloc[rng.choice(pool, rows, replace=True)]
        truth = true_pd(drawn, shift)
        tables += [_with_outcomes(drawn, rng, truth), truth]
    return tuple(tables)


def generator_tables(seed: int) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    frame, truth = make_history(LABELLED_ROWS + SCORED_ROWS, seed=seed)
    frame[DEFAULT] = frame[DEFAULT].astype(int)
    head, tail = frame.iloc[:LABELLED_ROWS], frame.iloc[LABELLED_ROWS:].reset_index(drop=True)
    return head, truth[:LABELLED_ROWS], tail, truth[LABELLED_ROWS:]


def train(labelled_csv: Path, truth_csv: Path, model_dir: Path, log_path: Path) -> tuple[dict, float]:
    started = time.monotonic()
    args = [sys.executable, "jobs/train.py", "--input", str(labelled_csv), "--model-dir", str(model_dir)]
    with log_path.open("w") as log:
        done = subprocess.run(
            [*args, "--truth", str(truth_csv)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            check=False,
        )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"training failed ({done.returncode}); see {log_path}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def issue_baseline(labelled: pd.DataFrame, scored: pd.DataFrame, seed: int) -> np.ndarray:
    """The untuned XGBoost of issue 14, fitted in a few lines on every labelled row."""
    data = dmatrix(feature_matrix(labelled), labelled[DEFAULT].to_numpy())
    booster = xgb.train({**ISSUE_BASELINE, "seed": seed}, data, num_boost_round=ISSUE_BASELINE_TREES)
    return booster.inplace_predict(feature_matrix(scored))


def _row(name: str, labels: np.ndarray, pds: np.ndarray, ceiling: float) -> dict:
    m = probability_metrics(labels, pds)
    return {
        "model": name,
        "roc_auc": round(m["roc_auc"], 4),
        "pr_auc": round(m["pr_auc"], 4),
        "log_loss": round(m["log_loss"], 5),
        "log_loss_ratio": round(m["log_loss"] / ceiling, 4),
        "mean_pd": round(m["mean_pd"], 5),
        "observed_rate": round(m["default_rate"], 5),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("real", "generator"), default="real")
    parser.add_argument("--output", type=Path, default=REPO / "bench-output" / "realistic")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    out = args.output / args.source
    build = real_tables if args.source == "real" else generator_tables
    labelled, labelled_truth, scored, scored_truth = build(args.seed)
    write_original_csv(labelled[[UUID, DEFAULT, *FEATURE_NAMES]], out / "labelled.csv")
    write_original_csv(scored[[UUID, *FEATURE_NAMES]], out / "scored.csv")
    write_truth(labelled[UUID], labelled_truth, out / "labelled_true_pd.csv")
    summary, seconds = train(
        out / "labelled.csv", out / "labelled_true_pd.csv", out / "model", out / "train.log"
    )
    labels = scored[DEFAULT].to_numpy()
    ceiling = probability_metrics(labels, scored_truth)["log_loss"]
    chosen = score_frame(scored[[UUID, *FEATURE_NAMES]], load_model(out / "model"))["pd"].to_numpy()
    rows = [
        _row("true pd (the ceiling)", labels, scored_truth, ceiling),
        _row(
            "untuned XGBoost (issue 14's recipe)",
            labels,
            issue_baseline(labelled, scored, args.seed),
            ceiling,
        ),
        _row(f"jobs/train.py (kept: {summary['kept']})", labels, chosen, ceiling),
    ]
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    _print(args.source, rows, summary, manifest, seconds)
    search = manifest["model_selection"].get("search", {})
    print(
        json.dumps(
            {
                "source": args.source,
                "labelled_rows": len(labelled),
                "scored_rows": len(scored),
                "scored_defaults": int(labels.sum()),
                "rows": rows,
                "training_seconds": round(seconds, 1),
                "kept": summary["kept"],
                "strategy": summary["strategy"],
                "trees": summary["trees"],
                "params": summary["params"],
                "calibration": summary["calibration"],
                "search_seconds": search.get("seconds"),
                "search_stopped_by_time": search.get("stopped_by_time_budget"),
                "job_holdout": summary["holdout"],
                "job_baseline_holdout": summary["baseline_holdout"],
            }
        )
    )
    return 0


def _print(source: str, rows: list[dict], summary: dict, manifest: dict, seconds: float) -> None:
    print(f"{source} data: {LABELLED_ROWS:,} labelled rows trained on, {SCORED_ROWS:,} scored rows measured")
    print("| model | ROC AUC | PR AUC | log loss | / true pd's | mean pd | observed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} | {r['log_loss']:.5f} | "
            f"{r['log_loss_ratio']:.3f} | {100 * r['mean_pd']:.3f}% | {100 * r['observed_rate']:.3f}% |"
        )
    search = manifest["model_selection"].get("search", {})
    print(
        f"training {seconds:.1f}s (Spark start-up included; search {search.get('seconds')}s); kept "
        f"{summary['kept']}: {summary['strategy']}, {summary['trees']} trees, {summary['params']}, "
        f"{summary['calibration']} calibration"
    )


if __name__ == "__main__":
    sys.exit(main())
