"""`models:/NAME@ALIAS` and `models:/NAME/VERSION` resolved to a local copy of the registered folder.

The copy is the model folder the training job wrote, as registered (its `model.json`, manifest and
report); the caller (`model.read_checked_model`) then checks it exactly as a local folder. Copies live
in one temporary folder per process, removed when the process exits, and each URI is resolved once per
process: a backfill or a service scores one version from start to end even if the alias moves meanwhile.
Nothing is cached between runs, so nothing stale can be scored: each run downloads the version
(a model folder is a few hundred kB) and checks it.
"""

from __future__ import annotations

import atexit
import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from defaultrisk.errors import ConfigError, ModelError, first_line
from defaultrisk.registry import MODELS_SCHEME, require_mlflow
from defaultrisk.registry.location import Location, active, connect, locate

log = logging.getLogger(__name__)

MODEL_DIR_ARTIFACT = "model_dir"  # the pyfunc artifact that holds the model folder (see register.py)
_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[0-9]+))/?$")
_copies: dict[tuple[str, str], Path] = {}  # by registry and URI
_versions: dict[str, str] = {}  # each resolved URI's version number


@dataclass(frozen=True)
class ModelRef:
    """A parsed `models:/` URI: the registered model's name, and an alias or a version."""

    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, uri: str) -> ModelRef:
        match = _URI.match(uri)
        if not match:
            raise ConfigError(
                f"not a registry model URI: {uri!r} (models:/NAME@ALIAS or models:/NAME/VERSION)"
            )
        return cls(match["name"], match["alias"], match["version"])


def model_version(client, ref: ModelRef):
    """The registry's `ModelVersion` an alias or version number names; a model error when it has none."""
    from mlflow.exceptions import MlflowException

    try:
        if ref.alias is not None:
            return client.get_model_version_by_alias(ref.name, ref.alias)
        return client.get_model_version(ref.name, ref.version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            what = f"alias {ref.alias!r}" if ref.alias is not None else f"version {ref.version}"
            raise ModelError(f"registered model {ref.name!r} has no {what}") from exc
        raise


def local_model_dir(uri: str) -> Path:
    """The checked-out folder behind a `models:/` URI (downloaded once per process and registry)."""
    require_mlflow(f"model URI {uri}")
    ref = ModelRef.parse(uri)
    location = locate()
    key = (str(location), uri)
    if key in _copies:
        return _copies[key]
    try:
        folder, version = _download(location, ref)
    except (ModelError, ConfigError):
        raise
    except Exception as exc:  # the registry's client says why in its own words: one line of them
        raise ModelError(f"cannot load {uri} from the registry at {location}: {first_line(exc)}") from exc
    log.info("%s is version %s of %s (registry %s), copied to %s", uri, version, ref.name, location, folder)
    _copies[key], _versions[uri] = folder, version
    return folder


def describe(model_dir) -> str:
    """A model as an operator reads it: a folder, or a resolved URI with its version number."""
    version = _versions.get(str(model_dir))
    return f"{model_dir} (version {version})" if version else str(model_dir)


def _download(location: Location, ref: ModelRef) -> tuple[Path, str]:
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = connect(location)
    version = model_version(client, ref)
    target = Path(tempfile.mkdtemp(prefix=f"{ref.name}-v{version.version}-", dir=_temp_root()))
    with active(location):
        copy = Path(download_artifacts(f"{MODELS_SCHEME}{ref.name}/{version.version}", dst_path=str(target)))
    pyfunc = Model.load(str(copy)).flavors.get("python_function", {})
    saved = (pyfunc.get("artifacts") or {}).get(MODEL_DIR_ARTIFACT)
    if not saved:
        raise ModelError(f"version {version.version} of {ref.name!r} holds no defaultrisk model folder")
    return copy / saved["path"], version.version


@cache
def _temp_root() -> Path:
    """This process's folder of registry copies, removed when it exits."""
    root = Path(tempfile.mkdtemp(prefix="defaultrisk-registry-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root
