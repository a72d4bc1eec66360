#!/usr/bin/env bash
# Start a Spark standalone cluster on this machine from the pip-installed pyspark: one master and two
# workers, every port and web UI bound to 127.0.0.1 only. PID files, logs and the workers' scratch space
# live under RUN_DIR; scripts/cluster_down.sh RUN_DIR stops exactly the processes started here.
# Waits until the master's JSON status lists every worker ALIVE; the master URL
# (spark://127.0.0.1:PORT) is the last line of stdout.
#
# Usage: scripts/cluster_up.sh [RUN_DIR]   (default: $DEFAULTRISK_CLUSTER_DIR or .cluster in the repo)
# Environment (all optional):
#   DEFAULTRISK_MASTER_PORT, DEFAULTRISK_MASTER_WEBUI_PORT   fixed ports (default: free ones)
#   DEFAULTRISK_WORKERS (2), DEFAULTRISK_WORKER_CORES (1), DEFAULTRISK_WORKER_MEMORY (1g)
#   DEFAULTRISK_CLUSTER_TIMEOUT   seconds to wait for the master and workers (default 90)
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; }
die() { echo "cluster_up: error: $*" >&2; exit 1; }

case "${1:-}" in -h|--help) usage ;; -*) echo "cluster_up: error: unknown option: $1" >&2; usage ;; esac
[ $# -le 1 ] || usage
RUN_DIR="${1:-${DEFAULTRISK_CLUSTER_DIR:-$REPO/.cluster}}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"

VENV="${DEFAULTRISK_VENV:-$REPO/.venv}"
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
PY="$VENV/bin/python"
[ -x "$PY" ] || die "no $PY; run scripts/setup_env.sh first"
command -v java >/dev/null 2>&1 || die "java not found; Spark needs Java 17"
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"

WORKERS="${DEFAULTRISK_WORKERS:-2}"
CORES="${DEFAULTRISK_WORKER_CORES:-1}"
MEMORY="${DEFAULTRISK_WORKER_MEMORY:-1g}"
TIMEOUT="${DEFAULTRISK_CLUSTER_TIMEOUT:-90}"
HOST=127.0.0.1

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
for pidfile in "$RUN_DIR"/*.pid; do
  [ -e "$pidfile" ] || continue
  if alive "$(cat "$pidfile")"; then
    die "a cluster started from $RUN_DIR is still running ($pidfile); stop it: scripts/cluster_down.sh $RUN_DIR"
  fi
  rm -f "$pidfile"
done

# Free loopback ports, held open together so no two are the same; fixed ones may be given instead.
read -r -a PORTS <<<"$("$PY" - "$((2 + 2 * WORKERS))" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)"
MASTER_PORT="${DEFAULTRISK_MASTER_PORT:-${PORTS[0]}}"
MASTER_WEBUI_PORT="${DEFAULTRISK_MASTER_WEBUI_PORT:-${PORTS[1]}}"
MASTER_URL="spark://$HOST:$MASTER_PORT"
STATUS_URL="http://$HOST:$MASTER_WEBUI_PORT/json/"

# If anything below fails, stop whatever was started.
stop_on_failure() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    bash "$REPO/scripts/cluster_down.sh" "$RUN_DIR" >&2 || true
  fi
}
trap stop_on_failure EXIT

# Start one daemon in the background, detached from our streams, with an environment of its own: no
# PYTHONPATH or PYSPARK_* of the caller's leaks in, so executors get Python only from the job's archive.
start() {
  local name="$1" class="$2"
  shift 2
  (
    cd "$RUN_DIR"
    exec env -u PYTHONPATH -u PYSPARK_PYTHON -u PYSPARK_DRIVER_PYTHON -u VIRTUAL_ENV \
      -u SPARK_CONF_DIR -u SPARK_MASTER_HOST -u SPARK_MASTER_PORT -u SPARK_WORKER_PORT \
      SPARK_HOME="$SPARK_HOME" SPARK_LOCAL_IP="$HOST" SPARK_DAEMON_MEMORY=512m \
      SPARK_LOCAL_DIRS="$RUN_DIR/$name/local" \
      SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" \
      "$SPARK_HOME/bin/spark-class" "$class" "$@"
  ) </dev/null >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

# Poll the master's JSON status until it is up with WANT workers ALIVE; fail early if a daemon died.
wait_for() {
  local want="$1"
  "$PY" - "$STATUS_URL" "$want" "$TIMEOUT" "$RUN_DIR" <<'PY'
import glob, json, os, sys, time, urllib.request
url, want, timeout, run_dir = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
deadline = time.monotonic() + timeout
seen = None
while time.monotonic() < deadline:
    for pidfile in glob.glob(os.path.join(run_dir, "*.pid")):
        pid = int(open(pidfile).read())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log = pidfile[:-4] + ".log"
            tail = open(log, errors="replace").read().splitlines()[-15:] if os.path.exists(log) else []
            sys.exit("\n".join([*tail, f"cluster_up: error: {os.path.basename(pidfile)[:-4]} exited; see {log}"]))
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status = json.load(response)
        seen = sum(1 for w in status.get("workers", []) if w.get("state") == "ALIVE")
        if status.get("status") == "ALIVE" and seen >= want:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(f"cluster_up: error: after {timeout:.0f}s the master at {url} lists {seen} ALIVE worker(s), not {want}")
PY
}

echo "cluster_up: starting master $MASTER_URL (web UI http://$HOST:$MASTER_WEBUI_PORT) in $RUN_DIR" >&2
start master org.apache.spark.deploy.master.Master \
  --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_WEBUI_PORT"
wait_for 0

for i in $(seq 1 "$WORKERS"); do
  mkdir -p "$RUN_DIR/worker-$i/local"
  start "worker-$i" org.apache.spark.deploy.worker.Worker \
    --host "$HOST" --port "${PORTS[2 * i]}" --webui-port "${PORTS[2 * i + 1]}" \
    --cores "$CORES" --memory "$MEMORY" --work-dir "$RUN_DIR/worker-$i" "$MASTER_URL"
done
wait_for "$WORKERS"

echo "$MASTER_URL" >"$RUN_DIR/master-url"
echo "cluster_up: $WORKERS worker(s) ALIVE ($CORES core(s), $MEMORY each); stop with scripts/cluster_down.sh $RUN_DIR" >&2
echo "$MASTER_URL"
