"""The scheduling guide's DAGs, checked with Airflow itself: they parse and their tasks render the commands.

Needs Apache Airflow, which the project's environment does not carry: scripts/check_dag.sh installs it
into a throwaway virtualenv and runs this file (`-m airflow --noconftest`); elsewhere it is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow
pytest.importorskip("airflow")

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "docs" / "airflow" / "defaultrisk_dags.py"
JOB = "/opt/defaultrisk/scripts/submit.sh --master yarn /opt/defaultrisk/jobs/score.py"
PATHS = (
    "--input '/data/customers/customers_{snapshot_date}.csv' --model-dir /models/pd/current "
    "--output /warehouse/pd --results-csv '/exports/pd/{snapshot_date}/results.csv' --table pd"
)


@pytest.fixture(scope="module")
def dags():
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags


def _rendered(task, **context):
    task.render_template_fields(context)
    return task


def test_the_dag_file_parses_into_the_documented_dags(dags):
    assert sorted(dags) == [
        "defaultrisk_pd_backfill",
        "defaultrisk_pd_consumer_example",
        "defaultrisk_pd_nightly",
    ]


def test_the_nightly_run_waits_for_its_input_then_scores_that_date(dags):
    nightly = dags["defaultrisk_pd_nightly"]
    assert nightly.max_active_runs == 1 and not nightly.catchup
    sensor = _rendered(nightly.get_task("wait_for_input"), ds="2026-11-24")
    assert sensor.filepath == "/data/customers/customers_2026-11-24.csv"
    assert sensor.retries == 0 and sensor.mode == "reschedule"
    score = _rendered(nightly.get_task("score"), ds="2026-11-24")
    assert score.op_kwargs["command"] == f"{JOB} {PATHS} --snapshot-date '2026-11-24'"
    assert score.upstream_task_ids == {"wait_for_input"}
    assert score.downstream_task_ids == {"review"}
    assert score.pool == "defaultrisk_pd_table" and score.retries == 2


def test_a_backfill_scores_the_range_it_is_given_in_the_same_pool(dags):
    backfill = dags["defaultrisk_pd_backfill"]
    assert backfill.max_active_runs == 1
    params = {"date_from": "2026-11-01", "date_to": "2026-11-05"}
    score = _rendered(backfill.get_task("score"), params=params)
    assert score.op_kwargs["command"] == f"{JOB} {PATHS} --from '2026-11-01' --to '2026-11-05'"
    assert score.pool == dags["defaultrisk_pd_nightly"].get_task("score").pool


def test_a_consumer_waits_on_the_partitions_success_marker(dags):
    consumer = dags["defaultrisk_pd_consumer_example"]
    sensor = _rendered(consumer.get_task("wait_for_pd_partition"), ds="2026-11-24")
    assert sensor.filepath == "/warehouse/pd/snapshot_date=2026-11-24/_SUCCESS"
