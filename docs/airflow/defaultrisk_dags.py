"""Airflow DAGs for the pd table: the nightly scoring run, a backfill, and a consumer waiting on `_SUCCESS`.

Shown in docs/scheduling.md. scripts/check_dag.sh checks with Airflow itself (3.x) that this file parses
and that its tasks render the commands the documentation shows (tests/test_airflow_dag.py).

Create the pool once: `airflow pools set defaultrisk_pd_table 1 "one scoring run per table"`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from collections import deque
from datetime import datetime, timedelta

from airflow.providers.standard.operators.python import PythonOperator
from airflow.providers.standard.sensors.filesystem import FileSensor
from airflow.sdk import DAG, Param
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

log = logging.getLogger(__name__)

# Where things live on the machine that runs the tasks (an edge node with the checkout and its .venv).
HOME = os.environ.get("DEFAULTRISK_HOME", "/opt/defaultrisk")
MASTER = os.environ.get("DEFAULTRISK_MASTER", "yarn")
SNAPSHOTS = "/data/customers/customers_{snapshot_date}.csv"
MODEL = "/models/pd/current"
TABLE = "/warehouse/pd"
RESULTS = "/exports/pd/{snapshot_date}/results.csv"
# One slot: the nightly run and a backfill never write the same table at the same time.
POOL = "defaultrisk_pd_table"

# The jobs' exit codes (docs/guarantees.md, "Exit codes") and what the scheduler does with each.
LOOK_AT_IT = {6: "drift above the PSI limit", 7: "partial: dates left unscored"}  # written: succeed
FIX_FIRST = {2: "bad arguments or config", 3: "input", 4: "model"}  # a retry fails the same way
# Anything else (1 unexpected, 5 output not written, 9 the date locked by another run, 130/143 stopped)
# may be passing: retried.


def score_command(*dates: str) -> str:
    """spark-submit in client mode, so the job's exit code comes back to the task.

    `{snapshot_date}` in the paths is the job's own placeholder (each date of a backfill); Airflow's
    `{{ ... }}` is filled in when the task runs.
    """
    args = [f"{HOME}/scripts/submit.sh", "--master", MASTER, f"{HOME}/jobs/score.py"]
    args += ["--input", SNAPSHOTS, "--model-dir", MODEL, "--output", TABLE, "--results-csv", RESULTS]
    return shlex.join([*args, "--table", "pd", *dates])


def run_job(command: str) -> dict:
    """Run a job's command line, its output into the task log; its summary is the task's return value.

    Under spark-submit the job's stdout and stderr arrive merged on stdout: its last line is the JSON
    summary (exit 0, 6, 7) or the one-line reason (any other code).
    """
    with subprocess.Popen(
        shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as job:
        last = deque(maxlen=1)
        for line in job.stdout:
            print(line, end="")
            last.append(line.strip())
    code, final = job.returncode, (last[0] if last else "")
    if code == 0:
        return json.loads(final)
    if code in LOOK_AT_IT:
        log.warning("written, but look at it: %s (exit %d)", LOOK_AT_IT[code], code)
        return {**json.loads(final), "needs_review": LOOK_AT_IT[code]}
    if code in FIX_FIRST:
        raise AirflowFailException(f"exit {code} ({FIX_FIRST[code]}), not retried: {final}")
    raise AirflowException(f"exit {code}, retried: {final}")


def review(ti) -> None:
    """Green when the run needs nothing; red (the scores are published all the same) when it needs a look."""
    summary = ti.xcom_pull(task_ids="score")
    if not summary or "needs_review" not in summary:
        raise AirflowSkipException("nothing to look at")
    raise AirflowFailException(f"{summary['needs_review']}: {json.dumps(summary)[:2000]}")


def score_and_review(command: str) -> PythonOperator:
    """The scoring task (in the table's pool) and its review; returns the scoring task."""
    score = PythonOperator(
        task_id="score",
        python_callable=run_job,
        op_kwargs={"command": command},
        pool=POOL,
        retries=2,  # reached by exit 1 and 5 only: AirflowFailException skips the retries
        retry_delay=timedelta(minutes=10),
        execution_timeout=timedelta(hours=4),
    )
    score >> PythonOperator(task_id="review", python_callable=review, retries=0)
    return score


with DAG(
    dag_id="defaultrisk_pd_nightly",
    description="Score last night's customer snapshot into the pd table",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,  # missed nights go through defaultrisk_pd_backfill: one job for the whole range
    max_active_runs=1,
    tags=["defaultrisk"],
) as nightly:
    wait_for_input = FileSensor(
        task_id="wait_for_input",
        filepath=SNAPSHOTS.replace("{snapshot_date}", "{{ ds }}"),
        poke_interval=300,
        timeout=6 * 3600,  # a snapshot still missing by 08:00 is for a person, not for retries
        mode="reschedule",
        retries=0,
    )
    wait_for_input >> score_and_review(score_command("--snapshot-date", "{{ ds }}"))


with DAG(
    dag_id="defaultrisk_pd_backfill",
    description="Rescore a range of dates (each its own atomic run); trigger with date_from and date_to",
    schedule=None,
    start_date=datetime(2026, 11, 1),
    max_active_runs=1,
    params={
        "date_from": Param("2026-11-01", type="string", format="date"),
        "date_to": Param("2026-11-24", type="string", format="date"),
    },
    tags=["defaultrisk"],
) as backfill:
    # No input sensor: a date whose snapshot is missing is reported (exit 7) and the others are scored.
    score_and_review(score_command("--from", "{{ params.date_from }}", "--to", "{{ params.date_to }}"))


with DAG(
    dag_id="defaultrisk_pd_consumer_example",
    description="A downstream job that starts when the night's pd partition is published",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=False,
    tags=["defaultrisk"],
) as consumer:
    # The scoring job writes _SUCCESS into a partition only once it is whole and swapped in.
    FileSensor(
        task_id="wait_for_pd_partition",
        filepath=f"{TABLE}/snapshot_date={{{{ ds }}}}/_SUCCESS",
        poke_interval=300,
        timeout=8 * 3600,
        mode="reschedule",
        retries=0,
    )
