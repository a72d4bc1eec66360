"""The training job, composition only: read -> validate -> collect -> fit -> write the model directory."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import SparkSession

from defaultrisk import drift
from defaultrisk.fs import delete_path, rename_to_absent
from defaultrisk.grades import DEFAULT_SCALE
from defaultrisk.jsondata import write_json
from defaultrisk.model import save_model
from defaultrisk.read import read_raw
from defaultrisk.registry.register import Registration
from defaultrisk.schema import DEFAULT
from defaultrisk.settings import as_dict
from defaultrisk.training.collect import collect_training_rows
from defaultrisk.training.config import DRIVER_SAMPLING, TrainConfig
from defaultrisk.training.fit import TrainingResult, fit
from defaultrisk.training.metrics import population_weights
from defaultrisk.training.report import write_report
from defaultrisk.training.truth import read_truth
from defaultrisk.validate import SKIPPED, entry_contract, rejected_rows

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
TRAIN_REJECTS_DIR = "rejects"
SUMMARY_METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "gini", "ks", "mean_pd", "default_rate")
_SUMMARY_SAMPLING = ("mode", "negative_rate", "negative_sampling_rate", "before", "driver_rows")
_NOT_SETTINGS = ("input_path", "model_dir", "truth_path")
_NOT_SEARCHED = ("n_estimators", "nthread", "monotone_constraints")


def run_train(spark: SparkSession, cfg: TrainConfig, registration: Registration | None = None) -> dict:
    """Train a model on the labelled rows of `cfg.input_path` and write the model directory; with a
    `registration`, register the complete folder as a new version of a named model."""
    started = time.monotonic()
    log.info("train config: %s", json.dumps(as_dict(cfg), default=str))
    truth = read_truth(cfg.truth_path) if cfg.truth_path else None  # fails before any Spark work
    raw = read_raw(spark, cfg.input_path, cfg.input_format)
    # Read three times (counts, rows, rejects): kept rather than read again.
    validated = entry_contract(raw, labelled=True).persist(StorageLevel.MEMORY_AND_DISK)
    model_dir = Path(cfg.model_dir)
    try:
        counts, pdf, sampling = collect_training_rows(validated, cfg)
        rate = sampling.get("negative_sampling_rate", 1.0)
        result = fit(pdf, cfg, truth, rate)
        # What the scoring job measures each snapshot's drift against: the training rows' features
        # and the hold-out's pd (scored out of sample, like a snapshot), weighted back to the population.
        drift_reference = drift.reference_profile(
            pdf,
            result.holdout_pd,
            weights=population_weights(pdf[DEFAULT].to_numpy(), rate),
            pd_weights=population_weights(result.holdout_labels, rate),
        )
        rejects_path = None
        if counts["rejected_rows"]:
            rejects_path = str(model_dir / TRAIN_REJECTS_DIR)
            # Written whole beside the folder, then swapped in: a failed write leaves the old rejects.
            staged = f"{rejects_path}.{uuid.uuid4().hex[:8]}.staging"
            rejected_rows(validated.drop(SKIPPED)).write.mode("errorifexists").parquet(staged)
            delete_path(spark, rejects_path)
            rename_to_absent(spark, staged, rejects_path)
    finally:
        validated.unpersist()
    row_counts = {**counts, **result.row_counts}
    if sampling["mode"] != DRIVER_SAMPLING:  # fit's labelled_rows are the sample's; Spark counted the table's
        row_counts.update(labelled_rows=sum(sampling["before"].values()), driver_rows=len(pdf))
    manifest = save_model(
        model_dir, result.booster, _manifest_fields(cfg, result, row_counts, sampling, drift_reference)
    )
    _write_metrics(model_dir, manifest, result, sampling)
    report_dir = write_report(model_dir, result, manifest["model_version"])
    summary = _summary(manifest, result, sampling, model_dir)
    summary.update(report=str(report_dir), rejects=rejects_path, seconds=round(time.monotonic() - started, 2))
    if registration is not None:
        summary["registry"] = registration.register(model_dir)
    return summary


def _manifest_fields(cfg: TrainConfig, result: TrainingResult, row_counts, sampling, drift_reference) -> dict:
    oracle = {"oracle": result.oracle} if result.oracle else {}
    return {
        "threshold": result.threshold,
        "calibration": result.calibration,
        "master_scale": DEFAULT_SCALE.to_manifest(),
        "row_counts": row_counts,
        "metrics": {"holdout": result.metrics, **oracle, **_challengers(result)},
        "model_selection": result.selection,
        "drift_reference": drift_reference,
        "training": {k: v for k, v in as_dict(cfg).items() if k not in _NOT_SETTINGS},
        "sampling": sampling,
        "input_path": cfg.input_path,
        "truth_path": cfg.truth_path,
    }


def _write_metrics(model_dir: Path, manifest: dict, result: TrainingResult, sampling: dict) -> None:
    metrics = {
        "model_version": manifest["model_version"],
        "holdout": result.metrics,
        "oracle": result.oracle,
        "threshold": result.threshold,
        "calibration": result.calibration,
        "row_counts": manifest["row_counts"],
        "kept": result.selection["kept"],
        **_challengers(result),
    }
    if sampling["mode"] != DRIVER_SAMPLING:
        metrics["sampling"] = sampling
    write_json(model_dir / METRICS_FILE, metrics)


def _challengers(result: TrainingResult) -> dict:
    """The untuned baseline and the monotone check, when the run has them."""
    shown = {"baseline": result.baseline} if result.baseline else {}
    return {**shown, **({"monotone": result.monotone} if result.monotone else {})}


def _summary(manifest: dict, result: TrainingResult, sampling: dict, model_dir: Path) -> dict:
    """The run summary's headline figures (the last stdout line)."""
    row_counts = manifest["row_counts"]
    oracle = result.oracle
    return {
        "model_version": manifest["model_version"],
        "model_dir": str(model_dir),
        **{k: row_counts[k] for k in ("input_rows", "rejected_rows", "unlabelled_rows")},
        "training_rows": result.row_counts["labelled_rows"],
        "sampling": {k: sampling[k] for k in _SUMMARY_SAMPLING if k in sampling},
        "holdout": {k: result.metrics[k] for k in SUMMARY_METRICS},
        "threshold": result.threshold["value"],
        "kept": result.selection["kept"],
        "baseline_holdout": (
            {k: result.baseline["holdout"][k] for k in SUMMARY_METRICS} if result.baseline else None
        ),
        "strategy": result.selection["strategy"],
        "params": {k: v for k, v in result.selection["params"].items() if k not in _NOT_SEARCHED},
        "trees": result.booster.num_boosted_rounds(),  # the model file's; cross-validation's below
        "trees_in_cv": result.selection["rounds"],
        "calibration": result.calibration["method"],
        "oracle": ({k: oracle["metrics"][k] for k in SUMMARY_METRICS} if oracle else None),
    }
