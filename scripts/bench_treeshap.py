"""Reason codes' TreeSHAP: the model's tables (`defaultrisk.treeshap`) against XGBoost's `pred_contribs`.

Per model shape (depth 6 / 100 trees, depth 4 / 300, depth 2 / 600 by default), a booster is trained
on generated customers (the schema's 41 features, categorical ones as codes, missing values as NaN)
and `--rows` other customers are explained on one thread, both ways, `--repeat` times interleaved
(XGBoost, tables, XGBoost, ...); the medians are kept. Every time is the process's CPU time, which
other work on shared cores disturbs far less than wall time. One JSON line per shape:
`pred_contribs_ms_per_row`, `tables_ms_per_row`, `speedup`, `table_build_s` (tables built, kernels
already compiled), `table_mib` (the tables' float64 shares) and `model_mib` (every array the
explainer holds), `max_abs_diff` (over every contribution) and `same_top3` (share of rows whose three
reasons, positive shares only, are the same in the same order).

A first JSON line, `startup`, runs a fresh Python process twice with an empty numba cache folder:
`import_s` (import of the module, numba included), `first_build_s` and `first_call_s` (first table
build and first explained row: compiling on the cold run, loading the cached kernels on the warm one).

    PYTHONPATH=lib .venv/bin/python scripts/bench_treeshap.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import xgboost as xgb

SHAPES = ((6, 100), (4, 300), (2, 600))
_STARTUP = """
import json, time
t = time.process_time()
from defaultrisk.treeshap import TreeExplainer
import numpy as np, xgboost as xgb
imported = time.process_time() - t
x = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(x, label=x[:, 0] > 0), 2)
t = time.process_time()
explainer = TreeExplainer.from_booster(booster)
built = time.process_time() - t
t = time.process_time()
explainer.contributions(x[:1])
called = time.process_time() - t
print(json.dumps({"import_s": imported, "first_build_s": built, "first_call_s": called}))
"""


def startup() -> dict:
    """Import, first build and first call in fresh processes: with an empty numba cache, then warm."""
    result = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for run in ("cold", "warm"):
            out = subprocess.run(
                [sys.executable, "-c", _STARTUP], env=env, capture_output=True, text=True, check=True
            )
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            result.update({f"{run}_{key}": round(value, 3) for key, value in figures.items()})
    return result


def _top3(contributions: np.ndarray) -> list:
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :3]
    shares = np.take_along_axis(contributions, order, axis=1)
    return [tuple(idx[share > 0]) for idx, share in zip(order, shares, strict=True)]


def _median_seconds(samples: list[float]) -> float:
    return float(np.median(samples))


def bench_shape(depth: int, trees: int, train: tuple, rows: np.ndarray, repeat: int) -> dict:
    from defaultrisk.features import dmatrix
    from defaultrisk.treeshap import TreeExplainer

    matrix, labels = train
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": depth, "eta": 0.05}
    params.update({"subsample": 0.8, "colsample_bytree": 0.8, "nthread": 1, "seed": 1})
    booster = xgb.train(params, dmatrix(matrix, labels), num_boost_round=trees)
    started = time.process_time()
    explainer = TreeExplainer.from_booster(booster)
    build = time.process_time() - started
    data = dmatrix(rows)
    slow_times, fast_times = [], []
    for _ in range(repeat):
        started = time.process_time()
        expected = booster.predict(data, pred_contribs=True)[:, :-1]
        slow_times.append(time.process_time() - started)
        started = time.process_time()
        fast = explainer.contributions(rows)
        fast_times.append(time.process_time() - started)
    slow, quick = _median_seconds(slow_times), _median_seconds(fast_times)
    held = [value for value in vars(explainer).values() if isinstance(value, np.ndarray)]
    return {
        "shape": f"depth {depth} / {trees} trees",
        "features": rows.shape[1],
        "rows": len(rows),
        "pred_contribs_ms_per_row": round(1000 * slow / len(rows), 4),
        "tables_ms_per_row": round(1000 * quick / len(rows), 4),
        "speedup": round(slow / quick, 2),
        "table_build_s": round(build, 3),
        "table_mib": round(explainer.table_bytes / 2**20, 2),
        "model_mib": round(sum(a.nbytes for a in held) / 2**20, 2),
        "max_abs_diff": float(np.abs(fast - expected).max()),
        "same_top3": float(np.mean([a == b for a, b in zip(_top3(fast), _top3(expected), strict=True)])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="customers explained per shape")
    parser.add_argument("--train-rows", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved runs per shape (median kept)")
    args = parser.parse_args()

    from sampledata import make_history

    from defaultrisk.features import feature_matrix
    from defaultrisk.schema import DEFAULT

    print(json.dumps({"startup": startup()}), flush=True)
    from defaultrisk.treeshap import TreeExplainer

    # The kernels compiled (or loaded from numba's cache) before anything is timed.
    warm = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(np.eye(3), label=[0, 1, 0]), 1)
    TreeExplainer.from_booster(warm).contributions(np.eye(3, dtype=np.float32))
    frame, _ = make_history(args.train_rows, seed=11)
    train = (feature_matrix(frame), frame[DEFAULT].to_numpy(dtype=np.float64))
    scored, _ = make_history(args.rows, seed=12)
    rows = feature_matrix(scored)
    for depth, trees in SHAPES:
        print(json.dumps(bench_shape(depth, trees, train, rows, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
