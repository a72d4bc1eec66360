"""The model artefact: XGBoost's native JSON file plus a manifest, checked before every use.

A model directory holds `model.json` (never a pickle), `manifest.json` (what the model is, what it
was trained on, its threshold, calibration, metrics and the file's sha256) and the training report.
`load_checked` is the one loader on the driver: every check, then what scoring workers need as plain
values (`ModelPayload`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import xgboost as xgb

from defaultrisk import __version__
from defaultrisk.calibration import apply_calibration, check_calibration
from defaultrisk.errors import ModelError, first_line
from defaultrisk.features import xgb_feature_types
from defaultrisk.registry import is_registry_uri
from defaultrisk.schema import FEATURE_NAMES, FEATURES, feature_spec
from defaultrisk.treeshap import TreeExplainer, Unsupported

log = logging.getLogger(__name__)

MODEL_FILE = "model.json"
MANIFEST_FILE = "manifest.json"
MODEL_FORMAT = "xgboost-json"
MANIFEST_FORMAT_VERSION = 1
_PICKLE_MAGIC = b"\x80"
# When set, only models signed with this key (by whoever approves models: `sign_model`) score.
MODEL_KEY_ENV = "DEFAULTRISK_MODEL_KEY"
_LIBRARIES = ("xgboost-cpu", "xgboost", "numpy", "pandas", "pyarrow", "scikit-learn", "imbalanced-learn")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "defaultrisk": __version__}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class ModelPayload:
    """What a scoring worker needs, as plain values: the checked model file and the manifest fields
    scoring reads. The worker caches loaded models by `version`, which covers all of them."""

    model_bytes: bytes
    version: str
    threshold: float
    calibration: dict

    @classmethod
    def from_manifest(cls, model_bytes: bytes, manifest: dict) -> ModelPayload:
        threshold = float(manifest["threshold"]["value"])
        return cls(model_bytes, manifest["model_version"], threshold, manifest["calibration"])


@dataclass(frozen=True)
class ScoringModel:
    """A loaded, checked booster and what scoring needs of its manifest."""

    booster: xgb.Booster
    version: str
    threshold: float
    calibration: dict

    def predict_pd(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated pd (float64) for a feature matrix built by `features.feature_matrix`."""
        if len(matrix) == 0:
            return np.empty(0, dtype=np.float64)
        raw = self.booster.inplace_predict(matrix, validate_features=False)
        return apply_calibration(raw, self.calibration)

    @cached_property
    def explainer(self) -> TreeExplainer | None:
        """The booster's TreeSHAP tables, built on first use and kept with the model (so once per
        worker process and `model_version`); None where they do not cover the booster and XGBoost's
        own TreeSHAP answers instead. The tables hold every tree, as `predict_pd` uses every tree."""
        try:
            return TreeExplainer.from_booster(self.booster)
        except Unsupported as exc:
            log.info("reason codes by XGBoost's TreeSHAP (pred_contribs): %s", exc)
            return None

    @classmethod
    def from_payload(cls, payload: ModelPayload, nthread: int | None = None) -> ScoringModel:
        """Load the booster from its checked file content (on a worker, from the driver's copy)."""
        if payload.model_bytes[:1] == _PICKLE_MAGIC:
            raise ModelError("model file is a Python pickle; only XGBoost's native JSON format is loaded")
        check_calibration(payload.calibration)
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(payload.model_bytes))
        except xgb.core.XGBoostError as exc:
            raise ModelError(f"model file is not a valid XGBoost model: {first_line(exc)}") from exc
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        return cls(booster, payload.version, payload.threshold, payload.calibration)


@dataclass(frozen=True)
class CheckedModel:
    """A model directory read and checked on the driver: its manifest, the payload, the loaded model."""

    manifest: dict
    payload: ModelPayload
    model: ScoringModel

    @property
    def version(self) -> str:
        return self.payload.version


# The manifest fields that change what scoring writes, beside the model file itself.
IDENTITY_FIELDS = (
    "features",
    "calibration",
    "threshold",
    "master_scale",
    "xgboost_version",
    "drift_reference",
)


def identity_digest(model_sha256: str, manifest_fields: dict) -> str:
    """sha256 of the model file's hash and every manifest field scoring reads.

    The feature list, calibration and threshold change each row's pd and `is_high_risk`; the master
    scale (`master_scale`, when a model has one) changes its grade; the XGBoost version the trees were
    written with changes predictions across releases; the drift reference changes the drift report
    and the exit code. Whatever the manifest says beyond these is description, not identity.
    """
    pinned = {"model_sha256": model_sha256}
    pinned.update({key: manifest_fields.get(key) for key in IDENTITY_FIELDS})
    pinned["threshold"] = (manifest_fields.get("threshold") or {}).get("value")
    return sha256_bytes(json.dumps(pinned, sort_keys=True).encode())


def model_version(model_sha256: str, manifest_fields: dict) -> str:
    """Same model file and same fields that scoring reads give the same version, on any machine."""
    return "pd-" + identity_digest(model_sha256, manifest_fields)[:12]


def signature(model_sha256: str, manifest_fields: dict, key: str) -> str:
    """HMAC-SHA256, under the approver's key, of the model's identity (`identity_digest`)."""
    digest = identity_digest(model_sha256, manifest_fields)
    return hmac.new(key.encode(), digest.encode(), hashlib.sha256).hexdigest()


def sign_model(model_dir: str | Path, key: str) -> str:
    """Approve a checked model directory: write its manifest's `signature`; return the version."""
    model_bytes, manifest = _read_unsigned(Path(model_dir))
    manifest["signature"] = signature(sha256_bytes(model_bytes), manifest, key)
    _write_json(Path(model_dir) / MANIFEST_FILE, manifest)
    return manifest["model_version"]


def _check_signature(manifest_path: Path, model_sha256: str, manifest: dict, key: str) -> None:
    given = manifest.get("signature")
    if not given:
        raise ModelError(
            f"{manifest_path} is not signed, and {MODEL_KEY_ENV} is set: only approved models score"
        )
    if not hmac.compare_digest(str(given), signature(model_sha256, manifest, key)):
        raise ModelError(
            f"{manifest_path}: signature does not match {MODEL_KEY_ENV}'s key: not an approved model"
        )


def save_model(model_dir: Path, booster: xgb.Booster, fields: dict) -> dict:
    """Write `model.json` and `manifest.json`; return the manifest.

    `fields` carries threshold, calibration, row_counts, metrics and training settings.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.feature_names = list(FEATURE_NAMES)
    booster.feature_types = xgb_feature_types(FEATURES)
    model_bytes = bytes(booster.save_raw(raw_format="json"))
    model_sha = sha256_bytes(model_bytes)
    manifest = {
        "format_version": MANIFEST_FORMAT_VERSION,
        "model_version": "",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_file": MODEL_FILE,
        "model_format": MODEL_FORMAT,
        "model_sha256": model_sha,
        "features": feature_spec(),
        **fields,
        "xgboost_version": xgb.__version__,
        "library_versions": library_versions(),
    }
    manifest["model_version"] = model_version(model_sha, manifest)
    (model_dir / MODEL_FILE).write_bytes(model_bytes)
    _write_json(model_dir / MANIFEST_FILE, manifest)
    return manifest


def read_checked_model(model_dir: str | Path) -> tuple[bytes, dict]:
    """The model file's bytes and its manifest, after every check that needs no Spark task.

    Refuses a missing or unreadable manifest, a model file outside its folder or whose sha256
    differs from the manifest's, a pickle, a model trained on a feature list other than this
    schema's, and a manifest whose `model_version` is not the identity of what it scores with
    (`identity_digest`): an edited threshold or calibration, or a booster swapped together with its
    sha256, is refused unless the version is recomputed, so no row carries a version it was not
    scored by. When `DEFAULTRISK_MODEL_KEY` is set, the manifest's `signature` must be that key's
    (see `sign_model`).

    `models:/NAME@ALIAS` and `models:/NAME/VERSION` name a registered folder: it is copied from the
    registry (`registry.resolve`) and then checked like any other.
    """
    model_dir = model_folder(model_dir)
    model_bytes, manifest = _read_unsigned(Path(model_dir))
    key = os.environ.get(MODEL_KEY_ENV)
    if key:
        _check_signature(Path(model_dir) / MANIFEST_FILE, sha256_bytes(model_bytes), manifest, key)
    return model_bytes, manifest


def model_folder(model_dir: str | Path) -> Path:
    """The local folder of a model: itself, or the registry's copy of a `models:/` URI."""
    if is_registry_uri(model_dir):
        from defaultrisk.registry.resolve import local_model_dir

        return local_model_dir(model_dir)
    return Path(model_dir)


def _read_unsigned(model_dir: Path) -> tuple[bytes, dict]:
    """Every check of `read_checked_model` but the signature."""
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(f"no {MANIFEST_FILE} in model directory {model_dir}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not valid JSON: {exc}") from exc
    required = (
        *("model_version", "model_file", "model_sha256", "features", "threshold", "calibration"),
        "xgboost_version",
    )
    absent = [key for key in required if key not in manifest]
    if absent:
        raise ModelError(f"{manifest_path} lacks {', '.join(absent)}")
    if manifest.get("model_format") != MODEL_FORMAT:
        found = manifest.get("model_format")
        raise ModelError(f"unsupported model format {found!r}; expected {MODEL_FORMAT}")
    model_path = model_dir / manifest["model_file"]
    if model_path.resolve().parent != model_dir.resolve():
        raise ModelError(f"{manifest_path}: model_file must name a file inside {model_dir}")
    if not model_path.is_file():
        raise ModelError(f"model file {model_path} not found")
    model_bytes = model_path.read_bytes()
    actual = sha256_bytes(model_bytes)
    if actual != manifest["model_sha256"]:
        raise ModelError(
            f"model file {model_path} does not match its manifest (sha256 {actual[:12]}..., "
            f"manifest says {manifest['model_sha256'][:12]}...): refusing to score with it"
        )
    if model_bytes[:1] == _PICKLE_MAGIC:
        raise ModelError("model file is a Python pickle; only XGBoost's native JSON format is loaded")
    _check_features(manifest["features"])
    expected = model_version(actual, manifest)
    if manifest["model_version"] != expected:
        raise ModelError(
            f"{manifest_path}: model_version {manifest['model_version']} does not match what the model "
            f"scores with ({expected}): the model file or the manifest was changed after training"
        )
    return model_bytes, manifest


def load_checked(model_dir: str | Path) -> CheckedModel:
    """Read, check and load a model directory on the driver, before any task runs."""
    model_bytes, manifest = read_checked_model(model_dir)
    payload = ModelPayload.from_manifest(model_bytes, manifest)
    model = ScoringModel.from_payload(payload)
    names = model.booster.feature_names or []
    if list(names) != list(FEATURE_NAMES):
        raise ModelError("the booster's feature names differ from its manifest's feature list")
    return CheckedModel(manifest, payload, model)


def load_model(model_dir: str | Path) -> ScoringModel:
    """The loaded model of a checked model directory."""
    return load_checked(model_dir).model


def _check_features(spec: list) -> None:
    expected = feature_spec()
    if spec == expected:
        return
    names = [f.get("name") for f in spec if isinstance(f, dict)]
    missing = [f["name"] for f in expected if f["name"] not in names]
    unknown = [n for n in names if n not in FEATURE_NAMES]
    given = {f.get("name"): f for f in spec if isinstance(f, dict)}
    changed = [f["name"] for f in expected if f["name"] in given and given[f["name"]] != f]
    details = []
    if missing:
        details.append(f"missing {', '.join(missing)}")
    if unknown:
        details.append(f"unknown {', '.join(unknown)}")
    if changed:
        details.append(f"changed {', '.join(changed)}")
    if not details:
        details.append("feature order differs")
    raise ModelError(f"model's feature list does not match this schema: {'; '.join(details)}")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
