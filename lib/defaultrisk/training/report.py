"""The training report in `MODEL_DIR/report/`: `metrics.json` and the plots a risk analyst reads first.

Every plot is drawn on the hold-out (except the strategy comparison, which is cross-validated on the
training rows) with matplotlib's Agg canvas: no display, no global pyplot state. A model trained on rows
whose non-defaulters were thinned in Spark is drawn for the real population: each hold-out non-defaulter
weighted by 1/negative_rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from defaultrisk.jsondata import plain, write_json
from defaultrisk.training.fit import TrainingResult
from defaultrisk.training.metrics import population_mean, population_weights
from defaultrisk.training.threshold import decision_curve

REPORT_DIR = "report"
REPORT_METRICS_FILE = "metrics.json"
ROC_PLOT = "roc.png"
PR_PLOT = "precision_recall.png"
RELIABILITY_PLOT = "reliability.png"
THRESHOLD_PLOT = "threshold_tradeoff.png"
IMPORTANCE_PLOT = "feature_importance.png"
STRATEGY_PLOT = "strategy_comparison.png"

FIGURE_SIZE = (7.5, 5.5)
DPI = 110
TOP_FEATURES = 20
Z_95 = 1.959964  # two-sided 95% normal quantile, for the reliability plot's intervals
MODEL_COLOUR = "tab:blue"
ORACLE_COLOUR = "tab:green"
CHOSEN_COLOUR = "tab:orange"
MUTED_COLOUR = "tab:gray"


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> None:
    # No creation date or software version in the file: the same report gives the same bytes.
    figure.savefig(path, format="png", metadata={"Software": None})


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def plot_roc(
    path: Path,
    labels: np.ndarray,
    pds: np.ndarray,
    true_pd: np.ndarray | None = None,
    negative_rate: float = 1.0,
    baseline_pd: np.ndarray | None = None,
) -> None:
    figure, ax = _figure()
    weights = population_weights(labels, negative_rate)
    fpr, tpr, _ = roc_curve(labels, pds, sample_weight=weights)
    auc = roc_auc_score(labels, pds, sample_weight=weights)
    ax.plot(fpr, tpr, color=MODEL_COLOUR, label=f"model (AUC {auc:.4f})")
    if baseline_pd is not None:
        fpr, tpr, _ = roc_curve(labels, baseline_pd, sample_weight=weights)
        auc = roc_auc_score(labels, baseline_pd, sample_weight=weights)
        ax.plot(fpr, tpr, color=CHOSEN_COLOUR, linestyle="-.", label=f"untuned baseline (AUC {auc:.4f})")
    if true_pd is not None:
        fpr, tpr, _ = roc_curve(labels, true_pd, sample_weight=weights)
        auc = roc_auc_score(labels, true_pd, sample_weight=weights)
        ax.plot(fpr, tpr, color=ORACLE_COLOUR, linestyle="--", label=f"true pd, the ceiling (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color=MUTED_COLOUR, linestyle=":", label="chance (AUC 0.5)")
    ax.set(
        title=f"ROC curve on the hold-out ({len(labels):,} customers, {int(labels.sum()):,} defaults)",
        xlabel="false positive rate (share of non-defaulters flagged)",
        ylabel="true positive rate (share of defaulters caught)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    _save(figure, path)


def plot_precision_recall(
    path: Path,
    labels: np.ndarray,
    pds: np.ndarray,
    threshold: dict,
    true_pd: np.ndarray | None = None,
    negative_rate: float = 1.0,
) -> None:
    figure, ax = _figure()
    weights = population_weights(labels, negative_rate)
    precision, recall, _ = precision_recall_curve(labels, pds, sample_weight=weights)
    area = average_precision_score(labels, pds, sample_weight=weights)
    ax.plot(recall, precision, color=MODEL_COLOUR, label=f"model (PR AUC {area:.4f})")
    if true_pd is not None:
        precision, recall, _ = precision_recall_curve(labels, true_pd, sample_weight=weights)
        area = average_precision_score(labels, true_pd, sample_weight=weights)
        label = f"true pd, the ceiling (PR AUC {area:.4f})"
        ax.plot(recall, precision, color=ORACLE_COLOUR, linestyle="--", label=label)
    rate = population_mean(labels, labels, negative_rate)
    label = f"flag at random (default rate {_percent(rate)})"
    ax.axhline(rate, color=MUTED_COLOUR, linestyle=":", label=label)
    ax.plot(
        threshold["recall"],
        threshold["precision"],
        "o",
        color=CHOSEN_COLOUR,
        markersize=9,
        label=(
            f"threshold pd >= {threshold['value']:.4f} ({threshold['rule']}): precision "
            f"{_percent(threshold['precision'])}, recall {_percent(threshold['recall'])}"
        ),
    )
    ax.set(
        title="Precision and recall on the hold-out",
        xlabel="recall (share of defaulters flagged)",
        ylabel="precision (share of flagged customers who default)",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    _save(figure, path)


def plot_reliability(path: Path, table: list[dict]) -> None:
    """Observed default rate against mean pd per pd decile, with 95% intervals, on log axes."""
    figure, ax = _figure()
    mean_pd = np.array([b["mean_pd"] for b in table])
    observed = np.array([b["observed_rate"] for b in table])
    rows = np.array([b["rows"] for b in table], dtype=np.float64)
    low, high = _wilson_interval(observed, rows)
    seen = observed[observed > 0]
    floor = min(float(mean_pd.min()), float(seen.min()) if seen.size else 1.0) / 2
    shown = np.maximum(observed, floor)  # a bin without defaults sits on the bottom edge
    below = np.maximum(shown - np.maximum(low, floor), 0.0)
    above = np.maximum(np.maximum(high, floor) - shown, 0.0)
    ax.errorbar(
        mean_pd,
        shown,
        yerr=[below, above],
        fmt="o",
        color=MODEL_COLOUR,
        capsize=3,
        label="observed default rate (95% interval)",
    )
    if np.any(observed == 0):
        ax.plot(mean_pd[observed == 0], shown[observed == 0], "v", color="tab:red", label="no default in bin")
    if "mean_true_pd" in table[0]:
        true_mean = np.array([b["mean_true_pd"] for b in table])
        ax.plot(mean_pd, true_mean, "s", color=ORACLE_COLOUR, fillstyle="none", label="mean true pd in bin")
    top = max(float(mean_pd.max()), float(high.max())) * 1.5
    ax.plot([floor, top], [floor, top], color=MUTED_COLOUR, linestyle=":", label="perfect calibration")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(
        title="Reliability on the hold-out: mean pd vs observed default rate, by pd decile",
        xlabel="mean pd in the decile (log scale)",
        ylabel="observed default rate (log scale)",
        xlim=(floor, top),
        ylim=(floor, top),
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize="small")
    _save(figure, path)


def _wilson_interval(rate: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's 95% interval for a binomial rate: sensible even when a bin has no default."""
    z2 = Z_95**2
    centre = (rate + z2 / (2 * rows)) / (1 + z2 / rows)
    half = Z_95 * np.sqrt(rate * (1 - rate) / rows + z2 / (4 * rows**2)) / (1 + z2 / rows)
    return np.maximum(centre - half, 0.0), np.minimum(centre + half, 1.0)


def plot_threshold_tradeoff(
    path: Path, labels: np.ndarray, pds: np.ndarray, threshold: dict, negative_rate: float = 1.0
) -> None:
    figure, ax = _figure()
    curve = decision_curve(labels, pds, negative_rate)
    ax.plot(curve.thresholds, curve.precision, color=MODEL_COLOUR, label="precision")
    ax.plot(curve.thresholds, curve.recall, color=ORACLE_COLOUR, label="recall")
    ax.set_xscale("log")
    ax.set(
        title="Threshold trade-off on the hold-out",
        xlabel="pd threshold: flag customers with pd >= threshold (log scale)",
        ylabel="precision, recall",
        ylim=(0, 1.01),
    )
    alerts = ax.twinx()
    alerts.plot(curve.thresholds, 100 * curve.alert_rate, color=CHOSEN_COLOUR, label="alert rate")
    alerts.set_yscale("log")
    alerts.set_ylabel("alert rate: % of customers flagged (log scale)")
    ax.axvline(threshold["value"], color="black", linestyle="--", linewidth=1)
    ax.annotate(
        f"chosen {threshold['value']:.4f}\nalert rate {_percent(threshold['alert_rate'])}",
        xy=(threshold["value"], 0.97),
        xytext=(5, 0),
        textcoords="offset points",
        va="top",
        fontsize="small",
    )
    handles = ax.get_legend_handles_labels()[0] + alerts.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center left", fontsize="small")
    ax.grid(alpha=0.3)
    _save(figure, path)


def plot_feature_importance(path: Path, importance: list[dict], top: int = TOP_FEATURES) -> None:
    figure, ax = _figure()
    shown = [row for row in importance if row["total_gain"] > 0][:top][::-1]
    ax.barh([row["feature"] for row in shown], [100 * row["gain_share"] for row in shown], color=MODEL_COLOUR)
    ax.set(
        title=f"Feature importance (gain): top {len(shown)} of {len(importance)} features",
        xlabel="share of the model's total gain (%)",
    )
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(alpha=0.3, axis="x")
    _save(figure, path)


def _strategy_label(row: dict) -> str:
    if row["kind"] == "none":
        return f"no resampling, {row['rounds']} trees"
    action = "undersample to" if row["kind"] == "undersample" else "weight defaulters to"
    return f"{action} 1:{1 / row['ratio']:.3g}, {row['rounds']} trees"


def plot_strategy_comparison(path: Path, selection: dict) -> None:
    """Cross-validated score of each imbalance strategy (mean, sd over the folds), the chosen one marked."""
    figure, ax = _figure()
    metric = selection["metric"]
    rows = selection["comparison"][::-1]
    positions = np.arange(len(rows))
    for y, row in zip(positions, rows, strict=True):
        chosen = row["strategy"] == selection["strategy"]
        ax.errorbar(
            row["score"],
            y,
            xerr=row["score_std"],
            fmt="o",
            color=CHOSEN_COLOUR if chosen else MODEL_COLOUR,
            markersize=9 if chosen else 6,
            capsize=4,
        )
        ax.annotate(
            f"{row['score']:.5f}", (row["score"], y), xytext=(0, 8), textcoords="offset points", ha="center"
        )
    ax.set_yticks(positions, [_strategy_label(row) for row in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    better = "lower" if metric == "log_loss" else "higher"
    ax.set(
        title=f"Imbalance strategies ({selection['cv_folds']}-fold CV on the training rows)",
        xlabel=f"{metric}, mean \u00b1 sd over folds ({better} is better)",
    )
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(alpha=0.3, axis="x")
    ax.text(
        0.99,
        0.01,
        f"chosen (orange): {selection['strategy']}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize="small",
    )
    _save(figure, path)


def report_metrics(result: TrainingResult, model_version: str) -> dict:
    """Everything the report states, as plain data (NaN written as null)."""
    return plain(
        {
            "model_version": model_version,
            "holdout": result.metrics,
            "oracle": result.oracle,
            "threshold": result.threshold,
            "calibration": result.calibration,
            "reliability": result.reliability,
            "model_selection": result.selection,
            "baseline": result.baseline,
            "monotone": result.monotone,
            "feature_importance": result.feature_importance,
            "row_counts": result.row_counts,
            "timings_seconds": result.timings,
        }
    )


def write_report(model_dir: Path, result: TrainingResult, model_version: str) -> Path:
    """Write `report/metrics.json` and the plots; return the report directory."""
    report_dir = Path(model_dir) / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    labels, pds, truth = result.holdout_labels, result.holdout_pd, result.holdout_true_pd
    rate = result.negative_rate
    plot_roc(report_dir / ROC_PLOT, labels, pds, truth, rate, result.holdout_baseline_pd)
    plot_precision_recall(report_dir / PR_PLOT, labels, pds, result.threshold, truth, rate)
    plot_reliability(report_dir / RELIABILITY_PLOT, result.reliability)
    plot_threshold_tradeoff(report_dir / THRESHOLD_PLOT, labels, pds, result.threshold, rate)
    plot_feature_importance(report_dir / IMPORTANCE_PLOT, result.feature_importance)
    plot_strategy_comparison(report_dir / STRATEGY_PLOT, result.selection)
    metrics = report_metrics(result, model_version)
    metrics["plots"] = [ROC_PLOT, PR_PLOT, RELIABILITY_PLOT, THRESHOLD_PLOT, IMPORTANCE_PLOT, STRATEGY_PLOT]
    write_json(report_dir / REPORT_METRICS_FILE, metrics)
    return report_dir
