"""Registering a trained model folder: one MLflow run (parameters, metrics, the report, the manifest)
and the folder logged as a pyfunc model, registered as a new version of a named model.

Called by the training job once the folder is complete (`train --register NAME`); the folder is the
product and stays whatever happens here.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from defaultrisk.errors import DefaultRiskError, OutputError, first_line
from defaultrisk.model import MANIFEST_FILE, read_checked_model
from defaultrisk.registry import MODELS_SCHEME, require_mlflow
from defaultrisk.registry.location import Location, active, connect, experiment_id, locate
from defaultrisk.registry.resolve import MODEL_DIR_ARTIFACT

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"  # written by the training job beside the manifest
REPORT_DIR = "report"
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
ARTIFACT_NAME = "model"  # the logged model's name within its run
# The version's tags: our identity of the model, and the run that logged it.
MODEL_VERSION_TAG = "model_version"
RUN_ID_TAG = "run_id"


@dataclass(frozen=True)
class Registration:
    """`train --register NAME [--registry DIR_OR_URI]`: what the training job registers, and where."""

    name: str
    registry: str | None = None

    def check(self) -> Location:
        """Before training starts: MLflow importable and a registry named (usage errors, exit 2)."""
        require_mlflow("--register")
        return locate(self.registry)

    def register(self, model_dir: str | Path) -> dict:
        """The complete folder registered (see `register_model_dir`); the summary's `registry`."""
        return register_model_dir(model_dir, self.name, self.check())


def register_model_dir(model_dir: str | Path, name: str, location: Location) -> dict:
    """Log and register a checked model folder; `{name, version, run_id, uri}` of the new version.

    Any failure is an output error whose line says the folder is written and which name failed.
    """
    model_dir = Path(model_dir)
    try:
        return _register(model_dir, name, location)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, DefaultRiskError) else first_line(exc)
        raise OutputError(
            f"the model folder {model_dir} is written, but registering it as {name!r} in the registry "
            f"at {location} failed: {reason}"
        ) from exc


def _register(model_dir: Path, name: str, location: Location) -> dict:
    mlflow = require_mlflow()
    from defaultrisk.registry.pyfunc import signature

    _, manifest = read_checked_model(model_dir)  # only a folder that would score is registered
    client = connect(location, create=True)
    experiment = experiment_id(client, location)
    version_id = manifest["model_version"]
    with active(location), mlflow.start_run(experiment_id=experiment, run_name=version_id) as run:
        mlflow.log_params(run_params(manifest))
        metrics_path = model_dir / METRICS_FILE
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        mlflow.log_metrics(run_metrics(manifest, metrics))
        for fold, score in enumerate(manifest.get("model_selection", {}).get("fold_scores", [])):
            mlflow.log_metric("cv_fold_score", float(score), step=fold)
        mlflow.set_tag(MODEL_VERSION_TAG, version_id)
        mlflow.log_artifact(str(model_dir / MANIFEST_FILE))
        if metrics_path.is_file():
            mlflow.log_artifact(str(metrics_path))
        if (model_dir / REPORT_DIR).is_dir():
            mlflow.log_artifacts(str(model_dir / REPORT_DIR), REPORT_DIR)
        with warnings.catch_warnings():
            # MLflow advises an input example; the signature is written out in full instead.
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            info = mlflow.pyfunc.log_model(
                name=ARTIFACT_NAME,
                python_model=str(PYFUNC_CODE),
                artifacts={MODEL_DIR_ARTIFACT: str(model_dir)},
                signature=signature(),
                registered_model_name=name,
                pip_requirements=_requirements(),
            )
    version = str(info.registered_model_version)
    client.set_model_version_tag(name, version, MODEL_VERSION_TAG, version_id)
    client.set_model_version_tag(name, version, RUN_ID_TAG, run.info.run_id)
    uri = f"{MODELS_SCHEME}{name}/{version}"
    log.info("registered %s (%s) as %s in %s", model_dir, version_id, uri, location)
    return {"name": name, "version": version, "run_id": run.info.run_id, "uri": uri}


def run_params(manifest: dict) -> dict:
    """The run's parameters: the choice (strategy, kept, calibration), XGBoost's parameters, the
    training settings (seed included), the row counts and the threshold."""
    selection = manifest.get("model_selection", {})
    params = {
        "model_version": manifest["model_version"],
        "strategy": selection.get("strategy"),
        "kept": selection.get("kept"),
        "selection_metric": selection.get("metric"),
        "cv_folds": selection.get("cv_folds"),
        "trees_in_cv": selection.get("rounds"),
        "calibration": manifest["calibration"].get("method"),
        "threshold": manifest["threshold"].get("value"),
        "threshold_rule": manifest["threshold"].get("rule"),
        "xgboost_version": manifest["xgboost_version"],
    }
    params.update(_flat("xgboost", selection.get("params", {})))
    params.update(_flat("training", manifest.get("training", {})))
    params.update(_flat("rows", manifest.get("row_counts", {})))
    return {k: v for k, v in params.items() if v is not None}


def run_metrics(manifest: dict, metrics: dict) -> dict:
    """Hold-out metrics (the base rate among them: `holdout_default_rate`) and the cross-validated
    score of the kept model and of every strategy compared."""
    holdout = metrics.get("holdout") or manifest.get("metrics", {}).get("holdout", {})
    out = {f"holdout_{k}": float(v) for k, v in holdout.items() if _number(v)}
    selection = manifest.get("model_selection", {})
    if _number(selection.get("cv_score")):
        out[f"cv_{selection.get('metric', 'score')}"] = float(selection["cv_score"])
    for row in selection.get("comparison", []):
        for key in ("roc_auc", "pr_auc", "brier", "log_loss", "mean_pd"):
            if _number(row.get(key)):
                out[f"cv_{row['strategy']}_{key}"] = float(row[key])
    return out


def _flat(prefix: str, values: dict) -> dict:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = (
                value if isinstance(value, str | int | float | bool) else json.dumps(value)
            )
    return out


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _requirements() -> list[str]:
    """What a fresh environment would install to load the model: this package and its pins."""
    pinned = []
    for package in ("defaultrisk", "xgboost", "mlflow-skinny", "pyarrow", "pandas"):
        try:
            pinned.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pinned
