#!/usr/bin/env bash
# The optional Airflow stage: install Apache Airflow into a throwaway virtualenv (slow the first time:
# several hundred packages) and check, with Airflow itself, that docs/airflow/defaultrisk_dags.py parses and
# that its tasks render the documented spark-submit commands (tests/test_airflow_dag.py, marker `airflow`),
# then renders the nightly tasks for one date with Airflow's CLI.
# The default test run never needs Airflow; this script is the only thing that runs those tests.
#
# Usage: scripts/check_dag.sh [PYTEST ARGUMENT...]
#   AIRFLOW_VERSION (default 3.3.2) and AIRFLOW_VENV (default build/airflow-venv) may be set.
set -euo pipefail
cd "$(dirname "$0")/.."

AIRFLOW_VERSION="${AIRFLOW_VERSION:-3.3.2}"
AIRFLOW_VENV="${AIRFLOW_VENV:-build/airflow-venv}"
PYTHON="${PYTHON:-python3}"

stamp="$AIRFLOW_VENV/.airflow-$AIRFLOW_VERSION"
if [ ! -f "$stamp" ]; then
  rm -rf "$AIRFLOW_VENV"
  "$PYTHON" -m venv "$AIRFLOW_VENV"
  "$AIRFLOW_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # The standard provider carries the sensors and operators the DAGs use (part of Airflow 3's core set).
  "$AIRFLOW_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "apache-airflow==$AIRFLOW_VERSION" apache-airflow-providers-standard "pytest>=8"
  touch "$stamp"
fi

# Airflow keeps its state (a SQLite database, logs) under AIRFLOW_HOME: a throwaway one per check. The
# tests need no conftest (no Spark, no defaultrisk), only Airflow and the DAG file.
AIRFLOW_HOME="$(mktemp -d)"
export AIRFLOW_HOME
trap 'rm -rf "$AIRFLOW_HOME"' EXIT
export AIRFLOW__CORE__LOAD_EXAMPLES=False
"$AIRFLOW_VENV/bin/python" -c 'import airflow; print("airflow", airflow.__version__)'
"$AIRFLOW_VENV/bin/python" -m pytest --noconftest -m airflow -p no:cacheprovider tests/test_airflow_dag.py "$@"

# And as an operator would look: Airflow's own CLI renders the nightly task for one date (needs its
# database, created here in the throwaway home).
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/docs/airflow"
"$AIRFLOW_VENV/bin/airflow" db migrate > "$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log" >&2; exit 1; }
"$AIRFLOW_VENV/bin/airflow" tasks render defaultrisk_pd_nightly wait_for_input 2026-11-24 2>/dev/null | grep -A2 "property: filepath" | tail -n 1
"$AIRFLOW_VENV/bin/airflow" tasks render defaultrisk_pd_nightly score 2026-11-24 2>/dev/null | grep -A2 "property: op_kwargs" | tail -n 1
