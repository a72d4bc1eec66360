"""Throughput of the scoring job against the single-process limit and against xgboost.spark.

On the same generated snapshot, written both as Parquet and in the original CSV format (`;`-separated,
`NA` for missing, one file per generated chunk), and the same model, these variants are timed, each in
a subprocess of its own so its memory is measured alone:

- `job`: `jobs/score.py` exactly as shipped: `conf/score.toml` as committed (reason codes for the
  high-risk rows, the drift report when the model carries its reference), no results.csv. Its time is
  the run summary's `seconds` (without Spark start-up); the process's wall time and start-up apart.
- `job_no_reasons`: the same with `reason_codes = 0`; `reasons_vs_no_reasons` is the cost of the
  shipped reason codes as a ratio of the two.
- `job_challenger`: the job as shipped with one `--challenger` (the 100-tree depth-6 model of the next
  seed) scored beside the model into the shadow table; `challenger_vs_job` is its cost as a ratio. On
  Parquet only.
- `limit`: the job's work with the job's implementations, in one Python process: the raw rows read by
  pyarrow (Parquet typed; CSV with every column as text, as the job reads it), the whole input's
  duplicate uuids found first, then per batch `scoring.core.check_and_score_batch` (the entry contract,
  the matrix, `score_matrix` with the shipped reason settings), and a pyarrow write of uuid, pd,
  is_high_risk and reason_codes; XGBoost uses every core.
- `xgboost_spark`: the peer, on Parquet only (it has no reader of the CSV format's contract): a local
  SparkSession (`conf/spark-local.conf`) reading the same Parquet, category codes in Spark SQL,
  `xgboost.spark.SparkXGBClassifierModel` around the same booster, the manifest's calibration in Spark
  SQL, uuid and pd written to Parquet (timed after session start).

Each variant runs `--repeat` times (default 3), in rounds (every variant on Parquet, then the job's
variants and the limit on CSV, nothing else running between them); seconds, wall time and peak memory
are medians over the runs. Peak memory is the largest sum of resident memory over the subprocess and
all its descendants (JVM, Python workers), polled from /proc every 0.1 s; pages shared between
processes count once per process. Within each format the outputs are joined on uuid and their pd
compared with that format's limit; the CSV limit's also with the Parquet limit's. Reason codes for
every row (`reason_rows = "all"`) are timed apart: the job on the first `--reason-rows` rows (Parquet)
with and without them.

`--model deep` (default) is a 100-tree depth-6 model trained in this script; `--model default` is what
`jobs/train.py` with `conf/train.toml` as committed makes of a generated labelled table (trained once,
cached). The job's stage breakdown (`stages`) is its run summary's: seconds from the run's start to the
end of reading and the duplicate check, of scoring and writing the scores, of the rejects and counts,
of the swap, and of the drift report, which ends the run.

Generated data and the model are cached in `--work-dir` (default `bench-output/`), keyed by rows and
seed, and reused by later runs. Run from the repository root:

    export PYSPARK_PYTHON=$PWD/.venv/bin/python
    .venv/bin/python scripts/bench_score.py --rows 1000000 4000000

The tables go to stdout and the last stdout line is one JSON object: `rows`, per variant
`{seconds, rows_per_s, peak_rss_mb}` (the job's also `wall_seconds`, `startup_seconds`, `stages`),
`job_vs_limit`, `job_vs_xgboost_spark`, `reasons_vs_no_reasons`, `challenger_vs_job`, `stages`,
`max_abs_pd_diff` for Parquet; `csv` with the same keys for the original CSV format
(`job_vs_xgboost_spark`, `challenger_vs_job` null); then `reason_codes` (reasons for every row against
none), `sizes` (the same figures for each `--rows` value, so peak memory can be compared across sizes;
the top level holds the largest) and `model`.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

# The sample-data generator is not part of the installed package: it lives in the checkout's lib/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from benchlib import MemoryWatch
from sampledata.files import CSV_SEPARATOR

from defaultrisk.checks import RAW_COLUMNS, SKIPPED, duplicate_keys, present
from defaultrisk.schema import (
    CATEGORY,
    FEATURES,
    FLAG,
    IS_HIGH_RISK,
    NUMERIC,
    PD,
    REASON,
    REASON_CODES,
    UUID,
    Feature,
)

if TYPE_CHECKING:
    from pyspark.sql import Column
    from xgboost.spark import SparkXGBClassifierModel

REPO = Path(__file__).resolve().parents[1]
SCORE_JOB = REPO / "jobs" / "score.py"
SNAPSHOT_DATE = "2026-11-24"
VARIANTS = ("job", "job_no_reasons", "job_challenger", "limit", "xgboost_spark")
JOBS = ("job", "job_no_reasons", "job_challenger")
# The snapshot's formats: Parquet first (its figures are the summary's top level), then the original CSV
# format, which xgboost.spark cannot read (it has no reader of the format's contract).
FORMATS = ("parquet", "csv")
CSV_VARIANTS = ("job", "job_no_reasons", "limit")
DEFAULT_MODEL_HISTORY_ROWS = 90_000
CHUNK_ROWS = 250_000  # rows generated (and written as one file) at a time
POLL_SECONDS = 0.1
MB = 1024 * 1024

# The benchmark's model: 100 trees of depth 6 on an undersampled generated history, prior-corrected.
MODEL_HISTORY_ROWS = 100_000
MODEL_TREES = 100
MODEL_DEPTH = 6
MODEL_ETA = 0.1
NEGATIVE_SAMPLING_RATE = 0.1
HIGH_RISK_THRESHOLD = 0.1
# Rows per batch the single process reads, scores and writes (a batch never spans files); as fast as
# the whole table at once, in bounded memory.
LIMIT_BATCH_ROWS = CHUNK_ROWS


@dataclass(frozen=True)
class Run:
    """One timed run of a variant: its own seconds, the process's wall time and peak memory."""

    seconds: float
    wall_seconds: float
    peak_rss_mb: float
    stages: dict = None  # the job's stage breakdown (seconds from the run's start)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000], help="snapshot size(s), N")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant (medians are reported)")
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench-output", help="data, model, outputs")
    parser.add_argument(
        "--reason-rows", type=int, default=100_000, help="rows for timing reason codes apart; 0 skips it"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset to run")
    parser.add_argument("--seed", type=int, default=11, help="seed of the generated data and model")
    parser.add_argument(
        "--model",
        choices=("deep", "default"),
        default="deep",
        help="deep: 100 trees of depth 6; default: what jobs/train.py makes with conf/train.toml",
    )
    parser.add_argument("--keep-outputs", action="store_true", help="keep every variant's scored output")
    # What the benchmark spawns to run one variant in a process of its own.
    parser.add_argument("--run-variant", choices=("limit", "xgboost_spark"), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown or not args.variants:
        parser.error(f"--variants takes a subset of {','.join(VARIANTS)}, not {args.variants}")
    if args.repeat < 1 or min(args.rows) < 1 or args.reason_rows < 0:
        parser.error("--repeat and --rows must be at least 1, --reason-rows at least 0")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the model -------------------------------------------------------------------------------------


def ensure_model(work_dir: Path, seed: int, kind: str = "deep") -> Path:
    """The benchmark's model directory, trained once and reused."""
    from defaultrisk.model import MANIFEST_FILE

    if kind == "deep":
        model_dir = work_dir / f"model-{MODEL_TREES}trees-depth{MODEL_DEPTH}-seed{seed}"
    else:
        # Named by the product's version: another version's training may make another model.
        from defaultrisk import __version__

        name = f"model-default-training-{DEFAULT_MODEL_HISTORY_ROWS}-seed{seed}-{__version__}"
        model_dir = work_dir / name.replace("+", "_")
    if (model_dir / MANIFEST_FILE).is_file():
        print(f"model: reusing {model_dir}")
        return model_dir
    started = time.monotonic()
    if kind == "deep":
        train_model(model_dir, seed)
    else:
        train_default_model(work_dir, model_dir, seed)
    print(f"model: trained in {time.monotonic() - started:.1f} s -> {model_dir}")
    return model_dir


def train_model(model_dir: Path, seed: int) -> None:
    import xgboost as xgb
    from sampledata import make_history

    from defaultrisk.calibration import PRIOR_CORRECTION
    from defaultrisk.features import feature_matrix, xgb_feature_types
    from defaultrisk.model import save_model
    from defaultrisk.schema import DEFAULT, FEATURE_NAMES

    history, _ = make_history(MODEL_HISTORY_ROWS, seed)
    labels = history[DEFAULT].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(seed)
    keep = (labels == 1) | (rng.random(len(labels)) < NEGATIVE_SAMPLING_RATE)
    matrix = feature_matrix(history, FEATURES)
    train = xgb.DMatrix(
        matrix[keep],
        label=labels[keep],
        feature_names=list(FEATURE_NAMES),
        feature_types=xgb_feature_types(FEATURES),
        enable_categorical=True,
    )
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": MODEL_DEPTH,
        "eta": MODEL_ETA,
        "seed": seed,
    }
    booster = xgb.train(params, train, num_boost_round=MODEL_TREES)
    fields = {
        "threshold": {"value": HIGH_RISK_THRESHOLD, "rule": "fixed"},
        "calibration": {"method": PRIOR_CORRECTION, "negative_sampling_rate": NEGATIVE_SAMPLING_RATE},
        "row_counts": {"history_rows": len(labels), "training_rows": int(keep.sum())},
        "training": {"params": params, "rounds": MODEL_TREES, "source": "sampledata.make_history"},
    }
    save_model(model_dir, booster, fields)


def train_default_model(work_dir: Path, model_dir: Path, seed: int) -> None:
    """`jobs/train.py` with the committed `conf/train.toml` on a generated labelled table."""
    from sampledata import make_history, write_original_csv

    history_csv = work_dir / "data" / f"history-{DEFAULT_MODEL_HISTORY_ROWS}-seed{seed}.csv"
    if not history_csv.is_file():
        history, _ = make_history(DEFAULT_MODEL_HISTORY_ROWS, seed)
        write_original_csv(history, history_csv.with_suffix(".partial"))
        history_csv.with_suffix(".partial").rename(history_csv)
    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, str(REPO / "jobs" / "train.py"), "--input", str(history_csv)]
    command += ["--model-dir", str(partial)]
    run_measured(command, work_dir / "logs" / "train-default-model.log", cwd=REPO)
    partial.rename(model_dir)


# --- the data --------------------------------------------------------------------------------------

_ARROW_TYPES = {NUMERIC: pa.float64(), CATEGORY: pa.string(), FLAG: pa.bool_()}


def arrow_type(feature: Feature) -> pa.DataType:
    """The Parquet type of a feature, as its Spark type says (whole numbers as int64)."""
    return _ARROW_TYPES.get(feature.kind, pa.int64())


SNAPSHOT_SCHEMA = pa.schema(
    [pa.field(UUID, pa.string()), *[pa.field(f.name, arrow_type(f)) for f in FEATURES]]
)


def snapshot_table(frame: pd.DataFrame) -> pa.Table:
    """A generated snapshot frame as a typed Arrow table (missing whole numbers become nulls)."""
    columns = [pa.array(frame[UUID].to_numpy(), type=pa.string())]
    for feature in FEATURES:
        values = frame[feature.name].to_numpy()
        if arrow_type(feature) == pa.int64() and values.dtype.kind == "f":
            missing = np.isnan(values)
            values = pa.array(np.where(missing, 0, values).astype(np.int64), mask=missing)
        columns.append(pa.array(values, type=arrow_type(feature), from_pandas=True))
    return pa.Table.from_arrays(columns, schema=SNAPSHOT_SCHEMA)


def ensure_data(work_dir: Path, rows: int, seed: int) -> dict[str, Path]:
    """`rows` generated customers in each of `FORMATS`, generated once and reused: a Parquet folder and
    a folder of CSV files in the original format (`;`, `NA` for missing), one file per chunk, the
    same rows in the same order."""
    from sampledata import make_snapshot, write_original_csv

    stem = f"customers-{rows}-seed{seed}"
    paths = {fmt: work_dir / "data" / f"{stem}.{fmt}" for fmt in FORMATS}
    missing = {fmt: path for fmt, path in paths.items() if not path.is_dir()}
    for fmt, path in paths.items():
        if fmt not in missing:
            print(f"data: reusing {path}")
    if not missing:
        return paths
    started = time.monotonic()
    partials = {fmt: path.with_name(path.name + ".partial") for fmt, path in missing.items()}
    for partial in partials.values():
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
        frame, _ = make_snapshot(min(CHUNK_ROWS, rows - start), seed=seed * 100_000 + index)
        if "parquet" in partials:
            pq.write_table(snapshot_table(frame), partials["parquet"] / f"part-{index:05d}.parquet")
        if "csv" in partials:
            write_original_csv(frame, partials["csv"] / f"part-{index:05d}.csv")
    if "parquet" in partials:
        check_unique_uuids(partials["parquet"], rows)
    for fmt, partial in partials.items():
        partial.rename(missing[fmt])
        print(f"data: generated {rows:,} rows in {time.monotonic() - started:.1f} s -> {missing[fmt]}")
    return paths


def check_unique_uuids(path: Path, rows: int) -> None:
    uuids = ds.dataset(path, format="parquet").to_table(columns=[UUID])[UUID]
    distinct = pc.count_distinct(uuids).as_py()
    if len(uuids) != rows or distinct != rows:
        raise SystemExit(
            f"generated data at {path}: {len(uuids)} rows, {distinct} distinct uuids, not {rows}"
        )


def ensure_head(data: Path, rows: int) -> Path:
    """The first `rows` rows of a generated snapshot, as a Parquet file of its own."""
    path = data.with_name(f"{data.stem}-first{rows}.parquet")
    if not path.is_file():
        table = ds.dataset(data, format="parquet").head(rows)
        pq.write_table(table, path.with_name(path.name + ".partial"))
        path.with_name(path.name + ".partial").rename(path)
    return path


# --- running and measuring a process ---------------------------------------------------------------


def run_measured(command: list[str], log_path: Path, cwd: Path) -> tuple[dict, float, float]:
    """Run a command, return its last stdout line as JSON, its wall seconds and its peak tree RSS (MB)."""
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("w") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=cwd
        )
        watch = MemoryWatch(process, POLL_SECONDS)
        watch.start()
        stdout, _ = process.communicate()
    wall = time.monotonic() - started
    watch.join()
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(command)} failed (exit {process.returncode}); see {log_path}")
    return json.loads(lines[-1]), wall, watch.peak_total / MB


SHIPPED_CONFIG = REPO / "conf" / "score.toml"


def score_config(work_dir: Path, reason_codes: int, reason_rows: str) -> Path:
    """The shipped `conf/score.toml` with its reason-code settings replaced."""
    import tomllib

    shipped = tomllib.loads(SHIPPED_CONFIG.read_text())
    path = work_dir / "conf" / f"score-reason-codes-{reason_codes}-{reason_rows}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    shipped["score"] = {**shipped["score"], "reason_codes": reason_codes, "reason_rows": reason_rows}
    for section, values in shipped.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
    path.write_text("\n".join(lines) + "\n")
    return path


def job_command(
    data: Path, model_dir: Path, output: Path, config: Path, challenger: Path | None
) -> list[str]:
    return [
        sys.executable,
        str(SCORE_JOB),
        *("--input", str(data), "--model-dir", str(model_dir), "--output", str(output)),
        *("--snapshot-date", SNAPSHOT_DATE, "--config", str(config)),
        *(("--challenger", str(challenger)) if challenger else ()),
    ]


def variant_command(variant: str, data: Path, model_dir: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        *("--run-variant", variant, "--input", str(data), "--model-dir", str(model_dir)),
        *("--output", str(output)),
    ]


def run_variant(  # noqa: PLR0913 -- few call sites; the variant and its files travel together
    variant: str, data: Path, model_dir: Path, output: Path, config: dict, log_path: Path, rows: int
) -> Run:
    """One run of a variant in a process of its own; the job's stages come from its run summary."""
    shutil.rmtree(output, ignore_errors=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    if variant in JOBS:
        challenger = config["challenger"] if variant == "job_challenger" else None
        command = job_command(data, model_dir, output, config[variant], challenger)
    else:
        command = variant_command(variant, data, model_dir, output)
    summary, wall, peak = run_measured(command, log_path, cwd=output.parent)
    if variant in JOBS and (summary["scored_rows"], summary["rejected_rows"]) != (rows, 0):
        raise SystemExit(
            f"the job scored {summary['scored_rows']} and rejected {summary['rejected_rows']} of {data}"
        )
    if variant == "limit" and (summary["rows"], summary["rejected_rows"]) != (rows, 0):
        raise SystemExit(
            f"the limit scored {summary['rows']} and rejected {summary['rejected_rows']} of {data}"
        )
    stages = dict(summary["stages"]) if variant in JOBS else {}
    return Run(seconds=float(summary["seconds"]), wall_seconds=wall, peak_rss_mb=peak, stages=stages)


# --- the variants in their own processes -----------------------------------------------------------


def input_format(data: str) -> str:
    """As the job's `input_format = "auto"` reads the benchmark's data: a `.csv` file or a folder of
    them is the original CSV format, anything else Parquet."""
    path = Path(data)
    files = [f for f in path.iterdir() if f.is_file()] if path.is_dir() else [path]
    return "csv" if files and all(f.name.endswith(".csv") for f in files) else "parquet"


def read_original_csv(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One file of the original CSV format as the job reads it: every column as text, exactly as given
    (`NA` and empty fields stay text; the entry contract decides what is missing)."""
    from pyarrow import csv

    convert = csv.ConvertOptions(
        column_types={name: pa.string() for name in RAW_COLUMNS},
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        include_columns=columns,
    )
    return csv.read_csv(
        path, parse_options=csv.ParseOptions(delimiter=CSV_SEPARATOR), convert_options=convert
    )


def csv_files(data: str) -> list[Path]:
    path = Path(data)
    return sorted(path.glob("*.csv")) if path.is_dir() else [path]


def uuid_columns(data: str, fmt: str) -> Iterator[pa.Array]:
    """The input's uuid column as read, batch by batch."""
    if fmt == "parquet":
        dataset = ds.dataset(data, format="parquet")
        for batch in dataset.to_batches(columns=[UUID], batch_size=LIMIT_BATCH_ROWS):
            yield batch.column(0)
    else:
        for path in csv_files(data):
            yield read_original_csv(path, [UUID]).column(UUID).combine_chunks()


def raw_batches(data: str, fmt: str) -> Iterator[pa.RecordBatch]:
    """The input's rows as the job's scoring pass gets them (`RAW_COLUMNS`: Parquet typed, CSV as
    text, absent columns as null text), at most `LIMIT_BATCH_ROWS` a batch, a batch never spanning
    files."""
    if fmt == "parquet":
        tables = (
            pa.Table.from_batches([b])
            for b in ds.dataset(data, format="parquet").to_batches(batch_size=LIMIT_BATCH_ROWS)
        )
    else:
        tables = (read_original_csv(path).combine_chunks() for path in csv_files(data))
    for table in tables:
        absent = pa.nulls(table.num_rows, pa.string())
        columns = [table.column(c) if c in table.column_names else absent for c in RAW_COLUMNS]
        known = pa.Table.from_arrays(columns, names=list(RAW_COLUMNS))
        yield from known.to_batches(max_chunksize=LIMIT_BATCH_ROWS)


def _key_hashes(keys: pa.Array) -> np.ndarray:
    return pd.util.hash_array(keys.to_numpy(zero_copy_only=False)).view(np.int64)


def _uuid_keys(uuid: pa.Array) -> pa.Array:
    """The non-null duplicate keys of a uuid column as read (`checks.duplicate_keys` of the trimmed
    uuid, as the job's `validate.duplicate_keys` finds them)."""
    keys = duplicate_keys(present(uuid))
    return keys.drop_null() if keys.null_count else keys


def snapshot_duplicates(data: str, fmt: str) -> dict[str, int]:
    """The uuid keys held by more than one row of the whole input, with their rows, as the job finds
    them: every key counted by its 64-bit hash, then only the rare repeated hashes resolved to keys
    (a second read of the uuid column, only when a hash repeats); memory stays bounded."""
    hashes = [_key_hashes(_uuid_keys(uuid)) for uuid in uuid_columns(data, fmt)]
    hashes = np.concatenate(hashes) if hashes else np.empty(0, np.int64)
    values, counts = np.unique(hashes, return_counts=True)
    repeated = values[counts > 1]
    if not len(repeated):
        return {}
    found: Counter[str] = Counter()
    for uuid in uuid_columns(data, fmt):
        keys = _uuid_keys(uuid)
        found.update(keys.filter(pa.array(np.isin(_key_hashes(keys), repeated))).to_pylist())
    return {key: count for key, count in found.items() if count > 1}


LIMIT_OUTPUT = pa.schema(
    [
        (UUID, pa.string()),
        (PD, pa.float64()),
        (IS_HIGH_RISK, pa.bool_()),
        (REASON_CODES, pa.list_(pa.string())),
    ]
)


def score_in_one_process(data: str, model_dir: str, output: str) -> int:
    """The limit: the job's work with the job's implementations, in this process, batch by batch.

    The whole input's duplicate uuids first, then per batch of raw rows `check_and_score_batch` (the
    entry contract, the matrix, `score_matrix` with the shipped reason settings) and a pyarrow write of
    the scored rows. XGBoost uses every core.
    """
    from defaultrisk.model import load_model
    from defaultrisk.scoring.core import check_and_score_batch

    model = load_model(model_dir)
    shipped = tomllib.loads(SHIPPED_CONFIG.read_text())["score"]
    settings = (shipped["reason_codes"], shipped["reason_rows"], shipped.get("unlabeled_only", False))
    fmt = input_format(data)
    started = time.monotonic()
    duplicates = snapshot_duplicates(data, fmt)
    Path(output).mkdir(parents=True, exist_ok=True)
    rows = rejected = 0
    with pq.ParquetWriter(Path(output) / "part-00000.parquet", LIMIT_OUTPUT) as writer:
        for batch in raw_batches(data, fmt):
            outcome = pa.Table.from_batches([check_and_score_batch(batch, model, duplicates, *settings)])
            valid = outcome.column(REASON).is_null()
            scored = outcome.filter(pc.and_(valid, pc.invert(outcome.column(SKIPPED))))
            writer.write_table(scored.select(LIMIT_OUTPUT.names).cast(LIMIT_OUTPUT))
            rows += scored.num_rows
            rejected += outcome.num_rows - pc.sum(valid).as_py()
    summary = {"rows": rows, "rejected_rows": rejected, "seconds": round(time.monotonic() - started, 3)}
    print(json.dumps(summary), flush=True)
    return 0


def encoded_feature(feature: Feature) -> Column:
    """A feature as xgboost.spark reads it: a number, or a category's vocabulary index (unseen: null)."""
    from pyspark.sql import functions as F

    if feature.kind != CATEGORY:
        return F.col(feature.name).cast("double").alias(feature.name)
    position = F.array_position(F.array(*[F.lit(v) for v in feature.values]), F.col(feature.name))
    return F.when(position > 0, position - 1).cast("double").alias(feature.name)


def calibrated_pd(probability: Column, calibration: dict) -> Column:
    """The manifest's calibration as a Spark expression: prior correction, pd = b*p / (b*p - p + 1), or
    Platt scaling, pd = sigmoid(a * logit(p) + b) with p clipped as `calibration.logit` clips it."""
    from pyspark.sql import functions as F

    from defaultrisk.calibration import LOGIT_CLIP, PLATT, PRIOR_CORRECTION, SPARK_NEGATIVE_SAMPLING_RATE

    def prior(p: Column, b: float) -> Column:
        return (p * b) / (p * b - p + 1.0)

    method = calibration["method"]
    if method == PRIOR_CORRECTION:
        pd_ = prior(probability, float(calibration["negative_sampling_rate"]))
    elif method == PLATT:
        p = F.least(F.greatest(probability, F.lit(LOGIT_CLIP)), F.lit(1.0 - LOGIT_CLIP))
        z = F.lit(float(calibration["a"])) * (F.log(p) - F.log1p(-p)) + F.lit(float(calibration["b"]))
        pd_ = 1.0 / (1.0 + F.exp(-z))
    else:
        raise SystemExit(f"the benchmark's xgboost.spark variant cannot apply {method} calibration")
    if SPARK_NEGATIVE_SAMPLING_RATE in calibration:
        pd_ = prior(pd_, float(calibration[SPARK_NEGATIVE_SAMPLING_RATE]))
    return pd_


def spark_xgb_model(model_dir: str, nthread: int) -> SparkXGBClassifierModel:
    """xgboost.spark's model around the booster of `model_dir`, reading the features as named columns."""
    from xgboost import XGBClassifier
    from xgboost.spark import SparkXGBClassifierModel

    from defaultrisk.model import MODEL_FILE
    from defaultrisk.schema import FEATURE_NAMES

    classifier = XGBClassifier()
    classifier.load_model(str(Path(model_dir) / MODEL_FILE))
    classifier.get_booster().set_param({"nthread": nthread})  # as the job: one thread per task slot
    model = SparkXGBClassifierModel(classifier)
    # A model built this way (not by fit or load) lacks the device default its transform reads.
    model.set(model.device, "cpu")
    model.set(model.features_cols, list(FEATURE_NAMES))
    return model


def score_with_xgboost_spark(data: str, model_dir: str, output: str) -> int:
    """The peer: a local session, SQL category codes, SparkXGBClassifierModel.transform, SQL calibration."""
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    from defaultrisk.model import read_checked_model
    from defaultrisk.session import build_session

    _, manifest = read_checked_model(model_dir)
    spark = build_session("bench-xgboost-spark")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        started = time.monotonic()
        model = spark_xgb_model(model_dir, int(spark.conf.get("spark.task.cpus", "1")))
        features = spark.read.parquet(data).select(F.col(UUID), *[encoded_feature(f) for f in FEATURES])
        probability = vector_to_array(F.col(model.getProbabilityCol()))[1]
        scored = model.transform(features).select(
            F.col(UUID), calibrated_pd(probability, manifest["calibration"]).alias(PD)
        )
        scored.write.mode("overwrite").parquet(output)
        seconds = time.monotonic() - started
    finally:
        spark.stop()
    print(json.dumps({"seconds": round(seconds, 3)}), flush=True)
    return 0


# --- comparing the outputs -------------------------------------------------------------------------


def output_pds(variant: str, output: Path) -> pa.Table:
    path = output / f"snapshot_date={SNAPSHOT_DATE}" if variant in JOBS else output
    return ds.dataset(path, format="parquet").to_table(columns=[UUID, PD])


def max_pd_difference(output: tuple[str, Path], reference: tuple[str, Path], rows: int) -> float:
    """The largest |pd - reference pd| over the two outputs' rows joined on uuid (variant, folder)."""
    ref = output_pds(*reference).rename_columns([UUID, "reference_pd"])
    joined = output_pds(*output).join(ref, UUID, join_type="inner")
    if joined.num_rows != rows:
        raise SystemExit(f"{output[1]} and {reference[1]} share {joined.num_rows} uuids, not {rows}")
    return float(np.abs(joined[PD].to_numpy() - joined["reference_pd"].to_numpy()).max())


def pd_differences(outputs: dict[tuple[str, str], Path], rows: int) -> dict[str, dict[str, float]]:
    """Per format, each variant's largest pd difference from that format's limit (or, without one,
    its first variant); the CSV limit also against the Parquet limit: the same rows read either way."""
    differences: dict[str, dict[str, float]] = {}
    for fmt in FORMATS:
        variants = [v for f, v in outputs if f == fmt]
        if not variants:
            continue
        reference = "limit" if "limit" in variants else variants[0]
        ref = (reference, outputs[fmt, reference])
        differences[fmt] = {
            f"{variant}_vs_{reference}": max_pd_difference((variant, outputs[fmt, variant]), ref, rows)
            for variant in variants
            if variant != reference
        }
    if ("csv", "limit") in outputs and ("parquet", "limit") in outputs:
        parquet_limit = ("limit", outputs["parquet", "limit"])
        differences["csv"]["limit_vs_parquet_limit"] = max_pd_difference(
            ("limit", outputs["csv", "limit"]), parquet_limit, rows
        )
    return differences


# --- the benchmark ---------------------------------------------------------------------------------


def planned_runs(variants: tuple[str, ...]) -> list[tuple[str, str]]:
    """One round: every chosen variant on Parquet, then those that read the original CSV format on it."""
    return [(fmt, v) for fmt in FORMATS for v in variants if fmt == "parquet" or v in CSV_VARIANTS]


def bench_size(
    args: argparse.Namespace, data: dict[str, Path], rows: int, model_dir: Path, config: dict
) -> dict:
    """Time every chosen variant on `rows` customers in each format; the figures for one size (Parquet
    at the top level, the original CSV format under `csv`)."""
    runs_dir = args.work_dir / "runs" / str(rows)
    planned = planned_runs(args.variants)
    outputs = {(fmt, variant): runs_dir / fmt / variant for fmt, variant in planned}
    runs: dict[tuple[str, str], list[Run]] = {key: [] for key in planned}
    for attempt in range(1, args.repeat + 1):
        for fmt, variant in planned:
            log_path = args.work_dir / "logs" / f"{rows}-{fmt}-{variant}-{attempt}.log"
            run = run_variant(variant, data[fmt], model_dir, outputs[fmt, variant], config, log_path, rows)
            runs[fmt, variant].append(run)
            log(f"{rows:,} rows, run {attempt}/{args.repeat}, {fmt} {variant}: {run.seconds:.2f} s")
    differences = pd_differences(outputs, rows) if len(outputs) > 1 else {}
    by_format = {
        fmt: figures(rows, {v: r for (f, v), r in runs.items() if f == fmt}, differences.get(fmt, {}))
        for fmt in FORMATS
    }
    return {**by_format["parquet"], "csv": by_format["csv"] if "csv" in {f for f, _ in planned} else None}


def median_run(runs: list[Run]) -> Run:
    """Medians of the runs; the stages are those of the run with the median seconds."""
    middle = sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]
    return Run(
        seconds=statistics.median(r.seconds for r in runs),
        wall_seconds=statistics.median(r.wall_seconds for r in runs),
        peak_rss_mb=statistics.median(r.peak_rss_mb for r in runs),
        stages=middle.stages,
    )


def variant_figures(rows: int, run: Run, variant: str) -> dict:
    seconds = round(run.seconds, 3)
    result = {
        "seconds": seconds,
        "rows_per_s": round(rows / seconds, 1),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
    }
    if variant in JOBS:
        result["wall_seconds"] = round(run.wall_seconds, 3)
        result["startup_seconds"] = round(run.wall_seconds - run.seconds, 3)
        result["stages"] = run.stages
    return result


def ratio(numerator: dict | None, denominator: dict | None) -> float | None:
    if numerator is None or denominator is None:
        return None
    return round(numerator["seconds"] / denominator["seconds"], 3)


def figures(rows: int, runs: dict[str, list[Run]], differences: dict[str, float]) -> dict:
    result: dict = {"rows": rows}
    walls = {}
    for variant, variant_runs in runs.items():
        median = median_run(variant_runs)
        result[variant] = variant_figures(rows, median, variant)
        walls[variant] = round(median.wall_seconds, 3)
    result["job_vs_limit"] = ratio(result.get("job"), result.get("limit"))
    result["job_vs_xgboost_spark"] = ratio(result.get("xgboost_spark"), result.get("job"))
    result["reasons_vs_no_reasons"] = ratio(result.get("job"), result.get("job_no_reasons"))
    result["challenger_vs_job"] = ratio(result.get("job_challenger"), result.get("job"))
    result["stages"] = (result.get("job") or {}).get("stages")
    result["max_abs_pd_diff"] = max(differences.values()) if differences else None
    result["_differences"], result["_walls"] = differences, walls
    return result


def bench_reason_codes(args: argparse.Namespace, data: Path, model_dir: Path) -> dict:
    """The job on the first `--reason-rows` rows, with and without reason codes: their extra cost."""
    rows = min(args.reason_rows, ds.dataset(data, format="parquet").count_rows())
    head = ensure_head(data, rows)
    seconds = {}
    for count in (3, 0):
        output = args.work_dir / "runs" / f"reason-codes-{count}"
        log_path = args.work_dir / "logs" / f"reason-codes-{count}.log"
        config = {"job": score_config(args.work_dir, count, "all")}
        seconds[count] = run_variant("job", head, model_dir, output, config, log_path, rows).seconds
        log(f"{rows:,} rows, job with reason_codes = {count}: {seconds[count]:.2f} s")
    extra = (seconds[3] - seconds[0]) / rows * 1000.0
    return {
        "rows": rows,
        "seconds_with": seconds[3],
        "seconds_without": seconds[0],
        "with_vs_without": round(seconds[3] / seconds[0], 3),
        "extra_ms_per_row": round(extra, 4),
    }


TABLE_COLUMNS = ("variant", "seconds", "rows/s", "vs limit", "peak RSS MB", "wall s", "start-up s")
TABLE_ROW = "{:<16}{:>9}{:>11}{:>10}{:>13}{:>9}{:>12}"


def print_table(result: dict, fmt: str) -> None:
    """One line per variant; start-up is the process's wall time minus the variant's own seconds."""
    limit = result.get("limit")
    print(f"\n{result['rows']:,} rows, {fmt}")
    print(TABLE_ROW.format(*TABLE_COLUMNS))
    for variant in VARIANTS:
        row = result.get(variant)
        if row is None:
            continue
        wall = result["_walls"][variant]
        print(
            TABLE_ROW.format(
                variant,
                f"{row['seconds']:.2f}",
                f"{row['rows_per_s']:,.0f}",
                f"{row['seconds'] / limit['seconds']:.2f}x" if limit else "-",
                f"{row['peak_rss_mb']:,.0f}",
                f"{wall:.2f}",
                f"{wall - row['seconds']:.2f}",
            )
        )
    for name, value in result["_differences"].items():
        print(f"max |pd difference| {name.replace('_vs_', ' vs ')}: {value:.3g}")
    if result.get("reasons_vs_no_reasons"):
        print(f"job with the shipped reason codes / without: {result['reasons_vs_no_reasons']:.2f}x")
    if result.get("challenger_vs_job"):
        print(f"job with one challenger / without: {result['challenger_vs_job']:.2f}x")
    for variant in JOBS:
        stages = (result.get(variant) or {}).get("stages") or {}
        ends = ", ".join(f"{name} {seconds:.1f}" for name, seconds in stages.items())
        if ends:
            print(f"{variant} stages (seconds from the run's start to each end): {ends}")


def print_reason_codes(reasons: dict) -> None:
    print(
        f"\nreason codes for every row on {reasons['rows']:,} rows: "
        f"job {reasons['seconds_with']:.2f} s with 3, "
        f"{reasons['seconds_without']:.2f} s without: {reasons['extra_ms_per_row']:.3f} ms extra per row"
    )


def public(result: dict) -> dict:
    """The figures without the table's own keys (`_differences`, `_walls`), the CSV figures too."""
    figures_ = {k: v for k, v in result.items() if not k.startswith("_")}
    if isinstance(figures_.get("csv"), dict):
        figures_["csv"] = public(figures_["csv"])
    return figures_


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_variant == "limit":
        return score_in_one_process(args.input, args.model_dir, args.output)
    if args.run_variant == "xgboost_spark":
        return score_with_xgboost_spark(args.input, args.model_dir, args.output)
    args.work_dir = args.work_dir.resolve()
    model_dir = ensure_model(args.work_dir, args.seed, args.model)
    config = {
        "job": SHIPPED_CONFIG,
        "job_no_reasons": score_config(args.work_dir, 0, "high_risk"),
        "job_challenger": SHIPPED_CONFIG,
        # The challenger scored beside the model: the deep model of the next seed (another model).
        "challenger": ensure_model(args.work_dir, args.seed + 1, "deep")
        if "job_challenger" in args.variants
        else None,
    }
    data = {rows: ensure_data(args.work_dir, rows, args.seed) for rows in sorted(set(args.rows))}
    sizes = [bench_size(args, paths, rows, model_dir, config) for rows, paths in data.items()]
    for result in sizes:
        print_table(result, "Parquet")
        if result["csv"]:
            print_table(result["csv"], "CSV (the original format)")
    summary = public(sizes[-1])
    summary["model"] = {"kind": args.model, "dir": str(model_dir)}
    summary["reason_codes"] = None
    if args.reason_rows:
        summary["reason_codes"] = bench_reason_codes(args, data[max(data)]["parquet"], model_dir)
        print_reason_codes(summary["reason_codes"])
    summary["sizes"] = [public(result) for result in sizes]
    if not args.keep_outputs:
        shutil.rmtree(args.work_dir / "runs", ignore_errors=True)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
