"""The model artefact: XGBoost's native JSON file plus a manifest, checked before every use.

A model directory holds `model.json` (never a pickle), `manifest.json` (what the model is, what it
was trained on, its threshold, calibration, metrics and the file's sha256) and the training report.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import xgboost as xgb

from defaultrisk.errors import ModelError
from defaultrisk.features import xgb_feature_types
from defaultrisk.schema import FEATURE_NAMES, FEATURES, feature_spec

MODEL_FILE = "model.json"
MANIFEST_FILE = "manifest.json"
MODEL_FORMAT = "xgboost-json"
MANIFEST_FORMAT_VERSION = 1
PRIOR_CORRECTION = "prior_correction"
PLATT = "platt"
ISOTONIC = "isotonic"
# Fraction of the non-defaulters kept inside Spark before training (sampling = "spark"): applied as a
# prior correction after the method's map, so every method ends at the real base rate.
SPARK_NEGATIVE_SAMPLING_RATE = "spark_negative_sampling_rate"
# Platt scaling reads the raw probability as log-odds; this keeps a raw 0 or 1 finite.
LOGIT_CLIP = 1e-12
_PICKLE_MAGIC = b"\x80"
_LIBRARIES = ("xgboost-cpu", "xgboost", "numpy", "pandas", "pyarrow", "scikit-learn", "imbalanced-learn")


def prior_correction(p_sampled: np.ndarray, negative_sampling_rate: float) -> np.ndarray:
    """Map a pd learnt on undersampled data back to the real base rate.

    Keeping a fraction `b` of the non-defaulters multiplies the odds of default by 1/b, so the
    true probability is b*p / (b*p - p + 1) (Dal Pozzolo et al., 2015). With b = 1 it is the identity.
    `b` may also be an array, one rate per row (out-of-fold predictions of several fold models).
    """
    p = np.asarray(p_sampled, dtype=np.float64)
    b = np.asarray(negative_sampling_rate, dtype=np.float64)
    return b * p / (b * p - p + 1.0)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def apply_calibration(raw: np.ndarray, calibration: dict) -> np.ndarray:
    """The pd for the booster's raw probabilities, by the manifest's calibration map.

    The map is plain numbers in the manifest: prior correction (`negative_sampling_rate`), Platt scaling
    (pd = sigmoid(a * logit(raw) + b)) or isotonic (piecewise linear through `x` -> `y`, flat outside).
    A model trained on rows thinned in Spark carries `spark_negative_sampling_rate` as well: the method's
    map gives the pd of the thinned population, and a prior correction by that rate takes it to the real
    one (after prior correction the two rates simply multiply: odds scale by 1/b each time).
    """
    p = np.asarray(raw, dtype=np.float64)
    method = calibration["method"]
    if method == PRIOR_CORRECTION:
        pd_ = prior_correction(p, calibration["negative_sampling_rate"])
    elif method == PLATT:
        z = float(calibration["a"]) * logit(p) + float(calibration["b"])
        pd_ = 1.0 / (1.0 + np.exp(-z))
    elif method == ISOTONIC:
        x, y = np.asarray(calibration["x"], np.float64), np.asarray(calibration["y"], np.float64)
        pd_ = np.interp(p, x, y)
    else:
        raise ModelError(f"unknown calibration method {method!r}")
    if SPARK_NEGATIVE_SAMPLING_RATE in calibration:
        return prior_correction(pd_, calibration[SPARK_NEGATIVE_SAMPLING_RATE])
    return pd_


def check_calibration(calibration: dict) -> None:
    """Refuse, before any task runs, a calibration map that `apply_calibration` could not apply.

    A key this code does not know is refused too: it could only mean a map that changes the pd in a way
    this version would silently skip.
    """
    needs = {PRIOR_CORRECTION: ("negative_sampling_rate",), PLATT: ("a", "b"), ISOTONIC: ("x", "y")}
    method = calibration.get("method") if isinstance(calibration, dict) else None
    if method not in needs:
        raise ModelError(f"unknown calibration method {method!r}; expected one of {', '.join(needs)}")
    absent = [key for key in needs[method] if key not in calibration]
    if absent:
        raise ModelError(f"{method} calibration lacks {', '.join(absent)}")
    unknown = sorted(set(calibration) - {"method", *needs[method], SPARK_NEGATIVE_SAMPLING_RATE})
    if unknown:
        raise ModelError(f"{method} calibration has unknown key(s) {', '.join(unknown)}")
    for key in ("negative_sampling_rate", SPARK_NEGATIVE_SAMPLING_RATE):
        value = calibration.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
            raise ModelError(f"{method} calibration needs a {key} in (0, 1], not {value!r}")
    if method == ISOTONIC:
        x, y = np.asarray(calibration["x"], np.float64), np.asarray(calibration["y"], np.float64)
        if x.ndim != 1 or len(x) < 2 or len(x) != len(y) or np.any(np.diff(x) <= 0):
            raise ModelError("isotonic calibration needs x and y of equal length >= 2 with x increasing")
        if np.any(np.diff(y) < 0) or y[0] < 0.0 or y[-1] > 1.0:
            raise ModelError("isotonic calibration needs y non-decreasing within [0, 1]")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class ScoringModel:
    """A loaded, checked model: the booster plus what the manifest says about it."""

    booster: xgb.Booster
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["model_version"]

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"]["value"])

    @property
    def calibration(self) -> dict:
        return self.manifest["calibration"]

    def predict_pd(self, matrix: np.ndarray) -> np.ndarray:
        """Calibrated pd (float64) for a feature matrix built by `features.feature_matrix`."""
        if len(matrix) == 0:
            return np.empty(0, dtype=np.float64)
        raw = self.booster.inplace_predict(matrix, validate_features=False)
        return apply_calibration(raw, self.calibration)

    @classmethod
    def from_bytes(cls, model_bytes: bytes, manifest: dict, nthread: int | None = None) -> ScoringModel:
        """Load a booster from its checked file content (on a worker, from the driver's copy)."""
        if model_bytes[:1] == _PICKLE_MAGIC:
            raise ModelError("model file is a Python pickle; only XGBoost's native JSON format is loaded")
        check_calibration(manifest["calibration"])
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(model_bytes))
        except xgb.core.XGBoostError as exc:
            raise ModelError(f"model file is not a valid XGBoost model: {str(exc).splitlines()[0]}") from exc
        if nthread is not None:
            booster.set_param({"nthread": nthread})
        return cls(booster=booster, manifest=manifest)


def model_version(model_sha256: str, manifest_fields: dict) -> str:
    """Same model file, schema, calibration and threshold give the same version, on any machine."""
    pinned = {
        "model_sha256": model_sha256,
        "features": manifest_fields["features"],
        "calibration": manifest_fields["calibration"],
        "threshold": manifest_fields["threshold"]["value"],
    }
    return "pd-" + sha256_bytes(json.dumps(pinned, sort_keys=True).encode())[:12]


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
        "library_versions": library_versions(),
    }
    manifest["model_version"] = model_version(model_sha, manifest)
    (model_dir / MODEL_FILE).write_bytes(model_bytes)
    _write_json(model_dir / MANIFEST_FILE, manifest)
    return manifest


def read_checked_model(model_dir: str | Path) -> tuple[bytes, dict]:
    """The model file's bytes and its manifest, after every check that needs no Spark task.

    Refuses a missing or unreadable manifest, a model file whose sha256 differs from the manifest's,
    a pickle, and a model trained on a feature list other than this schema's.
    """
    model_dir = Path(model_dir)
    manifest_path = model_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ModelError(f"no {MANIFEST_FILE} in model directory {model_dir}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path} is not valid JSON: {exc}") from exc
    required = ("model_version", "model_file", "model_sha256", "features", "threshold", "calibration")
    absent = [key for key in required if key not in manifest]
    if absent:
        raise ModelError(f"{manifest_path} lacks {', '.join(absent)}")
    if manifest.get("model_format") != MODEL_FORMAT:
        found = manifest.get("model_format")
        raise ModelError(f"unsupported model format {found!r}; expected {MODEL_FORMAT}")
    model_path = model_dir / manifest["model_file"]
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
    return model_bytes, manifest


def load_model(model_dir: str | Path) -> ScoringModel:
    """Read, check and load a model directory on the driver."""
    model_bytes, manifest = read_checked_model(model_dir)
    model = ScoringModel.from_bytes(model_bytes, manifest)
    names = model.booster.feature_names or []
    if list(names) != list(FEATURE_NAMES):
        raise ModelError("the booster's feature names differ from its manifest's feature list")
    return model


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
