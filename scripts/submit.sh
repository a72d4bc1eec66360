#!/usr/bin/env bash
# Submit a job to a Spark cluster with the jobs' packed Python environment, so the executors run the same
# Python, pandas, pyarrow, XGBoost and defaultrisk as the driver:
#   --archives ARCHIVE#environment      unpacked as ./environment in every executor's (and a cluster-mode
#                                       driver's) working directory
#   PYSPARK_PYTHON=./environment/bin/python (also as spark.pyspark.python)
#   --properties-file conf/spark-cluster.conf
#   SPARK_CONF_DIR=conf (unless set): Spark's JVM logs at WARN through conf/log4j2.properties
# The archive is built or reused by scripts/pack_env.sh unless --archive is given. In client mode (the
# default) the driver runs here with the repo's .venv (or $PYSPARK_DRIVER_PYTHON). Options other than the
# ones below go to spark-submit as they are; everything after the job file goes to the job.
#
# Usage: scripts/submit.sh --master URL [--archive PATH|URI] [--properties-file FILE] [SPARK-SUBMIT OPTION...] JOB.py [JOB ARGUMENT...]
#   e.g. scripts/submit.sh --master spark://127.0.0.1:7077 jobs/score.py --input ... --snapshot-date ...
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"

usage() { sed -n 's/^# Usage: /usage: /p' "$0" >&2; exit 2; }
die() { echo "submit: error: $*" >&2; exit 2; }

VENV="${DEFAULTRISK_VENV:-$REPO/.venv}"
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
MASTER=""
ARCHIVE=""
PROPERTIES="$REPO/conf/spark-cluster.conf"
DEPLOY_MODE=client
USER_ARCHIVES=""
PASS=()
# spark-submit options that take no value; every other option takes one.
FLAGS=" --verbose -v --supervise --kill --status "

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage ;;
    --master) [ $# -ge 2 ] || usage; MASTER="$2"; shift 2 ;;
    --master=*) MASTER="${1#*=}"; shift ;;
    --archive) [ $# -ge 2 ] || usage; ARCHIVE="$2"; shift 2 ;;
    --archive=*) ARCHIVE="${1#*=}"; shift ;;
    --properties-file) [ $# -ge 2 ] || usage; PROPERTIES="$2"; shift 2 ;;
    --properties-file=*) PROPERTIES="${1#*=}"; shift ;;
    --archives) [ $# -ge 2 ] || usage; USER_ARCHIVES="$2"; shift 2 ;;
    --archives=*) USER_ARCHIVES="${1#*=}"; shift ;;
    --deploy-mode) [ $# -ge 2 ] || usage; DEPLOY_MODE="$2"; PASS+=("$1" "$2"); shift 2 ;;
    --deploy-mode=*) DEPLOY_MODE="${1#*=}"; PASS+=("$1"); shift ;;
    --*=*) PASS+=("$1"); shift ;;
    -*)
      if [[ "$FLAGS" == *" $1 "* ]]; then
        PASS+=("$1"); shift
      else
        [ $# -ge 2 ] || die "option $1 needs a value"
        PASS+=("$1" "$2"); shift 2
      fi
      ;;
    *) break ;;
  esac
done

[ $# -ge 1 ] || { echo "submit: error: no job file given" >&2; usage; }
JOB="$1"
shift
case "$JOB" in *.py) ;; *) die "the job must be a Python file (jobs/train.py, jobs/score.py), not $JOB" ;; esac
case "$JOB" in *://*) ;; *) [ -f "$JOB" ] || die "job file not found: $JOB" ;; esac
[ -n "$MASTER" ] || die "--master URL is required (spark://HOST:PORT, yarn, k8s://https://HOST:PORT)"
case "$MASTER" in
  local|local\[*) die "--master $MASTER is local mode: run python $JOB ... instead (conf/spark-local.conf)" ;;
esac
[ -f "$PROPERTIES" ] || die "properties file not found: $PROPERTIES"
[ -x "$VENV/bin/spark-submit" ] || die "no $VENV/bin/spark-submit; run scripts/setup_env.sh first"

# spark-submit finds Spark through the driver's Python; in cluster mode that Python is the archive's.
SPARK_HOME="${SPARK_HOME:-$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_HOME

if [ -z "$ARCHIVE" ]; then
  ARCHIVE="$(bash "$REPO/scripts/pack_env.sh" | tail -n 1)"
fi
case "$ARCHIVE" in
  *://*) ;;  # a remote archive (hdfs://, s3a://, https://) is fetched by the cluster
  *) [ -f "$ARCHIVE" ] || die "environment archive not found: $ARCHIVE (build it: scripts/pack_env.sh)" ;;
esac
ARCHIVES="$ARCHIVE#environment"
if [ -n "$USER_ARCHIVES" ]; then
  ARCHIVES="$USER_ARCHIVES,$ARCHIVES"
fi

# Executors (and a cluster-mode driver) run the archive's interpreter, relative to their working directory.
# The environment variable is what PySpark reads; the property wins over any other setting of it.
export PYSPARK_PYTHON=./environment/bin/python
CONFS=(--conf "spark.pyspark.python=$PYSPARK_PYTHON")
case "$DEPLOY_MODE" in
  client)
    export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$VENV/bin/python}"
    CONFS+=(--conf "spark.pyspark.driver.python=$PYSPARK_DRIVER_PYTHON")
    ;;
  cluster)
    # The driver runs in a container beside the unpacked archive (YARN's application master reads its
    # environment from spark.yarn.appMasterEnv.*; other cluster managers ignore that property).
    unset PYSPARK_DRIVER_PYTHON
    CONFS+=(--conf "spark.pyspark.driver.python=$PYSPARK_PYTHON"
      --conf "spark.yarn.appMasterEnv.PYSPARK_PYTHON=$PYSPARK_PYTHON")
    ;;
  *) die "--deploy-mode must be client or cluster, not $DEPLOY_MODE" ;;
esac

# Spark's own logging at WARN (conf/log4j2.properties): the launcher puts SPARK_CONF_DIR on the classpath
# of the JVM it starts (the client-mode driver), where log4j2 finds the file. A SPARK_CONF_DIR already set
# (a cluster's spark-defaults.conf, spark-env.sh) is kept; copy log4j2.properties there to get the same.
export SPARK_CONF_DIR="${SPARK_CONF_DIR:-$REPO/conf}"
if [ "$DEPLOY_MODE" = cluster ] && [ "$MASTER" = yarn ]; then
  # A YARN cluster-mode driver starts in a container where --files are already in its working directory.
  DRIVER_OPTS="$(sed -n 's/^spark\.driver\.extraJavaOptions[[:space:]=]*//p' "$PROPERTIES" | tail -n 1)"
  CONFS+=(--files "$REPO/conf/log4j2.properties"
    --conf "spark.driver.extraJavaOptions=$DRIVER_OPTS -Dlog4j2.configurationFile=log4j2.properties")
fi

# A master on loopback: the driver binds to loopback too (its RPC, block manager and web UI).
case "$MASTER" in
  spark://127.0.0.1:*|spark://localhost:*)
    export SPARK_LOCAL_IP=127.0.0.1
    CONFS+=(--conf spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1)
    ;;
esac

CMD=("$VENV/bin/spark-submit" --master "$MASTER" --properties-file "$PROPERTIES" --archives "$ARCHIVES"
  "${CONFS[@]}" ${PASS[@]+"${PASS[@]}"} "$JOB" "$@")
echo "submit: ${CMD[*]}" >&2
exec "${CMD[@]}"
