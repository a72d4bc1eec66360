"""The documented reader examples and queries, run as written on a real scored table with its side folders.

The table is written by the scoring job itself (two dates, `--table pd`), so it carries `_runs/`,
`_rejects/` and `_drift/` beside the date folders; a copied partition under `_staging/` stands for what a
run that died before its swap leaves. Each documented block runs with only the table's path replaced.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyspark.sql import types as T
from sampledata import make_snapshot, write_original_csv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

# The reader block and queries are in docs/outputs.md, the run log query in docs/operations.md.
README = "\n".join((REPO / "docs" / page).read_text() for page in ("outputs.md", "operations.md"))
DOCUMENTED_PATH = "warehouse/pd"
# The literals the documented queries use: the table holds these dates and this customer on both.
TODAY, EARLIER = "2026-11-24", "2026-11-14"
CUSTOMER = "0b5f0c8e-4f4c-4d2a-9c53-2b8f2c1d7a10"


def _readme_block(language: str, containing: str) -> str:
    blocks = [b for lang, b in re.findall(r"```(\w+)\n(.*?)```", README, re.DOTALL) if lang == language]
    found = [b for b in blocks if containing in b]
    assert len(found) == 1, f"expected one {language} block with {containing!r} in the docs"
    return found[0]


def _snapshot_with_customer(frame, info, path: Path) -> None:
    """The snapshot with one scored row given the documented customer uuid."""
    frame = frame.copy()
    row = next(i for i in range(len(frame)) if i not in set(info["rejected_rows"]))
    frame.iat[row, frame.columns.get_loc("uuid")] = CUSTOMER
    write_original_csv(frame, path)


@pytest.fixture(scope="module")
def table(spark, trained, snapshot, tmp_path_factory) -> tuple[Path, list[dict]]:
    """A scored table for EARLIER and TODAY, registered as `pd`, with a leftover `_staging/`."""
    folder = tmp_path_factory.mktemp("readers")
    today_csv, earlier_csv = folder / f"customers_{TODAY}.csv", folder / f"customers_{EARLIER}.csv"
    _snapshot_with_customer(snapshot[1], snapshot[2], today_csv)
    _snapshot_with_customer(*make_snapshot(400, seed=61, bad_rows=3), earlier_csv)
    output = folder / "warehouse" / "pd"
    summaries = []
    for day, path in ((EARLIER, earlier_csv), (TODAY, today_csv)):
        out, err = io.StringIO(), io.StringIO()
        argv = ["--input", str(path), "--model-dir", str(trained[0]), "--output", str(output)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = score_job.main([*argv, "--snapshot-date", day, "--table", "pd"], spark=spark)
        assert code == 0, err.getvalue()
        summaries.append(json.loads(out.getvalue().strip().splitlines()[-1]))
    # What a run killed between writing and swapping leaves: a whole partition under _staging/RUN_ID/.
    staged = output / "_staging" / "20261124T020000Z-0badc0de" / f"snapshot_date={TODAY}"
    shutil.copytree(output / f"snapshot_date={TODAY}", staged)
    return output, summaries


def _run_readme_python(block: str, output: Path, spark) -> dict:
    """Execute a documented Python block as written, on this table; return the names it defined."""
    names = {"spark": spark}
    exec(block.replace(DOCUMENTED_PATH, str(output)), names)
    return names


def _key(uuid, pd_value, day) -> tuple:
    return (uuid, round(pd_value, 12), day)


def test_the_table_has_the_side_folders_a_naive_reader_trips_on(table):
    output, _ = table
    assert {p.name for p in output.iterdir() if p.name.startswith("_")} >= {
        "_runs",
        "_rejects",
        "_drift",
        "_staging",
    }
    # The glob the docs used to show reads _runs/ too, and DuckDB refuses the table.
    with pytest.raises(duckdb.Error, match="Hive partition"):
        duckdb.sql(f"SELECT * FROM read_parquet('{output}/*/*.parquet', hive_partitioning = true)").fetchall()


def test_spark_pyarrow_and_duckdb_read_the_same_rows_as_the_readme_shows(spark, table):
    output, summaries = table
    names = _run_readme_python(_readme_block("python", "duckdb.sql("), output, spark)
    scored_rows = sum(s["scored_rows"] for s in summaries)

    spark_rows = names["scored"].select("uuid", "pd", "snapshot_date").collect()
    assert names["scored"].schema["snapshot_date"].dataType == T.DateType()
    from_spark = sorted(_key(r.uuid, r.pd, r.snapshot_date) for r in spark_rows)

    arrow = names["table"]
    assert arrow.schema.field("snapshot_date").type == pa.date32()
    columns = arrow.select(["uuid", "pd", "snapshot_date"]).to_pydict()
    from_arrow = sorted(_key(*row) for row in zip(*columns.values(), strict=True))

    # DuckDB's rows in its column order: find the three columns by name.
    relation_columns = duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{output}/snapshot_date=*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    position = {name: i for i, (name, kind, *_) in enumerate(relation_columns)}
    assert dict((n, k) for n, k, *_ in relation_columns)["snapshot_date"] == "DATE"
    from_duckdb = sorted(
        _key(r[position["uuid"]], r[position["pd"]], r[position["snapshot_date"]]) for r in names["rows"]
    )

    assert len(from_spark) == scored_rows  # the staged copy under _staging/ is not read
    assert from_arrow == from_spark
    assert from_duckdb == from_spark
    assert {day for *_, day in from_spark} == {date.fromisoformat(EARLIER), date.fromisoformat(TODAY)}


def test_the_readme_queries_answer_what_the_files_hold(spark, table):
    output, _ = table
    files = ds.dataset(
        output,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("snapshot_date", pa.date32())]), flavor="hive"),
    )
    rows = files.to_table().to_pandas()
    queries = [q.strip() for q in _readme_block("sql", "-- today's high-risk").split(";") if q.strip()]
    assert len(queries) == 3
    high_risk, trend, history = (spark.sql(q).collect() for q in queries)

    today = rows[(rows.snapshot_date == date.fromisoformat(TODAY)) & rows.is_high_risk]
    assert today.shape[0] > 0
    assert sorted(r.uuid for r in high_risk) == sorted(today.uuid)
    assert [r.pd for r in high_risk] == sorted((r.pd for r in high_risk), reverse=True)
    assert all(r.reason_codes for r in high_risk)

    by_day = rows.groupby("snapshot_date").agg(
        customers=("uuid", "size"), mean_pd=("pd", "mean"), share=("is_high_risk", "mean")
    )
    assert [r.snapshot_date for r in trend] == list(by_day.index)
    assert [r.customers for r in trend] == list(by_day.customers)
    assert [r.mean_pd for r in trend] == pytest.approx(list(by_day.mean_pd), rel=1e-12)
    assert [r.high_risk_share for r in trend] == pytest.approx(list(by_day.share), rel=1e-12)

    mine = rows[rows.uuid == CUSTOMER].sort_values("snapshot_date")
    assert [r.snapshot_date.isoformat() for r in history] == [EARLIER, TODAY]
    assert [r.pd for r in history] == list(mine.pd)
    assert {r.model_version for r in history} == set(mine.model_version)


def test_the_readme_run_log_query_shows_that_dates_run(spark, table):
    output, summaries = table
    block = _readme_block("python", "/_runs")
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        _run_readme_python(block, output, spark)
    earlier_run = next(s["run_id"] for s in summaries if s["snapshot_date"] == EARLIER)
    assert earlier_run[:17] in shown.getvalue()  # show() cuts strings at 20 characters
    assert "succeeded" in shown.getvalue()
