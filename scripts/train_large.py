"""Train on a labelled table too large to collect: generate it, run the training job, measure it.

    .venv/bin/python scripts/train_large.py [--rows 5000000] [--max-driver-rows 400000 | --negative-rate R]
        [--work DIR] [--chunk-rows 250000] [--seed 1000]

Generates `--rows` labelled customers as one Parquet dataset (one file per chunk of `--chunk-rows`, each
chunk drawn by `make_history` with its own seed, typed columns), cached in `WORK/history-N/` and reused
while rows, chunks and seed match. Then runs `jobs/train.py` on it as a subprocess with the shipped
`conf/train.toml` switched to `sampling = "spark"`, polls /proc for the resident memory of the job's whole
process tree (the Python driver, its JVM and any Python workers), and prints what went in, what reached
the driver, peak memory, wall time, the hold-out metrics, and mean pd beside the observed default rate.
The figures are also written to `WORK/train-large-result.json`. See docs/training-at-scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# The sample-data generator is not part of the installed package: it lives in the checkout's lib/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from benchlib import MemoryWatch
from sampledata import make_history

from defaultrisk.schema import CATEGORY, CODE, COUNT, DEFAULT, FEATURES, FLAG, UUID

REPO = Path(__file__).resolve().parents[1]
GENERATED_MARKER = "_generated.json"  # Parquet readers skip files whose names start with `_`
ARROW_TYPES = {CATEGORY: pa.string(), FLAG: pa.bool_(), COUNT: pa.int64(), CODE: pa.int64()}
POLL_SECONDS = 0.5
GIB = 1024**3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train_large", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="labelled rows to generate")
    parser.add_argument("--chunk-rows", type=int, default=250_000, help="rows per generated Parquet file")
    parser.add_argument("--seed", type=int, default=1000, help="chunk i is drawn with seed SEED + i")
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument("--max-driver-rows", type=int, default=400_000, help="row budget for the driver")
    rate.add_argument("--negative-rate", type=float, help="fraction of non-defaulters kept, instead")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "defaultrisk-train-large",
        help="generated data (cached), config, model and logs",
    )
    return parser.parse_args(argv)


def arrow_schema() -> pa.Schema:
    fields = [pa.field(UUID, pa.string(), nullable=False)]
    fields += [pa.field(f.name, ARROW_TYPES.get(f.kind, pa.float64())) for f in FEATURES]
    return pa.schema([*fields, pa.field(DEFAULT, pa.int64())])


def as_arrow(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """One chunk with the same column types whatever values it happens to hold (nullable integers)."""
    columns = {}
    for field in schema:
        values = frame[field.name]
        if pa.types.is_integer(field.type):
            values = values.astype("Int64")
        elif pa.types.is_boolean(field.type):
            values = values.astype("boolean")
        columns[field.name] = pa.array(values, type=field.type, from_pandas=True)
    return pa.table(columns, schema=schema)


def driver_frame_bytes(frame: pd.DataFrame) -> int:
    """Memory the chunk takes in the shape training collects (numbers as float64, text as objects)."""
    shaped = frame.copy()
    for f in FEATURES:
        if f.kind != CATEGORY:
            shaped[f.name] = pd.to_numeric(shaped[f.name].astype("float64"), errors="coerce")
    return int(shaped.memory_usage(deep=True).sum())


def generate(folder: Path, rows: int, chunk_rows: int, seed: int) -> dict:
    """The labelled table as one Parquet dataset, reused when an earlier run made the same one."""
    wanted = {"rows": rows, "chunk_rows": chunk_rows, "seed": seed}
    marker = folder / GENERATED_MARKER
    if marker.is_file():
        made = json.loads(marker.read_text())
        if {k: made.get(k) for k in wanted} == wanted:
            return {**made, "cached": True}
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*.parquet"):
        old.unlink()
    schema = arrow_schema()
    started = time.monotonic()
    defaults = 0
    driver_bytes = 0
    for i, start in enumerate(range(0, rows, chunk_rows)):
        frame, _ = make_history(min(chunk_rows, rows - start), seed=seed + i)
        defaults += int(frame[DEFAULT].sum())
        driver_bytes += driver_frame_bytes(frame)
        pq.write_table(as_arrow(frame, schema), folder / f"part-{i:05d}.parquet", compression="snappy")
        print(f"  chunk {i}: {start + len(frame):,} rows", file=sys.stderr, flush=True)
    made = {
        **wanted,
        "defaults": defaults,
        "generation_seconds": round(time.monotonic() - started, 1),
        "parquet_bytes": sum(p.stat().st_size for p in folder.glob("part-*.parquet")),
        "pandas_bytes_if_collected": driver_bytes,
    }
    marker.write_text(json.dumps(made, indent=2) + "\n")
    return {**made, "cached": False}


def spark_sampling_config(path: Path, max_driver_rows: int | None, negative_rate: float | None) -> Path:
    """The shipped conf/train.toml with only the sampling switched to Spark."""
    shipped = (REPO / "conf" / "train.toml").read_text()
    line = 'sampling = "driver"\n'
    if shipped.count(line) != 1:
        raise SystemExit(f"conf/train.toml has no single line {line.strip()!r} to switch")
    setting = (
        f"spark_negative_rate = {negative_rate!r}"
        if negative_rate
        else f"max_driver_rows = {max_driver_rows}"
    )
    path.write_text(shipped.replace(line, f'sampling = "spark"\n{setting}\n'))
    return path


def run_training(
    data: Path, config: Path, model_dir: Path, log_path: Path
) -> tuple[dict, float, MemoryWatch]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    command = [
        sys.executable,
        str(REPO / "jobs" / "train.py"),
        "--input",
        str(data),
        "--model-dir",
        str(model_dir),
        "--config",
        str(config),
    ]
    started = time.monotonic()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        watch = MemoryWatch(process, POLL_SECONDS)
        watch.start()
        out, _ = process.communicate()
        watch.join()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise SystemExit(f"training failed (exit {process.returncode}); see {log_path}")
    return json.loads(out.strip().splitlines()[-1]), seconds, watch


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"history-{args.rows}"
    print(f"generating {args.rows:,} labelled rows in {data} ...", file=sys.stderr, flush=True)
    made = generate(data, args.rows, args.chunk_rows, args.seed)
    config = spark_sampling_config(work / "train-large.toml", args.max_driver_rows, args.negative_rate)
    model_dir = work / "model"
    print(f"training (log: {work / 'train.log'}) ...", file=sys.stderr, flush=True)
    summary, seconds, watch = run_training(data, config, model_dir, work / "train.log")
    manifest = json.loads((model_dir / "manifest.json").read_text())
    sampling, holdout = manifest["sampling"], manifest["metrics"]["holdout"]
    result = {
        "rows_in": summary["input_rows"],
        "generation": made,
        "config": str(config),
        "driver_rows": sampling["driver_rows"],
        "sampling": sampling,
        "peak_rss_bytes": watch.peak_total,
        "peak_rss_by_process": dict(sorted(watch.peak_by_name.items(), key=lambda kv: -kv[1])),
        "wall_seconds": round(seconds, 1),
        "job_seconds": summary["seconds"],
        "timings": json.loads((model_dir / "report" / "metrics.json").read_text())["timings_seconds"],
        "strategy": summary["strategy"],
        "trees": summary["trees"],
        "calibration": manifest["calibration"],
        "skipped_strategies": manifest["model_selection"].get("skipped_strategies", []),
        "holdout": holdout,
        "model_version": summary["model_version"],
    }
    (work / "train-large-result.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n".join(report_lines(result, summary)))
    return 0


def report_lines(result: dict, summary: dict) -> list[str]:
    made, sampling, holdout = result["generation"], result["sampling"], result["holdout"]
    before, after = sampling["before"], sampling["after"]
    peaks = [(name, size) for name, size in result["peak_rss_by_process"].items() if size >= 0.01 * GIB]
    return [
        f"rows in                      {result['rows_in']:,} ({before['defaults']:,} defaults), Parquet "
        f"{made['parquet_bytes'] / GIB:.2f} GiB, generated in {made['generation_seconds']} s"
        + (" (cached)" if made["cached"] else ""),
        f"rows collected to the driver {result['driver_rows']:,} (all {after['defaults']:,} defaults and "
        f"{after['non_defaults']:,} non-defaults: rate {sampling['negative_rate']:.4f}, "
        f"reached {sampling['negative_sampling_rate']:.4f})",
        f"all rows as pandas would be  {made['pandas_bytes_if_collected'] / GIB:.2f} GiB, before any copy",
        f"peak RSS, whole process tree {result['peak_rss_bytes'] / GIB:.2f} GiB (at their own peaks: "
        + ", ".join(f"{name} {size / GIB:.2f}" for name, size in peaks)
        + " GiB)",
        f"wall time                    {result['wall_seconds']:.0f} s (job {result['job_seconds']:.0f} s, "
        f"of which fit {result['timings']['fit_total']:.0f} s)",
        f"model                        {summary['strategy']}, {summary['trees']} trees, "
        f"{result['calibration']['method']} calibration then the Spark rate; {summary['model_version']}",
        f"hold-out, {holdout['rows']:,} rows weighted back to the real population: "
        f"ROC AUC {holdout['roc_auc']:.4f}, PR AUC {holdout['pr_auc']:.4f}, "
        f"log loss {holdout['log_loss']:.5f}, Brier {holdout['brier']:.5f}",
        f"mean pd on the hold-out      {holdout['mean_pd']:.5f}; default rate: hold-out "
        f"{holdout['default_rate']:.5f}, whole table {sampling['observed_default_rate']:.5f}",
    ]


if __name__ == "__main__":
    sys.exit(main())
