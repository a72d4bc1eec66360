"""Test-only Spark Python worker: the first attempt of partition 0 of the scoring stage dies.

`tests/test_killed_worker.py` runs the scoring job with
`spark.python.worker.module=pyspark_faulty_worker` (Spark's daemon loads a worker module only if its
name starts with `pyspark`), so this module exists only in that test's workers; a normal run never
imports it. The worker exits with `os._exit` (as a killed process does: no clean-up, no answer to the
JVM) at the point where a scoring task loads its model, which only the scoring stage does; it first
writes which stage and task it was, for the test to match against the driver's log.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark import TaskContext
from pyspark.worker import main as pyspark_main

from defaultrisk.scoring import udf

KILL_DIR = "DEFAULTRISK_TEST_KILL_DIR"
_load_model = udf.worker_model


def _dying_worker_model(payload, driver_xgboost):
    context = TaskContext.get()
    if context is not None and context.attemptNumber() == 0 and context.partitionId() == 0:
        record = Path(os.environ[KILL_DIR]) / f"stage-{context.stageId()}-partition-0"
        record.write_text(str(os.getpid()))
        os._exit(137)
    return _load_model(payload, driver_xgboost)


def main(infile, outfile) -> None:
    # Patched here, in the worker, before the task's function is unpickled (so the scoring UDF finds
    # this version), never at import: a driver importing this module must not ship the patch.
    udf.worker_model = _dying_worker_model
    pyspark_main(infile, outfile)
