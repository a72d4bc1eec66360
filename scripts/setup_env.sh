#!/usr/bin/env bash
# Create or update the project's virtualenv (.venv) from the pinned requirements; idempotent and quick
# when nothing changed. Needs Python 3.11+ and Java 17 on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DEFAULTRISK_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if ! command -v java >/dev/null 2>&1; then
  echo "setup: java not found; Spark needs Java 17 (e.g. apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.defaultrisk-requirements"
want="$(cat requirements.txt setup.py pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # The package itself, editable, built with the pinned setuptools and setuptools-scm just installed
  # (its version comes from git: see pyproject.toml); installs the `defaultrisk` command.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
