"""The job runner: what every job does around its pipeline.

Logging, config, the session, a heartbeat, signals, exit codes and the summary line. Each room's
`command.py` calls `run_job`; the command line (`cli.py`) lists the commands and sits above them.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import SparkSession

import defaultrisk
from defaultrisk.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    INTERRUPTED,
    TERMINATED,
    DefaultRiskError,
    Terminated,
    first_line,
    stopped_by,
    warning_exit,
)
from defaultrisk.progress import Heartbeat
from defaultrisk.session import build_session
from defaultrisk.settings import CONF_DIR

log = logging.getLogger("defaultrisk")
Config = TypeVar("Config")


def configure_logging() -> None:
    """The product logs at INFO to stderr; libraries (py4j, Spark's Python side) only warnings."""
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.setLevel(logging.INFO)


def _use_shipped_log4j() -> None:
    """A local session's JVM logs Spark at WARN through `conf/log4j2.properties`.

    Spark's launcher puts `$SPARK_CONF_DIR` on the JVM's classpath, where log4j2 finds the file; this
    must be set before the JVM starts, and is left alone when the caller chose a directory. Under
    spark-submit the JVM is already running and the launcher's own settings apply.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ and (CONF_DIR / "log4j2.properties").exists():
        os.environ.setdefault("SPARK_CONF_DIR", str(CONF_DIR))


def run_job(
    app_name: str,
    load_config: Callable[[], Config],
    pipeline: Callable[[SparkSession, Config], dict],
    spark: SparkSession | None = None,
) -> int:
    """Load config, build the session, run the pipeline, print its JSON summary as the last stdout line.

    A typed error becomes its exit code and one line on stderr; anything else exits 1. A run that
    finished but needs a look (a partial backfill, drift over the limit) prints its summary, a warning
    line on stderr, and exits with that case's code. A session passed in belongs to the caller and is
    left running.
    """
    configure_logging()
    own_session = spark is None
    stops = _Stops()
    previous_term = _on_signal(signal.SIGTERM, stops.terminate)
    previous_int = None
    summary, code, reason = None, EXIT_OK, ""
    try:
        cfg = load_config()
        if own_session:
            _use_shipped_log4j()
            spark = build_session(app_name)
        # After the session: PySpark's own Ctrl-C handler (cancel the Spark jobs) still runs, after ours.
        previous_int = stops.pyspark_on_int = _on_signal(signal.SIGINT, stops.interrupt)
        sc = spark.sparkContext
        # Once per job: what an operator needs to find this run in the history server or `yarn logs`.
        log.info(
            "%s: defaultrisk %s, spark application %s", app_name, defaultrisk.__version__, sc.applicationId
        )
        with Heartbeat(sc):
            summary = pipeline(spark, cfg)
    except DefaultRiskError as exc:
        code, reason = exc.exit_code, f"{app_name}: error: {exc}"
    except (KeyboardInterrupt, Terminated, Exception) as exc:
        # A signal may surface as another error (py4j turns an interrupted call into a Py4JError).
        stopped = stops.outcome(app_name, exc)
        code, reason = stopped or (EXIT_FAILURE, _failure_line(app_name, exc, spark))
    finally:
        if own_session and spark is not None:
            _stop_quietly(spark)
        _on_signal(signal.SIGTERM, previous_term)
        _on_signal(signal.SIGINT, previous_int)
    # After the session has stopped, so the reason or the summary is the last line of its stream.
    if code != EXIT_OK:
        print(reason, file=sys.stderr, flush=True)
        return code
    code, warning = warning_exit(summary)
    if warning:
        print(f"{app_name}: warning: {warning}", file=sys.stderr, flush=True)
    print(json.dumps(summary, default=str), flush=True)
    return code


class _Stops:
    """The signal that stopped a run, whatever exception it surfaced as."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.pyspark_on_int = None

    def terminate(self, signum, frame) -> None:
        self.signum = signum
        raise Terminated()

    def interrupt(self, signum, frame) -> None:
        if self.pyspark_on_int == signal.SIG_IGN:
            return
        self.signum = signum
        if callable(self.pyspark_on_int):
            self.pyspark_on_int(signum, frame)  # cancels the running Spark jobs, raises KeyboardInterrupt
        raise KeyboardInterrupt

    def outcome(self, app_name: str, exc: BaseException) -> tuple[int, str] | None:
        """Exit code and reason line when a signal stopped the run, else None."""
        stop = stopped_by(exc) or {signal.SIGINT: INTERRUPTED, signal.SIGTERM: TERMINATED}.get(self.signum)
        if stop is None:
            return None
        code = EXIT_INTERRUPTED if stop == INTERRUPTED else EXIT_TERMINATED
        return code, f"{app_name}: {stop}; the live outputs are as they were"


def _on_signal(signum: int, handler):
    """Install a handler (main thread only; signals go nowhere else); return the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signum, handler)


def _jvm_gone(spark: SparkSession | None) -> bool:
    if spark is None:
        return False
    try:
        spark.sparkContext._jvm.java.lang.System.currentTimeMillis()
    except Exception:
        return True
    return False


def _failure_line(app_name: str, exc: Exception, spark: SparkSession | None) -> str:
    """The one line an unexpected failure ends with; a JVM that died (e.g. out of memory) says so."""
    if _jvm_gone(spark):
        return f"{app_name}: failed: Spark's JVM is gone (killed, e.g. out of memory)"
    log.exception("%s failed", app_name)
    return f"{app_name}: failed: {type(exc).__name__}: {first_line(exc)}"


def _stop_quietly(spark: SparkSession) -> None:
    """Stop Spark; when its JVM is already gone, a warning, so the reason line stays the last."""
    try:
        spark.stop()
    except Exception as exc:
        log.warning("could not stop Spark: %s", first_line(exc))
