"""docs/scheduling.md shows the DAG file whole: the two must not drift apart."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_scheduling_guide_shows_the_dag_file_as_it_is():
    guide = (REPO / "docs" / "scheduling.md").read_text()
    shown = re.findall(r"```python\n(.*?)```", guide, re.DOTALL)
    assert shown == [(REPO / "docs" / "airflow" / "defaultrisk_dags.py").read_text()]
