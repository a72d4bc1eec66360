"""Champion and challengers on the same customers: each challenger's own backtest figures, and the
comparison of each (champion, challenger) pair on the rows both scored (`comparison.json`).

The shadow table (`schema.CHALLENGERS_DIR`) holds each challenger's pd and grade for exactly the rows
of the scored table on the same date; a challenger is backtested on the snapshots the champion is
(closed windows), with the same outcome join and rules. See docs/backtest.md, "Comparing a challenger
with the champion".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from defaultrisk.backtest import evaluate, measures, stats
from defaultrisk.backtest.config import BacktestConfig
from defaultrisk.backtest.measures import CHALLENGER, POOLED
from defaultrisk.backtest.outcomes import outcome_keys
from defaultrisk.grades import scale_from_manifest
from defaultrisk.jsondata import plain
from defaultrisk.schema import CHAMPION_VERSION, MODEL_VERSION, SNAPSHOT_DATE, UUID

# The short form of each comparison in the job's summary line.
SUMMARY_FIELDS = (
    CHAMPION_VERSION, CHALLENGER, "delta_roc_auc", "delong_p_value", "delta_log_loss", "delta_brier",
)  # fmt: skip


@dataclass(frozen=True)
class Challengers:
    """What the backtest writes about the challengers: their table's rows, the comparisons, the pd
    tallied per grid step for the plots (`measures.pd_tally`), and the run's fields that head
    `comparison.json` (`header`)."""

    rows: list[dict]
    comparisons: list[dict]
    tally: list[dict] = field(default_factory=list)
    header: dict = field(default_factory=dict)

    def document(self) -> dict:
        """`comparison.json`."""
        return {**self.header, "comparisons": self.comparisons}

    def summary(self) -> list[dict]:
        """Each comparison's short form, for the job's summary line."""
        return [{k: c[k] for k in SUMMARY_FIELDS} for c in self.comparisons]


def champion_versions(shadow: DataFrame) -> dict[str, dict[date, str]]:
    """Each challenger's snapshot dates and the champion it was scored beside: {version: {date: champion}}."""
    rows = (
        shadow.groupBy(MODEL_VERSION, SNAPSHOT_DATE)
        .agg(F.max(CHAMPION_VERSION).alias(CHAMPION_VERSION))
        .collect()
    )
    out: dict[str, dict[date, str]] = {}
    for r in rows:
        out.setdefault(r[MODEL_VERSION], {})[r[SNAPSHOT_DATE]] = r[CHAMPION_VERSION]
    return out


def challengers(
    graded: DataFrame,
    shadow: DataFrame,
    validated: DataFrame,
    snapshots: list[evaluate.Snapshot],
    manifests: dict[str, dict],
    cfg: BacktestConfig,
) -> Challengers:
    """Every challenger's figures on the champion's backtested snapshots, and every pair's comparison.

    `graded`: the scored table with grades; `shadow`: the shadow table with its grades.
    """
    versions = champion_versions(shadow)
    backtested = {s.snapshot_date: s for s in snapshots}
    rows = []
    for version, days in sorted(versions.items()):
        manifest = manifests.get(version, {})
        scale, reference = scale_from_manifest(manifest), evaluate.auc_reference(manifest)
        mine = [
            evaluate.Snapshot(day, version, scale, reference, backtested[day].window_end)
            for day in sorted(days)
            if day in backtested
        ]
        figures = evaluate.figures(shadow.where(F.col(MODEL_VERSION) == version), validated, mine, cfg)
        rows.extend({**r, CHAMPION_VERSION: days[r["snapshot_date"]]} for r in figures)
    if not rows:
        return Challengers([], [])
    windows = evaluate.windows_frame(graded.sparkSession, snapshots)
    keys = outcome_keys(validated)
    paired = measures.paired_rows(
        measures.labelled_rows(graded, keys, windows, keep=(UUID,)),
        measures.labelled_rows(shadow, keys, windows, keep=(UUID, MODEL_VERSION, CHAMPION_VERSION)),
    ).cache()
    try:
        sums = measures.paired_sums(paired)
        tally = measures.pd_tally(paired)
    finally:
        paired.unpersist()
    return Challengers(rows, comparisons(sums, cfg), tally)


def comparisons(sums: dict[tuple, dict], cfg: BacktestConfig) -> list[dict]:
    """One comparison per (champion, challenger) pair from `measures.paired_sums`, in version order."""
    pairs = sorted({key[:2] for key in sums})
    return [
        comparison(
            champion,
            challenger,
            sums[(champion, challenger, POOLED)],
            {key[2]: s for key, s in sums.items() if key[:2] == (champion, challenger) and key[2] != POOLED},
            cfg,
        )
        for champion, challenger in pairs
    ]


def comparison(champion: str, challenger: str, pooled: dict, per_snapshot: dict, cfg) -> dict:
    """A pair's figures pooled over its snapshots, and the AUCs per snapshot (`comparison.json`)."""
    auc = _paired_auc(pooled)
    log_loss = stats.paired_mean_difference(pooled["customers"], pooled["log_loss_d"], pooled["log_loss_d2"])
    brier = stats.paired_mean_difference(pooled["customers"], pooled["brier_d"], pooled["brier_d2"])
    snapshots = []
    for day, s in sorted(per_snapshot.items()):
        one = _paired_auc(s)
        snapshots.append(
            {
                "snapshot_date": day,
                "customers": int(s["customers"]),
                "defaults": int(s["defaults"]),
                "champion_roc_auc": one.auc_a,
                "challenger_roc_auc": one.auc_b,
                "delta_roc_auc": one.delta,
                "delong_p_value": one.p_value,
            }
        )
    return plain(
        {
            CHAMPION_VERSION: champion,
            CHALLENGER: challenger,
            "snapshots": [s["snapshot_date"] for s in snapshots],
            "customers": int(pooled["customers"]),
            "defaults": int(pooled["defaults"]),
            "champion": _model_figures(pooled, "a", auc.auc_a, cfg),
            "challenger": _model_figures(pooled, "b", auc.auc_b, cfg),
            "delta_roc_auc": auc.delta,
            "delong_z": auc.z,
            "delong_p_value": auc.p_value,
            "delta_log_loss": log_loss[0],
            "delta_brier": brier[0],
            "delta_log_loss_se": log_loss[1],
            "delta_log_loss_p_value": log_loss[2],
            "delta_brier_se": brier[1],
            "delta_brier_p_value": brier[2],
            "per_snapshot": snapshots,
        }
    )


def _paired_auc(s: dict) -> stats.PairedAuc:
    return stats.paired_auc_from_sums(
        s["defaults"],
        s["customers"] - s["defaults"],
        (s["a10"], s["a10_sq"], s["a01_sq"]),
        (s["b10"], s["b10_sq"], s["b01_sq"]),
        (s["d10_sq"], s["d01_sq"]),
    )


def _model_figures(s: dict, side: str, roc_auc: float, cfg: BacktestConfig) -> dict:
    """One model's figures on the paired rows; calibration and Jeffreys test by the backtest's own rule."""
    n = int(s["customers"])
    counts = {"customers": n, "observed_defaults": s["defaults"], "expected_defaults": s[f"expected_{side}"]}
    row = evaluate.group_row(counts, cfg.significance, cfg.interval_confidence)
    return {
        "roc_auc": roc_auc,
        "log_loss": s[f"log_loss_{side}"] / n if n else math.nan,
        "brier": s[f"brier_{side}"] / n if n else math.nan,
        "expected_defaults": row["expected_defaults"],
        "observed_defaults": row["observed_defaults"],
        "calibration_ratio": row["calibration_ratio"],
        "jeffreys_p_value": row["jeffreys_p_value"],
    }


def header(run_id: str, backtested_at: datetime, cfg: BacktestConfig) -> dict:
    """The first fields of `comparison.json`: which run, when, on which table and window."""
    return {
        "run_id": run_id,
        "backtested_at": backtested_at.isoformat(),
        "scored": cfg.scored_path,
        "window_months": cfg.window_months,
    }
