#!/usr/bin/env bash
# Stop the standalone cluster that scripts/cluster_up.sh started from RUN_DIR: only the processes named
# in its PID files (workers first, then the master), TERM and then KILL after a grace period. Logs stay;
# the copies of the job's environment unpacked for each application are removed. Safe to run twice.
#
# Usage: scripts/cluster_down.sh [RUN_DIR]   (default: $DEFAULTRISK_CLUSTER_DIR or .cluster in the repo)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; }

case "${1:-}" in -h|--help) usage ;; -*) echo "cluster_down: error: unknown option: $1" >&2; usage ;; esac
[ $# -le 1 ] || usage
RUN_DIR="${1:-${DEFAULTRISK_CLUSTER_DIR:-$REPO/.cluster}}"
if [ ! -d "$RUN_DIR" ]; then
  echo "cluster_down: no run directory $RUN_DIR: nothing to stop" >&2
  exit 0
fi
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
GRACE="${DEFAULTRISK_CLUSTER_GRACE:-20}"

# A PID is ours only if it still runs the Spark daemon its file names (guards against a reused PID).
ours() {
  local pid="$1" class="$2"
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$class"
}

stop() {
  local class="$1"
  shift
  local pids=() pidfile pid
  for pidfile in "$@"; do
    [ -e "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && ours "$pid" "$class"; then
      echo "cluster_down: stopping $(basename "$pidfile" .pid) (pid $pid)" >&2
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  local waited=0
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt $((GRACE * 10)) ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "cluster_down: pid $pid did not stop in ${GRACE}s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pidfile in "$@"; do
    rm -f "$pidfile"
  done
}

shopt -s nullglob
pidfiles=("$RUN_DIR"/*.pid)
if [ ${#pidfiles[@]} -eq 0 ]; then
  echo "cluster_down: no PID files in $RUN_DIR: nothing to stop" >&2
  exit 0
fi
stop org.apache.spark.deploy.worker.Worker "$RUN_DIR"/worker-*.pid
stop org.apache.spark.deploy.master.Master "$RUN_DIR"/master.pid
rm -f "$RUN_DIR/master-url"

# Each executor unpacked its own copy of the environment archive; the executors' logs are kept.
for env_dir in "$RUN_DIR"/worker-*/app-*/*/environment; do
  rm -rf "$env_dir"
done
echo "cluster_down: stopped the cluster of $RUN_DIR (logs kept there)" >&2
