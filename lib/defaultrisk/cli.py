"""What both jobs do around their pipeline: logging, the session, exit codes, the summary line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import SparkSession

from defaultrisk.errors import EXIT_FAILURE, EXIT_OK, DefaultRiskError, warning_exit
from defaultrisk.session import build_session

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
    summary, code, reason = None, EXIT_OK, ""
    try:
        cfg = load_config()
        if own_session:
            spark = build_session(app_name)
        summary = pipeline(spark, cfg)
    except DefaultRiskError as exc:
        code, reason = exc.exit_code, f"{app_name}: error: {exc}"
    except Exception as exc:
        log.exception("%s failed", app_name)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        code, reason = EXIT_FAILURE, f"{app_name}: failed: {type(exc).__name__}: {first}"
    finally:
        if own_session and spark is not None:
            spark.stop()
    # After the session has stopped, so the reason or the summary is the last line of its stream.
    if code != EXIT_OK:
        print(reason, file=sys.stderr, flush=True)
        return code
    code, warning = warning_exit(summary)
    if warning:
        print(f"{app_name}: warning: {warning}", file=sys.stderr, flush=True)
    print(json.dumps(summary, default=str), flush=True)
    return code
