"""Realised defaults drawn from each customer's true pd: the outcomes table of generated snapshots."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from defaultrisk.dates import add_months


def make_outcomes(
    uuids, true_pd, snapshot_date: date, window_months: int, seed: int, all_customers: bool = False
) -> pd.DataFrame:
    """`uuid`, `default_date`: each customer defaults with its true pd, on a day inside the window.

    The day is uniform over the window (the day after the snapshot to the same day `window_months`
    later). Only defaulters are listed unless `all_customers`; the others then have no date (None).
    A NaN pd (a row the scoring job rejects) never defaults.
    """
    rng = np.random.default_rng([seed, snapshot_date.toordinal()])
    p = np.nan_to_num(np.asarray(true_pd, dtype=float), nan=0.0)
    defaulted = rng.random(p.size) < p
    days = (add_months(snapshot_date, window_months) - snapshot_date).days
    offsets = rng.integers(1, days + 1, size=p.size)
    dates = [
        snapshot_date + timedelta(days=int(o)) if d else None for d, o in zip(defaulted, offsets, strict=True)
    ]
    frame = pd.DataFrame({"uuid": list(uuids), "default_date": dates})
    return frame if all_customers else frame[defaulted].reset_index(drop=True)


def write_outcomes_csv(frame: pd.DataFrame, path: Path, observed_until: date | None = None) -> Path:
    """The original format: `;`-separated, header, `NA` for a missing date."""
    out = frame.copy()
    out["default_date"] = [d.isoformat() if d is not None else "NA" for d in out["default_date"]]
    if observed_until is not None:
        out["observed_until"] = observed_until.isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, sep=";", index=False)
    return path
