"""Population drift: how far tonight's customers and scores have moved from the training population.

At training time `reference_profile` bins every feature and the pd on the training rows and keeps the
bins and each bin's share (a small JSON document for the model's manifest). At scoring time
`bin_counts` counts the snapshot's rows into the same bins in one Spark job, `drift_table` turns the
counts into the population stability index (PSI) of each column, and `write_drift_report` writes it
as JSON, Parquet and a chart of the top movers.

PSI = sum over bins of (actual share - reference share) * ln(actual share / reference share); both
shares are floored at `SHARE_FLOOR` so that an empty bin counts as a large but finite move.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame

from defaultrisk.schema import CATEGORY, FEATURES, FLAG, MODEL_VERSION, PD, SNAPSHOT_DATE

PROFILE_FORMAT = 1
QUANTILE_BINS = 10  # deciles of the reference, before small bins are merged
# A bin of fewer than 0.1% of the reference rows is merged into a neighbour: its reference share rests
# on too few rows to compare with. Rare tails (the 0.2% of customers with days in debt collection)
# keep a bin of their own, so a tail that grows shows up.
MIN_BIN_SHARE = 0.001
# 0.01% of rows. An empty bin would make ln(a/e) infinite; with this floor a bin that empties (or
# appears from nothing) still weighs in strongly (1% of rows appearing adds 0.01 * ln(100) = 0.046),
# while one stray row among ten thousand adds nothing.
SHARE_FLOOR = 1e-4
STABLE_BELOW = 0.1
ACT_ABOVE = 0.25
STABLE, WATCH, ACT, NO_ROWS = "stable", "watch", "act", "no rows"
BANDS = (STABLE, WATCH, ACT)

SCORE = "score"  # the kind of the pd column in a profile
MISSING, OTHER = "missing", "other"
FLAG_VALUES = (False, True)

DRIFT_JSON = "drift.json"
DRIFT_PARQUET = "drift.parquet"
TOP_MOVERS_PNG = "top_movers.png"
TOP_MOVERS = 10
BAND_COLOURS = {STABLE: "tab:green", WATCH: "tab:orange", ACT: "tab:red", NO_ROWS: "tab:gray"}

TABLE_COLUMNS = (
    "feature",
    "kind",
    "psi",
    "band",
    "rows",
    "reference_rows",
    "moved_bin",
    "moved_bin_reference_share",
    "moved_bin_share",
    "missing_reference_share",
    "missing_share",
    "bins",
)


# ---------------------------------------------------------------------------------------------------
# Training time: the reference profile (pandas/numpy only)


def reference_profile(
    pdf: pd.DataFrame,
    pds: np.ndarray,
    weights: np.ndarray | None = None,
    pd_weights: np.ndarray | None = None,
) -> dict:
    """The bins and reference shares of every feature and of pd, as plain JSON-ready data.

    `pdf` holds the features as `features.model_input(...).toPandas()` gives them (numbers as float64
    with NaN for missing, categories as text or None). `pds` is the model's pd on reference rows: they
    need not be `pdf`'s rows, since each column is profiled on its own (the hold-out's pd, scored out of
    sample like a snapshot, is the honest reference). `weights`/`pd_weights` weigh the rows of `pdf`/
    `pds` when the training rows are not the population as drawn (e.g. thinned non-defaulters).

    Numbers (numeric, count, code): cuts at the reference's deciles, deduplicated, bins under 0.1% of
    rows merged into a neighbour, plus a `missing` bin. Categories: one bin per vocabulary value,
    `other` (outside the vocabulary) and `missing`. Flags: `false`, `true`, `missing`.
    """
    columns = {}
    for feature in FEATURES:
        if feature.name not in pdf.columns:
            raise ValueError(f"the reference rows lack the feature column {feature.name!r}")
        columns[feature.name] = _profile_column(feature.kind, pdf[feature.name], feature.values, weights)
    columns[PD] = _profile_column(SCORE, pd.Series(np.asarray(pds, dtype=np.float64)), (), pd_weights)
    return {
        "format_version": PROFILE_FORMAT,
        "quantile_bins": QUANTILE_BINS,
        "min_bin_share": MIN_BIN_SHARE,
        "columns": columns,
    }


def _weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f"weights must be {n} finite non-negative numbers")
    return weights


def _profile_column(kind: str, column: pd.Series, vocabulary: tuple, weights: np.ndarray | None) -> dict:
    w = _weights(weights, len(column))
    total = float(w.sum())
    if kind == CATEGORY:
        spec = {"kind": kind, "values": list(vocabulary)}
    elif kind == FLAG:
        spec = {"kind": kind, "values": list(FLAG_VALUES)}
    else:
        values = _numbers(column)
        present = ~np.isnan(values)
        spec = {"kind": kind, "edges": _edges(values[present], w[present], total)}
    sums = np.bincount(bin_index(spec, column), weights=w, minlength=_bin_count(spec))
    shares = sums / total if total > 0 else np.zeros(len(sums))
    return {**spec, "rows": len(column), "shares": [float(s) for s in shares]}


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)


def _bin_count(spec: dict) -> int:
    if spec["kind"] == CATEGORY:
        return len(spec["values"]) + 2  # the values, other, missing
    if spec["kind"] == FLAG:
        return 3  # false, true, missing
    return len(spec["edges"]) + 2  # one more bin than cuts, missing


def bin_index(spec: dict, column: pd.Series) -> np.ndarray:
    """Each row's bin in one profile column (the order of `bin_labels`); missing is the last bin.

    The one binning rule, for the reference rows and for every snapshot batch alike. Numbers: bin i
    holds edges[i-1] < x <= edges[i]; NaN and null are missing. Categories: the vocabulary's index,
    `other` for any other text, as `features.feature_matrix` sees them.
    """
    size = _bin_count(spec)
    if spec["kind"] == CATEGORY:
        codes = pd.Categorical(column, categories=spec["values"]).codes.astype(np.int64)
        known = np.where(codes < 0, size - 2, codes)
        return np.where(column.isna().to_numpy(), size - 1, known)
    values = _numbers(column)
    if spec["kind"] == FLAG:
        found = (values != 0.0).astype(np.int64)
    else:
        found = np.searchsorted(np.asarray(spec["edges"], dtype=np.float64), values, side="left")
    return np.where(np.isnan(values), size - 1, found)


def _edges(values: np.ndarray, weights: np.ndarray, total: float) -> list[float]:
    """Cuts between bins, ascending: bin i holds edges[i-1] < x <= edges[i] (right-closed).

    Cuts are reference values at the deciles (inverted CDF), so a value tied at a cut (all the zeros of
    a count) falls in one bin with no empty bins beside it; a cut at the maximum is dropped. Then the
    smallest bin under `MIN_BIN_SHARE` of all reference rows is merged into its smaller neighbour,
    until none is left.
    """
    if len(values) == 0:
        return []
    order = np.argsort(values, kind="stable")
    ordered, cumulative = values[order], np.cumsum(weights[order])
    if cumulative[-1] <= 0:
        return []
    # Decile k is the first value whose cumulative weight reaches k/QUANTILE_BINS of the whole, compared
    # in whole numbers when the weights are (no 0.3 * 10 = 3.0000000000000004 off-by-one).
    levels = np.arange(1, QUANTILE_BINS) * cumulative[-1]
    at = np.minimum(np.searchsorted(cumulative * QUANTILE_BINS, levels, side="left"), len(ordered) - 1)
    cuts = [float(c) for c in np.unique(ordered[at]) if c < ordered[-1]]
    sums = list(np.bincount(np.searchsorted(np.asarray(cuts), ordered, side="left"), weights=weights[order]))
    sums += [0.0] * (len(cuts) + 1 - len(sums))
    least = MIN_BIN_SHARE * total
    while cuts and min(sums) < least:
        i = int(np.argmin(sums))
        if i == 0:
            cut = 0
        elif i == len(sums) - 1:
            cut = i - 1
        else:
            cut = i - 1 if sums[i - 1] <= sums[i + 1] else i
        # Removing cut k joins bins k and k + 1.
        sums[cut : cut + 2] = [sums[cut] + sums[cut + 1]]
        del cuts[cut]
    return cuts


def bin_labels(spec: dict) -> list[str]:
    """Readable names of a profile column's bins, in the order of its shares and counts."""
    if "values" in spec:
        labels = [str(v).lower() if spec["kind"] == FLAG else str(v) for v in spec["values"]]
        return [*labels, MISSING] if spec["kind"] == FLAG else [*labels, OTHER, MISSING]
    edges = spec["edges"]
    if not edges:
        return ["any value", MISSING]
    inner = [f"({_number(low)}, {_number(high)}]" for low, high in itertools.pairwise(edges)]
    return [f"<= {_number(edges[0])}", *inner, f"> {_number(edges[-1])}", MISSING]


def _number(value: float) -> str:
    return f"{value:.6g}"


# ---------------------------------------------------------------------------------------------------
# Scoring time: counts per bin (Spark, one job)


def _columns(profile: dict) -> dict:
    """The profile's columns, once its format is known to be this module's."""
    found = profile.get("format_version")
    if found != PROFILE_FORMAT:
        raise ValueError(f"drift profile format {found!r}; this version reads format {PROFILE_FORMAT}")
    return profile["columns"]


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def bin_counts(df: DataFrame, profile: dict, columns: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Rows of `df` per bin of every profile column (or only of `columns`), in one Spark job.

    `df` holds the columns as `validate.valid_rows` types them (numbers as double or long, flags as
    boolean, categories as text) and `pd` as double. Every row lands in exactly one bin per column:
    null (and NaN) in `missing`, a category outside the vocabulary in `other`.

    The columns go to Python as Arrow batches (numbers and flags as doubles, categories as text) and
    each task bins them with `bin_index`, the rule that made the reference shares, and returns one
    small array of counts: no shuffle, a few hundred numbers per task back to the driver. (The same
    counts as SQL `CASE` expressions compile to one method too large for the JVM to optimise, and
    run slower on a million rows.)
    """
    specs = _columns(profile)
    names = list(specs) if columns is None else list(columns)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"not in the drift profile: {', '.join(unknown)}")
    present = set(df.columns)
    absent = [n for n in names if n not in present]
    if absent:
        raise ValueError(f"the rows lack the profiled columns {', '.join(absent)}")
    layout = [specs[n] for n in names]
    sizes = [_bin_count(spec) for spec in layout]
    starts = np.cumsum([0, *sizes]).tolist()

    def count_batches(batches):
        totals = np.zeros(starts[-1], dtype=np.int64)
        for batch in batches:
            for j, spec in enumerate(layout):
                index = bin_index(spec, batch.column(j).to_pandas())
                totals[starts[j] : starts[j + 1]] += np.bincount(index, minlength=sizes[j])
        yield pa.RecordBatch.from_arrays([pa.array([totals], type=pa.list_(pa.int64()))], names=["counts"])

    inputs = [
        f"CAST({_q(n)} AS STRING) AS {_q(n)}"
        if specs[n]["kind"] == CATEGORY
        else f"CAST({_q(n)} AS DOUBLE) AS {_q(n)}"
        for n in names
    ]
    totals = np.zeros(starts[-1], dtype=np.int64)
    for row in df.selectExpr(*inputs).mapInArrow(count_batches, "counts array<bigint>").collect():
        totals += np.asarray(row[0], dtype=np.int64)
    return {name: [int(c) for c in totals[starts[j] : starts[j + 1]]] for j, name in enumerate(names)}


# ---------------------------------------------------------------------------------------------------
# PSI, bands and the drift table


def _shares(counts: Sequence[float]) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), np.nan)


def _contributions(reference: np.ndarray, actual: np.ndarray, floor: float) -> np.ndarray:
    e = np.maximum(reference, floor)
    a = np.maximum(actual, floor)
    return (a - e) * np.log(a / e)


def psi(reference_shares: Sequence[float], counts: Sequence[int], floor: float = SHARE_FLOOR) -> float:
    """Population stability index of `counts` against `reference_shares` (same bins, same order).

    Shares below `floor` (an empty bin) are raised to it on both sides, so the index stays finite. NaN
    when there are no rows to compare.
    """
    if len(reference_shares) != len(counts):
        raise ValueError(f"{len(reference_shares)} reference bins but {len(counts)} counts")
    if floor <= 0:
        raise ValueError(f"the floor must be positive, got {floor}")
    actual = _shares(counts)
    if np.isnan(actual).any():
        return math.nan
    return float(_contributions(np.asarray(reference_shares, dtype=np.float64), actual, floor).sum())


def band(value: float) -> str:
    """`stable` below 0.1, `watch` from 0.1 to 0.25, `act` above 0.25 (`no rows` for NaN)."""
    if math.isnan(value):
        return NO_ROWS
    if value < STABLE_BELOW:
        return STABLE
    return WATCH if value <= ACT_ABOVE else ACT


def drift_table(profile: dict, counts: dict[str, Sequence[int]]) -> pd.DataFrame:
    """One row per counted column (the features, then `pd`), largest PSI first.

    Besides PSI and its band: the rows counted, the bin that moved most (largest share of the PSI)
    with its reference and actual share, the missing shares, and `bins`, every bin's shares.
    """
    specs = _columns(profile)
    unknown = [n for n in counts if n not in specs]
    if unknown:
        raise ValueError(f"not in the drift profile: {', '.join(unknown)}")
    records = []
    for name, spec in specs.items():
        if name not in counts:
            continue
        reference = np.asarray(spec["shares"], dtype=np.float64)
        value = psi(reference, counts[name])
        actual = _shares(counts[name])
        labels = bin_labels(spec)
        moved = None if math.isnan(value) else int(np.argmax(_contributions(reference, actual, SHARE_FLOOR)))
        records.append(
            {
                "feature": name,
                "kind": spec["kind"],
                "psi": value,
                "band": band(value),
                "rows": int(sum(counts[name])),
                "reference_rows": int(spec["rows"]),
                "moved_bin": labels[moved] if moved is not None else None,
                "moved_bin_reference_share": float(reference[moved]) if moved is not None else math.nan,
                "moved_bin_share": float(actual[moved]) if moved is not None else math.nan,
                "missing_reference_share": float(reference[-1]),
                "missing_share": float(actual[-1]),
                "bins": [
                    {"bin": label, "reference_share": float(e), "share": float(a)}
                    for label, e, a in zip(labels, reference, actual, strict=True)
                ],
            }
        )
    table = pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))
    if table.empty:
        return table
    # Largest PSI first; ties and NaN (no rows) keep the profile's order, NaN last.
    values = table["psi"].tolist()
    order = sorted(range(len(values)), key=lambda i: (math.isnan(values[i]), -np.nan_to_num(values[i])))
    return table.iloc[order].reset_index(drop=True)


def over_limit(table: pd.DataFrame, limit: float | None) -> list[str]:
    """The columns (features and `pd`) whose PSI is above `limit`, largest first; none without a limit."""
    if limit is None:
        return []
    return [str(name) for name, value in zip(table["feature"], table["psi"], strict=True) if value > limit]


# ---------------------------------------------------------------------------------------------------
# The report


def _plain(value):
    """JSON-ready: numpy scalars as Python numbers, NaN as null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summarize(table: pd.DataFrame, limit: float | None) -> dict:
    """The few numbers a run summary carries: largest PSI, pd's PSI, columns per band, over the limit."""
    known = table[~table["psi"].isna()]
    top = known.iloc[0] if len(known) else None
    pd_rows = table[table["feature"] == PD]
    return _plain(
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
        "columns": _plain(table.to_dict(orient="records")),
    }
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    _replace(directory / DRIFT_JSON, lambda p: p.write_text(text, encoding="utf-8"))
    frame = table.assign(**{MODEL_VERSION: model_version, SNAPSHOT_DATE: snapshot_date})
    _replace(directory / DRIFT_PARQUET, lambda p: frame.to_parquet(p, index=False))
    plot_top_movers(directory / TOP_MOVERS_PNG, snapshot_date, table, limit)
    return summary
