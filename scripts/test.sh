#!/usr/bin/env bash
# Set up the environment, lint, and run the test suite in stages. Extra arguments go to every pytest stage.
#   stage 1 (gate): the in-session tests of functions and transforms on one local SparkSession
#   stage 2: whole jobs (in this process or their own), the loopback cluster, the killed-worker checks
# Timing and benchmark tests (marker `nightly`) run only with DEFAULTRISK_NIGHTLY=1.
# Each stage ends with its 25 slowest tests (set-up, call and teardown apiece): where the time goes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
VENV="${DEFAULTRISK_VENV:-.venv}"
# Spark's Python workers must run the same interpreter (and so the same pandas, pyarrow, XGBoost).
export PYSPARK_PYTHON="$PWD/$VENV/bin/python"
export PYSPARK_DRIVER_PYTHON="$PYSPARK_PYTHON"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
echo "== stage 1: in-session tests"
"$VENV/bin/python" -m pytest -m "not slow and not job and not nightly" --durations=25 "$@"
echo "== stage 2: whole jobs, cluster"
"$VENV/bin/python" -m pytest -m "(slow or job) and not nightly" --durations=25 "$@"
if [ "${DEFAULTRISK_NIGHTLY:-0}" = "1" ]; then
  echo "== nightly: timing and benchmarks"
  "$VENV/bin/python" -m pytest -m "nightly" --durations=25 "$@"
fi
