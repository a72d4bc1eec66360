"""Registering the scored table, its rejects and its run log in the Spark session's catalog.

`--table NAME` makes `NAME` (scores), `NAME_rejects` and `NAME_runs` queryable with SQL, the first two
partitioned by `snapshot_date` so a filter on the date reads only that date's folder. With a persistent
metastore (Hive, Glue, Unity) the tables outlive the job; with Spark's default in-memory catalog they
last as long as the session.
"""

from __future__ import annotations

import re

from pyspark.sql import SparkSession

from defaultrisk import fs, sql
from defaultrisk.errors import ConfigError
from defaultrisk.scoring.runlog import runs_path

# A table name, optionally qualified by its database: letters, digits and underscores.
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
REJECTS_SUFFIX = "_rejects"
RUNS_SUFFIX = "_runs"


def check_table_name(name: str) -> str:
    if not TABLE_NAME.match(name):
        raise ConfigError(f"not a table name: {name!r} (letters, digits, _; optionally database.table)")
    return name


def _quote(name: str) -> str:
    return ".".join(sql.name(part) for part in name.split("."))


def _register(spark: SparkSession, name: str, path: str) -> None:
    """Create the table over its folder if it is new, then pick up new partitions and files.

    Spark infers the columns and the `snapshot_date` partitioning (a date) from the folder itself.
    """
    spark.sql(f"CREATE TABLE IF NOT EXISTS {_quote(name)} USING parquet LOCATION {sql.text(path)}")
    if any(column.isPartition for column in spark.catalog.listColumns(name)):
        spark.sql(f"ALTER TABLE {_quote(name)} RECOVER PARTITIONS")
    spark.sql(f"REFRESH TABLE {_quote(name)}")


def register_tables(spark: SparkSession, name: str, table_root: str, rejects_root: str) -> dict[str, str]:
    """Register or refresh NAME, NAME_rejects and NAME_runs over the folders the scoring job writes.

    A folder that does not exist yet (no run has written it) is skipped. Returns table name -> folder.
    """
    check_table_name(name)
    wanted = [
        (name, table_root),
        (name + REJECTS_SUFFIX, rejects_root),
        (name + RUNS_SUFFIX, runs_path(table_root)),
    ]
    registered = {}
    for table, path in wanted:
        if fs.path_exists(spark, path):
            location = fs.qualified(spark, path)
            _register(spark, table, location)
            registered[table] = location
    return registered
