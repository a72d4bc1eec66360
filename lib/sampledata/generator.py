"""The tables themselves: customers with their true pd, a labelled history, and nightly snapshots."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from defaultrisk.schema import CATEGORY, DEFAULT, FEATURE_NAMES, FEATURES, FLAG, INPUT_COLUMNS, UUID
from sampledata.account import account_columns
from sampledata.corrupt import apply_damage, plan_damage
from sampledata.files import TRUE_PD, WHOLE_KINDS
from sampledata.invoices import (
    active_invoices,
    amounts_paid,
    archived_invoices,
    invoice_history,
    payment_spans,
    recovery_debt,
)
from sampledata.population import draw_age, purchase_columns
from sampledata.risk import true_default_probability


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    ids = [str(uuid.UUID(bytes=raw[16 * i : 16 * (i + 1)], version=4)) for i in range(n)]
    if len(set(ids)) != n:
        raise RuntimeError("uuid collision")
    return ids


def _draw_features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Draw every feature from two latent traits, so related columns move together as in real data."""
    # The order of the draws fixes every value a seed gives: reordering them changes all the tables.
    risk = rng.standard_normal(n)
    activity = rng.standard_normal(n)
    features: dict[str, np.ndarray] = {"age": draw_age(rng, n)}
    history = invoice_history(rng, activity)
    features.update(archived_invoices(rng, history, risk))
    features.update(amounts_paid(rng, history))
    features.update(payment_spans(rng, history, risk))
    features.update(active_invoices(rng, history, risk))
    features.update(account_columns(rng, history.inv24, risk))
    features["recovery_debt"] = recovery_debt(rng, risk)
    features.update(purchase_columns(rng, n))
    return features


def generate_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """`n` customers (`uuid` and the 41 features in schema order) and each one's true pd."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    ids = _uuids(rng, n)
    features = _draw_features(rng, n)
    columns: dict[str, object] = {UUID: pd.Series(ids, dtype=object)}
    for feature in FEATURES:
        columns[feature.name] = _whole_if_complete(feature, features[feature.name])
    df = pd.DataFrame(columns, columns=[UUID, *FEATURE_NAMES])
    return df, true_default_probability(df)


def _whole_if_complete(feature, values):
    """A whole-number column without missing values as integers, as the original file writes it."""
    if feature.kind in WHOLE_KINDS and not np.isnan(np.asarray(values, dtype=float)).any():
        return np.asarray(values).astype(np.int64)
    return values


def make_history(n: int, seed: int, unlabeled_fraction: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    """A labelled table like the original file: customers plus `default` drawn from their true pd.

    A random `unlabeled_fraction` of rows get a missing `default`, like the unlabelled part of the file.
    """
    if not 0.0 <= unlabeled_fraction <= 1.0:
        raise ValueError(f"unlabeled_fraction must be in [0, 1], got {unlabeled_fraction}")
    df, pd_true = generate_customers(n, seed)
    rng = np.random.default_rng([seed, 1])
    labels = pd.array((rng.random(n) < pd_true).astype(np.int64), dtype="Int64")
    unlabeled = rng.random(n) < unlabeled_fraction
    labels[unlabeled] = pd.NA
    df[DEFAULT] = labels
    return df[list(INPUT_COLUMNS)], pd_true


def make_snapshot(n: int, seed: int, bad_rows: int = 0) -> tuple[pd.DataFrame, dict]:
    """A nightly snapshot: `n` customers without `default`, plus `bad_rows` invalid rows spread through it.

    Bad rows cycle through `BAD_KINDS`. A duplicated uuid copies another customer's uuid, so both rows
    of the pair are invalid. A few valid customers carry a merchant category never seen before, which
    must be scored, not rejected. The returned dict holds `expected_rejected_rows`, `bad_kinds`,
    `rejected_rows` (row positions) and `true_pd` (per row, NaN for rejected rows).
    """
    if bad_rows < 0:
        raise ValueError(f"bad_rows must be >= 0, got {bad_rows}")
    df, pd_true = generate_customers(n + bad_rows, seed)
    return _damaged(df, pd_true, seed, n, bad_rows)


def _damaged(
    df: pd.DataFrame, pd_true: np.ndarray, seed: int, n: int, bad_rows: int
) -> tuple[pd.DataFrame, dict]:
    """`df` (`n + bad_rows` customers) with its bad rows and unseen categories written in, and its info."""
    damage = plan_damage(np.random.default_rng([seed, 2]), n, bad_rows)
    apply_damage(df, damage)
    rejected = damage.rejected_rows()
    pd_rows = pd_true.copy()
    pd_rows[rejected] = np.nan
    info = {
        "expected_rejected_rows": len(rejected),
        "bad_kinds": damage.kinds,
        "rejected_rows": rejected.tolist(),
        TRUE_PD: pd_rows,
    }
    return df, info


def make_snapshots(
    n: int, dates: Sequence[date], seed: int, bad_rows: int = 0, returning: float = 0.8, changed: float = 0.03
) -> list[tuple[pd.DataFrame, dict]]:
    """Nightly snapshots of one portfolio, one per date in order, as `make_snapshot` lays each out.

    The first is `make_snapshot(n, snapshot_seed(seed, first date), bad_rows)`. Each later one brings back
    a `returning` share of the previous snapshot's customers (their uuids and, before any damage, their
    values), of whom a `changed` share now have the values of a fresh draw (their situation changed, and
    with it their true pd), and fills up with new customers; then its own bad rows are written in. So the
    same customer is scored on several dates and a grade migration between dates shows movement.
    """
    if not (0.0 <= returning <= 1.0 and 0.0 <= changed <= 1.0):
        raise ValueError(f"returning and changed must be in [0, 1], got {returning} and {changed}")
    snapshots: list[tuple[pd.DataFrame, dict]] = []
    previous: tuple[pd.DataFrame, np.ndarray] | None = None
    for day in dates:
        day_seed = snapshot_seed(seed, day)
        df, pd_true = generate_customers(n + bad_rows, day_seed)
        if previous is not None:
            rng = np.random.default_rng([day_seed, 3])
            df, pd_true = _portfolio(previous, (df, pd_true), rng, round(returning * n), changed)
        previous = (df.copy(), pd_true.copy())
        snapshots.append(_damaged(df, pd_true, day_seed, n, bad_rows))
    return snapshots


def _portfolio(previous, drawn, rng: np.random.Generator, returning: int, changed: float):
    """`returning` customers of `previous` (a `changed` share with new values) and new ones from `drawn`,
    shuffled; each a (frame, true pd) pair."""
    (before, before_pd), (fresh, fresh_pd) = previous, drawn
    kept = rng.choice(len(before), size=min(returning, len(before)), replace=False)
    moved = np.flatnonzero(rng.random(kept.size) < changed)
    new = fresh.iloc[moved.size : moved.size + len(fresh) - kept.size]
    order = rng.permutation(kept.size + len(new))
    columns = {UUID: np.concatenate([before[UUID].to_numpy()[kept], new[UUID].to_numpy()])[order]}
    for feature in FEATURES:
        returning_values = before[feature.name].to_numpy()[kept].astype(object)
        # A changed customer keeps its uuid and takes the values (and true pd) of one of the fresh draws.
        returning_values[moved] = fresh[feature.name].to_numpy()[: moved.size]
        values = np.concatenate([returning_values, new[feature.name].to_numpy().astype(object)])[order]
        if feature.kind == FLAG:
            values = values.astype(bool)
        elif feature.kind != CATEGORY:
            values = values.astype(float)
        columns[feature.name] = _whole_if_complete(feature, values)
    pd_true = before_pd[kept].copy()
    pd_true[moved] = fresh_pd[: moved.size]
    pd_true = np.concatenate([pd_true, fresh_pd[moved.size : moved.size + len(new)]])[order]
    return pd.DataFrame(columns, columns=[UUID, *FEATURE_NAMES]), pd_true


def snapshot_seed(seed: int, snapshot_date: date) -> int:
    """A seed of its own for each snapshot date: its new customers and its damage."""
    digest = hashlib.sha256(f"{seed}:{snapshot_date.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
