"""defaultrisk: nightly batch scoring of customers' probability of default on Apache Spark."""

from __future__ import annotations

import functools
from importlib import metadata
from pathlib import Path

# The version answers "which code scored the 14th?" (the run log's code_version), so it comes from git:
# setuptools-scm derives it from the commit (and a `.dYYYYMMDD` suffix for uncommitted changes) and
# writes it into the wheel's metadata at build time. From a checkout it is asked live, since an editable
# install's metadata keeps the version of the day it was installed.


@functools.cache
def _version() -> str:
    here = Path(__file__).resolve()
    checkout = here.parents[2]
    if here.parents[1].name == "lib" and (checkout / ".git").exists():
        try:
            from setuptools_scm import get_version

            return get_version(root=str(checkout))
        except Exception:  # no setuptools-scm or no git here: the installed metadata below
            pass
    try:
        return metadata.version("defaultrisk")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> str:
    # Computed on first use only: Spark's Python workers import the package but never ask.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
