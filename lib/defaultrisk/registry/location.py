"""Where the registry is: one rule for every command, and the client that talks to it.

In order: a command's `--registry DIR_OR_URI`; else `MLFLOW_TRACKING_URI` (a team's tracking server,
its registry the same unless `MLFLOW_REGISTRY_URI` says otherwise); else `DEFAULTRISK_REGISTRY=DIR`.
A folder is the local registry: a SQLite file `DIR/mlflow.db` and the artifacts under
`DIR/artifacts` (never MLflow's `./mlruns` in whatever folder the command ran from).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from defaultrisk.errors import ConfigError
from defaultrisk.registry import require_mlflow

REGISTRY_ENV = "DEFAULTRISK_REGISTRY"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
REGISTRY_URI_ENV = "MLFLOW_REGISTRY_URI"
DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "artifacts"
EXPERIMENT = "defaultrisk"
# MLflow retries a failed request 7 times with a doubling back-off (minutes against a server that is
# down); two retries answer "unreachable" in seconds. A flaky network can set more.
_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
_RETRIES = "2"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Location:
    """A registry: its tracking and registry URIs, and where a local one keeps artifacts."""

    tracking_uri: str
    registry_uri: str
    folder: Path | None = None  # the local registry's folder; None for a server

    @property
    def artifact_location(self) -> str | None:
        return (self.folder / ARTIFACTS_DIR).as_uri() if self.folder else None

    def __str__(self) -> str:
        return str(self.folder) if self.folder else self.tracking_uri


def local(folder: str | Path) -> Location:
    """The local registry in `folder` (made absolute: the SQLite URI must not depend on the cwd)."""
    folder = Path(folder).expanduser().resolve()
    uri = f"sqlite:///{folder / DB_FILE}"
    return Location(uri, uri, folder)


def locate(option: str | None = None) -> Location:
    """The registry a command uses (see the module's docstring); a usage error when none is named."""
    if option:
        if _SCHEME.match(option):
            return Location(option, option)
        return local(option)
    tracking = os.environ.get(TRACKING_ENV)
    if tracking:
        return Location(tracking, os.environ.get(REGISTRY_URI_ENV) or tracking)
    folder = os.environ.get(REGISTRY_ENV)
    if folder:
        return local(folder)
    raise ConfigError(
        f"no model registry named: give --registry DIR_OR_URI where the command has it, set "
        f"{TRACKING_ENV} to a tracking server, or {REGISTRY_ENV}=DIR for a local registry"
    )


def connect(location: Location, create: bool = False):
    """An `MlflowClient` on the registry (MLflow's fluent calls go through `active`).

    A local registry that does not exist is created only when `create` (training registers); reading
    from a folder that holds none is a model error, not an empty registry."""
    require_mlflow()
    from mlflow import MlflowClient

    from defaultrisk.errors import ModelError

    if location.folder is not None:
        if create:
            (location.folder / ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
        elif not (location.folder / DB_FILE).is_file():
            raise ModelError(f"no model registry in {location.folder} (no {DB_FILE})")
    os.environ.setdefault(_RETRIES_ENV, _RETRIES)
    return MlflowClient(location.tracking_uri, location.registry_uri)


@contextmanager
def active(location: Location) -> Iterator[None]:
    """MLflow's process-wide URIs (which its fluent calls use: runs, `log_model`, `models:/`
    downloads) on `location` for the block, then as they were. MLflow also writes them to the
    environment, where `locate` would read them for the next command of a long-lived process."""
    mlflow = require_mlflow()
    saved = {name: os.environ.get(name) for name in (TRACKING_ENV, REGISTRY_URI_ENV)}
    mlflow.set_tracking_uri(location.tracking_uri)
    mlflow.set_registry_uri(location.registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def experiment_id(client, location: Location, name: str = EXPERIMENT) -> str:
    """The training runs' experiment, created on first use; a local one keeps its artifacts in the
    registry's folder."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=location.artifact_location)
