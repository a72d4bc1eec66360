"""The one place that builds the SparkSession."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from pyspark import SparkConf
from pyspark.sql import SparkSession

from defaultrisk.settings import CONF_DIR

log = logging.getLogger(__name__)
LOCAL_PROPERTIES = CONF_DIR / "spark-local.conf"


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Spark properties file (`key value` or `key=value` per line, `#` comments)."""
    props = {}
    for text in path.read_text().splitlines():
        line = text.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = re.split(r"(\s*=\s*|\s+)", line, maxsplit=1)
        props[key] = value
    return props


def build_session(app_name: str, properties_file: Path | None = None) -> SparkSession:
    """Build (or reuse) the session.

    Under spark-submit the launcher's master and properties win. Run as plain `python`, the session is
    local and takes `conf/spark-local.conf`; executors then use this very interpreter, so the driver
    and the workers see the same pandas, pyarrow and XGBoost.
    """
    # spark-submit starts the JVM first and hands its gateway to Python; before the context exists,
    # SparkConf() cannot see the launcher's settings, so the gateway variable is what tells.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ or SparkConf().contains("spark.master")
    builder = SparkSession.builder.appName(app_name)
    if not submitted:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        path = properties_file or LOCAL_PROPERTIES
        props = read_properties(path) if path.exists() else {}
        props.setdefault("spark.master", "local[*]")
        for key, value in props.items():
            builder = builder.config(key, value)
    # Semantics, not tuning: timestamps are UTC instants stored as standard Parquet microseconds (not
    # INT96).
    builder = builder.config("spark.sql.session.timeZone", "UTC").config(
        "spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS"
    )
    spark = builder.getOrCreate()
    log.info("spark %s, master %s", spark.version, spark.sparkContext.master)
    return spark
