#!/usr/bin/env bash
# Build a relocatable archive of the jobs' pinned Python environment, for Spark's executors
# (`spark-submit --archives ARCHIVE#environment`, as scripts/submit.sh does).
#
# A fresh virtualenv is made from the driver's own interpreter, the package is installed into it
# non-editable, every dependency pinned by requirements.txt (`-c`), and venv-pack archives it. Only what
# the jobs need at run time goes in: no pyspark (the cluster's Spark supplies it to its Python workers),
# no test or lint tools. Every package in the archive must have the driver's version, so executors run
# the same Python, pandas, pyarrow and XGBoost as the driver.
#
# The archive is rebuilt only when requirements.txt, setup.py, lib/ or this script change; otherwise its
# path is printed straight away. The archive's path is the last line of stdout.
#
# Usage: scripts/pack_env.sh [--output PATH] [--python-prefix DIR] [--force]
#   --output PATH         archive to write (default: $DEFAULTRISK_ENV_ARCHIVE or build/env.tar.gz)
#   --python-prefix DIR   prefix of the Python 3.11 install on the cluster's nodes (e.g. /usr), when it
#                         is not where the driver's interpreter lives; see docs/cluster.md
#   --force               rebuild even if the archive is up to date
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; }
die() { echo "pack_env: error: $*" >&2; exit 1; }

VENV="${DEFAULTRISK_VENV:-.venv}"
OUTPUT="${DEFAULTRISK_ENV_ARCHIVE:-build/env.tar.gz}"
PYTHON_PREFIX=""
FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --output) [ $# -ge 2 ] || usage; OUTPUT="$2"; shift 2 ;;
    --python-prefix) [ $# -ge 2 ] || usage; PYTHON_PREFIX="$2"; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) usage ;;
    *) echo "pack_env: error: unknown argument: $1" >&2; usage ;;
  esac
done

[ -x "$VENV/bin/python" ] || die "no $VENV/bin/python; run scripts/setup_env.sh first"
[ -x "$VENV/bin/venv-pack" ] || die "venv-pack is not installed in $VENV; run scripts/setup_env.sh"
case "$OUTPUT" in *.tar.gz) ;; *) die "--output must end in .tar.gz: $OUTPUT" ;; esac
if [ -n "$PYTHON_PREFIX" ] && [ "${PYTHON_PREFIX#/}" = "$PYTHON_PREFIX" ]; then
  die "--python-prefix must be an absolute path: $PYTHON_PREFIX"
fi

# The driver's base interpreter (not the venv's symlink), so the archive holds the very same Python.
BASE_PYTHON="$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')"

mkdir -p "$(dirname "$OUTPUT")"
OUTPUT="$(cd "$(dirname "$OUTPUT")" && pwd)/$(basename "$OUTPUT")"
STAMP="$OUTPUT.inputs"

inputs_digest() {
  {
    "$BASE_PYTHON" -VV
    echo "python-prefix=$PYTHON_PREFIX"
    sha256sum requirements.txt setup.py pyproject.toml scripts/pack_env.sh
    find lib conf -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name '*.pyc' -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
}

# One build at a time per archive path: a test run and a developer may ask for it together.
exec 9>"$OUTPUT.lock"
flock 9

WANT="$(inputs_digest)"
if [ "$FORCE" = 0 ] && [ -f "$OUTPUT" ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$WANT" ]; then
  echo "pack_env: $OUTPUT is up to date" >&2
  echo "$OUTPUT"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/defaultrisk-pack.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
STARTED=$SECONDS

# Build from a copy of the sources, so nothing (build/, *.egg-info) is written into the working tree.
# The copy has no .git, so the version setuptools-scm reads from the checkout is handed to the build.
mkdir -p "$WORK/src"
cp setup.py pyproject.toml "$WORK/src/"
tar -C . --exclude='__pycache__' --exclude='*.egg-info' --exclude='*.pyc' -cf - lib conf | tar -C "$WORK/src" -xf -
VERSION="$("$VENV/bin/python" -c 'from setuptools_scm import get_version; print(get_version(root="."))')" \
  || die "cannot read the package version from git (setuptools-scm)"
export SETUPTOOLS_SCM_PRETEND_VERSION_FOR_DEFAULTRISK="$VERSION"

ENV_DIR="$WORK/env"
echo "pack_env: creating $ENV_DIR with $BASE_PYTHON" >&2
"$BASE_PYTHON" -m venv "$ENV_DIR"
PIP=("$ENV_DIR/bin/python" -m pip --disable-pip-version-check --quiet)
"${PIP[@]}" install --constraint requirements.txt "$WORK/src" >&2 \
  || die "installing the package with the pinned requirements failed (see above)"

# Every package in the archive must be pinned and match the driver's environment exactly.
"$ENV_DIR/bin/python" - "$VENV/bin/python" requirements.txt <<'PY' >&2 || die "the archive would not match the driver"
import json, re, subprocess, sys
from importlib import metadata

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

driver_python, requirements = sys.argv[1], sys.argv[2]
script = "import json; from importlib import metadata as m; "
script += "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
driver = {canonical(k): v for k, v in json.loads(subprocess.check_output([driver_python, "-c", script])).items()}
pins = {}
for line in open(requirements):
    line = line.split("#", 1)[0].split(";", 1)[0].strip()  # environment markers aside
    if "==" in line:
        name, version = line.split("==", 1)
        pins[canonical(name)] = version.strip()
problems = []
for dist in metadata.distributions():
    name, version = canonical(dist.metadata["Name"]), dist.version
    if name in ("pip", "setuptools", "defaultrisk"):
        continue
    if pins.get(name) != version:
        problems.append(f"{name}=={version} is not pinned in {requirements}")
    elif driver.get(name) != version:
        problems.append(f"{name}=={version} but the driver has {driver.get(name)}: run scripts/setup_env.sh")
if sys.version != subprocess.check_output([driver_python, "-c", "import sys; print(sys.version)"], text=True).strip():
    problems.append("the archive's Python differs from the driver's")
for problem in problems:
    print(f"pack_env: {problem}")
sys.exit(1 if problems else 0)
PY

# The executors' view: Spark's Python workers get pyspark from the cluster's Spark, the rest from here.
SPARK_PY="$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "python", "lib"))')"
PYTHONPATH="$(printf '%s:' "$SPARK_PY"/*.zip)" "$ENV_DIR/bin/python" -c \
  'import defaultrisk.scoring.udf, pandas, pyarrow, xgboost' \
  || die "the packed environment cannot import the scoring code"

# The libraries' own test suites are never imported by the jobs: leaving them out makes every executor's
# unpacking (once per application) a sixth quicker.
PACK=("$VENV/bin/venv-pack" --prefix "$ENV_DIR" --output "$WORK/env.tar.gz" --compress-level 1 --quiet
  --exclude 'lib/python*/site-packages/*/tests/*')
if [ -n "$PYTHON_PREFIX" ]; then
  PACK+=(--python-prefix "$PYTHON_PREFIX")
fi
"${PACK[@]}" >&2
chmod 644 "$WORK/env.tar.gz"
mv -f "$WORK/env.tar.gz" "$OUTPUT"
echo "$WANT" > "$STAMP"
echo "pack_env: wrote $OUTPUT ($(du -h "$OUTPUT" | cut -f1)) in $((SECONDS - STARTED))s" >&2
echo "$OUTPUT"
