"""Population drift: how far tonight's customers and scores have moved from the training population.

At training time `reference_profile` bins every feature and the pd on the training rows and keeps the
bins and each bin's share (a small JSON document for the model's manifest). At scoring time
`bin_counts` counts the snapshot's rows into the same bins in one Spark job, `drift_table` turns the
counts into the population stability index (PSI) of each column, and the scoring job's drift report
(`scoring/drift_report.py`) writes it as JSON, Parquet and a chart of the top movers.

PSI = sum over bins of (actual share - reference share) * ln(actual share / reference share); both
shares are floored at `SHARE_FLOOR` so that an empty bin counts as a large but finite move.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame

from defaultrisk import sql
from defaultrisk.schema import CATEGORY, FEATURES, FLAG, PD

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
        f"CAST({sql.name(n)} AS STRING) AS {sql.name(n)}"
        if specs[n]["kind"] == CATEGORY
        else f"CAST({sql.name(n)} AS DOUBLE) AS {sql.name(n)}"
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
