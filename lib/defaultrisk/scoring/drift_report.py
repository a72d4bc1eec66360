"""Each scored date's drift report: PSI of every feature and of pd against the model's training rows.

Written after the swap to `OUTPUT/_drift/snapshot_date=YYYY-MM-DD/` as `drift.json`, `drift.parquet`
and `top_movers.png`; the run summary carries its few headline numbers.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk.drift import (
    ACT,
    ACT_ABOVE,
    BANDS,
    NO_ROWS,
    SHARE_FLOOR,
    STABLE,
    STABLE_BELOW,
    WATCH,
    bin_counts,
    drift_table,
    over_limit,
)
from defaultrisk.fs import publish_folder
from defaultrisk.jsondata import plain
from defaultrisk.schema import DEFAULT, FEATURE_NAMES, MODEL_VERSION, PD, SNAPSHOT_DATE
from defaultrisk.scoring.config import ScoreConfig
from defaultrisk.scoring.staging import partition_path
from defaultrisk.validate import validate

log = logging.getLogger(__name__)

DRIFT_DIR = "_drift"  # <table root>/_drift/snapshot_date=.../: drift.json, drift.parquet, top_movers.png
DRIFT_SAMPLE_ROWS = 200_000  # plenty for PSI over ten-odd bins; bounds the drift pass on big snapshots
DRIFT_SEED = 17


def summarize(table: pd.DataFrame, limit: float | None) -> dict:
    """The few numbers a run summary carries: largest PSI, pd's PSI, columns per band, over the limit."""
    known = table[~table["psi"].isna()]
    top = known.iloc[0] if len(known) else None
    pd_rows = table[table["feature"] == PD]
    return plain(
        {
            "max_psi": float(top["psi"]) if top is not None else None,
            "max_psi_feature": str(top["feature"]) if top is not None else None,
            "pd_psi": float(pd_rows["psi"].iloc[0]) if len(pd_rows) else None,
            "bands": {name: int((table["band"] == name).sum()) for name in BANDS},
            "limit": limit,
            "over_limit": over_limit(table, limit),
        }
    )


def limit_warning(summary: dict, snapshot_date: date) -> str | None:
    """The warning line for a run whose drift is over the limit; None when it is not."""
    if not summary["over_limit"]:
        return None
    return (
        f"population drift on {snapshot_date.isoformat()}: PSI above the limit {summary['limit']:g} for "
        f"{', '.join(summary['over_limit'])} (report in {summary['report']}); the scores are written"
    )


def _replace(path: Path, write) -> None:
    """Write next to `path`, then rename over it: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def plot_top_movers(path: Path, snapshot_date: date, table: pd.DataFrame, limit: float | None) -> None:
    """Horizontal bars of the columns with the largest PSI, the band lines and the limit marked."""
    # Imported here: the Spark workers import this module to count bins and never draw.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = table[~table["psi"].isna()].head(TOP_MOVERS).iloc[::-1]
    figure = Figure(figsize=(8.5, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    names = [f"{f} (score)" if f == PD else str(f) for f in shown["feature"]]
    values = shown["psi"].to_numpy(dtype=np.float64)
    ax.barh(names, values, color=[BAND_COLOURS[b] for b in shown["band"]])
    top = max([ACT_ABOVE, limit or 0.0, *values.tolist()]) * 1.18
    for y, value in enumerate(values):
        ax.annotate(f"{value:.3f}", (value, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.axvline(STABLE_BELOW, color=BAND_COLOURS[WATCH], linestyle="--", linewidth=1, label="0.1: watch")
    if limit != ACT_ABOVE:
        ax.axvline(ACT_ABOVE, color=BAND_COLOURS[ACT], linestyle="--", linewidth=1, label="0.25: act")
    if limit is not None:
        same = " (act)" if limit == ACT_ABOVE else ""
        ax.axvline(limit, color="black", linewidth=1.5, label=f"{limit:g}: the limit{same}")
    ax.set(
        title=f"Population drift on {snapshot_date.isoformat()}: top {len(shown)} of {len(table)} by PSI",
        xlabel="PSI against the training population (green stable, orange watch, red act)",
        xlim=(0, top),
    )
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(loc="lower right", fontsize="small")
    _replace(path, lambda p: figure.savefig(p, format="png", metadata={"Software": None}))


def write_drift_report(
    directory: Path,
    snapshot_date: date,
    table: pd.DataFrame,
    limit: float | None,
    model_version: str | None = None,
) -> dict:
    """Write `drift.json`, `drift.parquet` and `top_movers.png` into `directory`; return the summary.

    The summary (for the job's run summary) holds `max_psi`, `max_psi_feature`, `pd_psi`, the number
    of columns per band, the `limit`, the columns `over_limit` and the `report` directory.
    `model_version` names the model whose training rows are the reference.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = {**summarize(table, limit), "report": str(directory)}
    document = {
        "snapshot_date": snapshot_date.isoformat(),
        "model_version": model_version,
        "limit": limit,
        "over_limit": summary["over_limit"],
        "bands": summary["bands"],
        "share_floor": SHARE_FLOOR,
        "columns": plain(table.to_dict(orient="records")),
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    _replace(directory / DRIFT_JSON, lambda p: p.write_text(text, encoding="utf-8"))
    frame = table.assign(**{MODEL_VERSION: model_version, SNAPSHOT_DATE: snapshot_date})
    _replace(directory / DRIFT_PARQUET, lambda p: frame.to_parquet(p, index=False))
    plot_top_movers(directory / TOP_MOVERS_PNG, snapshot_date, table, limit)
    return summary


DRIFT_JSON = "drift.json"


DRIFT_PARQUET = "drift.parquet"


TOP_MOVERS_PNG = "top_movers.png"


TOP_MOVERS = 10


BAND_COLOURS = {STABLE: "tab:green", WATCH: "tab:orange", ACT: "tab:red", NO_ROWS: "tab:gray"}


def drift_report(
    cfg: ScoreConfig,
    manifest: dict,
    known: DataFrame,
    scored_path: str,
    input_rows: int,
) -> dict | None:
    """PSI of each feature and of pd against the model's training rows, written beside the table.

    The features are those of every row received (`known`, as read; a value that fails its check
    counts as missing; a skipped labelled row does not count), typed by the entry contract on a
    seeded sample of at most DRIFT_SAMPLE_ROWS rows; pd is that of every scored row. Drift never
    fails a run: a report that cannot be made is logged and the scores are written all the same.
    """
    profile = manifest.get("drift_reference")
    if not cfg.drift:
        return None
    if profile is None:
        log.warning("model %s carries no drift reference: no drift report", manifest["model_version"])
        return None
    started = time.monotonic()
    spark = known.sparkSession
    try:
        if input_rows > DRIFT_SAMPLE_ROWS:
            known = known.sample(fraction=DRIFT_SAMPLE_ROWS / input_rows, seed=DRIFT_SEED)
        rows = validate(known, labelled=cfg.unlabeled_only, duplicates={}, keep_raw=False)
        if cfg.unlabeled_only:
            rows = rows.filter(F.col(DEFAULT).isNull())
        counts = bin_counts(rows.select(*FEATURE_NAMES), profile, columns=FEATURE_NAMES)
        scored = spark.read.schema(f"{PD} double").parquet(scored_path)
        counts |= bin_counts(scored, profile, columns=[PD])
        table = drift_table(profile, counts)
        target = partition_path(f"{cfg.output_dir.rstrip('/')}/{DRIFT_DIR}", cfg.snapshot_date)
        # On a handful of rows PSI is sampling noise: the report is written, the limit not applied.
        limit = cfg.psi_limit if input_rows >= cfg.drift_min_rows else None
        with tempfile.TemporaryDirectory(prefix="drift-") as local:
            summary = write_drift_report(
                Path(local), cfg.snapshot_date, table, limit, manifest["model_version"]
            )
            publish_folder(spark, local, target)
        summary["report"] = target
    except Exception as exc:  # the scores matter more than their drift report
        log.warning("no drift report for %s: %s", cfg.snapshot_date, exc)
        return {"error": str(exc)}
    log.info(
        "drift report in %.1fs: max PSI %s (%s)",
        time.monotonic() - started,
        summary["max_psi"],
        summary["max_psi_feature"],
    )
    warning = limit_warning(summary, cfg.snapshot_date)
    if warning:
        log.warning(warning)
    return summary
