"""The HTTP service, started for real on a free loopback port and asked over HTTP.

The central check: for every one of the 10,000 real rows of shared/data/test.csv, the service's pd
equals the scoring job's pd for the same row and model, bit for bit; and a customer the job rejects
is refused with 422 and the job's reasons.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from defaultrisk.schema import CATEGORY, FEATURES, FLAG, INPUT_COLUMNS, MERCHANT_GROUPS, UUID

from rows import row, uuid_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
import score as score_job

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

REPO = Path(__file__).resolve().parents[1]
TEST_CSV = REPO.parent / "shared" / "data" / "test.csv"
DATE = "2026-11-24"
MAX_BATCH = 1000
MAX_BODY = 3 * 1024 * 1024
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# Rows the job rejects, each written as the original file holds it.
BAD_ROWS = [
    row(9001, age="130"),
    row(9002, age="12", time_hours="25"),
    row(9003, num_unpaid_bills="-3"),
    row(9004, uuid="12345"),
    row(9005, max_paid_inv_0_12m="NaN"),
    row(9006, avg_payment_span_0_3m="abc", has_paid="maybe"),
    row(9007, num_active_inv="2.5", account_status="1.5"),
    row(9008, has_paid="5"),
    row(9009, max_paid_inv_0_24m="-inf", age="17.5"),
]


def start_service(model_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`python -m defaultrisk.serving` on a free loopback port; returns the process and its URL."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    command = [
        sys.executable,
        "-m",
        "defaultrisk.serving",
        "--model-dir",
        str(model_dir),
        "--port",
        "0",
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()  # printed once the model is loaded and the socket listens
    if not line.startswith("serving http://127.0.0.1:"):
        process.kill()
        raise AssertionError(f"service did not start: {line!r} {process.stderr.read()[-2000:]}")
    return process, line.split()[1]


def stop_service(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.stderr.close()


@pytest.fixture(scope="module")
def service(trained):
    process, url = start_service(trained[0], "--max-batch", str(MAX_BATCH), "--max-body-bytes", str(MAX_BODY))
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client
    finally:
        stop_service(process)
    assert process.returncode is not None


def as_json(text_row: dict, omit_missing: bool = True) -> dict:
    """A row of the original file as a client would send it: numbers as numbers, has_paid as a boolean."""
    customer = {UUID: text_row[UUID]}
    for feature in FEATURES:
        text = text_row[feature.name]
        if text in ("", "NA"):
            if not omit_missing:
                customer[feature.name] = None
        elif feature.kind == CATEGORY:
            customer[feature.name] = text
        elif feature.kind == FLAG:
            customer[feature.name] = {"True": True, "False": False}.get(text, text)
        elif text in {"NaN", "-inf"}:
            customer[feature.name] = float(text)
        elif _NUMBER.fullmatch(text):
            customer[feature.name] = int(text) if text.isdigit() else float(text)
        else:
            customer[feature.name] = text  # not a number: sent as the text it is
    return customer


@pytest.fixture(scope="module")
def job_run(spark, trained, tmp_path_factory):
    """The real rows and the bad ones, scored by the job: (text rows, scored and rejects by uuid)."""
    folder = tmp_path_factory.mktemp("job")
    real = pd.read_csv(TEST_CSV, dtype=str, keep_default_na=False)
    rows = [{**r, "default": "NA"} for r in real.to_dict("records")] + BAD_ROWS
    path = folder / "snapshot.csv"  # the original format: `;`, NA for missing
    lines = [";".join(INPUT_COLUMNS)] + [";".join(r[c] or "NA" for c in INPUT_COLUMNS) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["--input", str(path), "--model-dir", str(trained[0]), "--output", str(folder / "scored")]
    assert score_job.main([*argv, "--snapshot-date", DATE], spark) == 0
    scored = pq.read_table(folder / "scored" / f"snapshot_date={DATE}").to_pylist()
    rejects = pq.read_table(folder / "scored" / "_rejects" / f"snapshot_date={DATE}").to_pylist()
    return rows, {r[UUID]: r for r in scored}, {r[UUID]: r["reason"] for r in rejects}


def test_health_names_the_model_and_when_it_was_loaded(service, manifest):
    answer = service.get("/health")
    assert answer.status_code == 200
    health = answer.json()
    assert health["model_version"] == manifest["model_version"]
    assert health["status"] == "ok" and health["max_batch"] == MAX_BATCH and health["reason_codes"] == 3
    assert health["reason_rows"] == "high_risk"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", health["loaded_at"])


def test_pd_equals_the_scoring_job_for_every_real_row(service, job_run, manifest):
    rows, scored, _ = job_run
    real = rows[: -len(BAD_ROWS)]
    assert len(real) == 10_000 and len(scored) == 10_000
    answers = []
    for start in range(0, len(real), MAX_BATCH):
        chunk = [as_json(r, omit_missing=start % 2000 == 0) for r in real[start : start + MAX_BATCH]]
        answer = service.post("/predict/batch", json={"customers": chunk})
        assert answer.status_code == 200, answer.text[:500]
        answers.extend(answer.json()["predictions"])
    assert [a[UUID] for a in answers] == [r[UUID] for r in real]
    for a in answers:
        job = scored[a[UUID]]
        assert a["pd"] == job["pd"], a[UUID]  # bit for bit: JSON carries the shortest exact repr
        # Reason codes as the job ships them: for the high-risk customers, null for the others.
        assert (a["is_high_risk"], a["reason_codes"]) == (job["is_high_risk"], job["reason_codes"]), a[UUID]
        assert (a["reason_codes"] is not None) == a["is_high_risk"], a[UUID]
        assert a["grade"] == job["grade"] and a["grade"] is not None, a[UUID]
        assert a["model_version"] == manifest["model_version"]
    one = service.post("/predict", json=as_json(real[0]))
    assert one.status_code == 200 and one.json() == answers[0]


def test_a_customer_the_job_rejects_gets_422_with_the_jobs_reasons(service, job_run):
    _, scored, rejects = job_run
    assert len(rejects) == len(BAD_ROWS) and not set(rejects) & set(scored)
    for text_row in BAD_ROWS:
        answer = service.post(
            "/predict", content=json.dumps(as_json(text_row))
        )  # NaN, -Infinity as JSON allows
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body["reason"] == rejects[text_row[UUID]]
        assert body["problems"] == body["reason"].split("; ")
    batch = service.post(
        "/predict/batch", content=json.dumps({"customers": [as_json(r) for r in BAD_ROWS[:3]]})
    )
    assert batch.status_code == 422
    assert [r["reason"] for r in batch.json()["rejected"]] == [rejects[r[UUID]] for r in BAD_ROWS[:3]]


def test_two_customers_with_one_uuid_in_a_batch_are_both_refused(service):
    twice = [as_json(row(1)), as_json(row(2, uuid=uuid_for(1).upper()))]
    answer = service.post("/predict/batch", json={"customers": [*twice, as_json(row(3))]})
    assert answer.status_code == 422
    assert answer.json()["rejected"] == [
        {"index": 0, UUID: uuid_for(1), "reason": "uuid: duplicate (2 rows)"},
        {"index": 1, UUID: uuid_for(1).upper(), "reason": "uuid: duplicate (2 rows)"},
    ]


def test_single_requests_arriving_together_get_their_own_answers(service, job_run):
    """Concurrent `/predict` calls are scored as one group: each still gets its own answer (the one
    `/predict/batch` gives it), a bad customer among them alone is refused, and two requests for the
    same uuid are not each other's duplicates."""
    rows, _, rejects = job_run
    good = [as_json(r) for r in rows[:150]]
    expected = service.post("/predict/batch", json={"customers": good}).json()["predictions"]
    # Among them, right after customer 50: a bad customer and a second request for customer 50.
    again = as_json(row(4, uuid=rows[50][UUID].upper()))
    customers = [*good[:51], as_json(BAD_ROWS[0]), again, *good[51:]]

    async def ask_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(service.base_url), timeout=60) as client:
            calls = [client.post("/predict", content=json.dumps(c)) for c in customers]
            return await asyncio.gather(*calls)

    answers = asyncio.run(ask_all())
    assert [a.status_code for a in answers] == [200] * 51 + [422, 200] + [200] * 99
    assert [a.json() for a in answers[:51] + answers[53:]] == expected
    assert answers[51].json()["reason"] == rejects[BAD_ROWS[0][UUID]]
    assert answers[52].json()[UUID] == rows[50][UUID].upper()


def test_a_customer_without_uuid_or_with_left_out_features_is_scored(service):
    customer = {k: v for k, v in as_json(row(1)).items() if k not in (UUID, "avg_payment_span_0_3m")}
    answer = service.post("/predict", json={**customer, "merchant_category": "Space travel"})
    assert answer.status_code == 200
    assert answer.json()[UUID] is None and 0.0 < answer.json()["pd"] < 1.0


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b'{"age": 30,', 400, "malformed JSON"),
        (b"\xff\xfe", 400, "malformed JSON"),
        (b"[1, 2]", 422, "a customer is a JSON object"),
        (json.dumps({**as_json(row(1)), "model_dir": "/etc"}).encode(), 422, "unknown field(s): model_dir"),
        (json.dumps({**as_json(row(1)), "age": [30]}).encode(), 422, "age: a value must be"),
        (b" " * (MAX_BODY + 1), 413, "exceeds the limit"),
    ],
)
def test_a_body_that_is_not_a_customer_gets_a_clear_4xx(service, body, status, detail):
    answer = service.post("/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status
    assert detail in answer.json()["detail"]


def test_an_oversize_body_without_a_length_is_refused_while_it_streams(service):
    chunks = (b" " * 65536 for _ in range(MAX_BODY // 65536 + 2))
    answer = service.post("/predict", content=chunks)
    assert answer.status_code == 413


def test_a_batch_over_the_limit_or_of_the_wrong_shape_gets_422(service):
    customers = [as_json(row(i)) for i in range(MAX_BATCH + 1)]
    assert service.post("/predict/batch", json={"customers": customers}).status_code == 422
    assert service.post("/predict/batch", json={"customers": []}).status_code == 422
    assert service.post("/predict/batch", json=[as_json(row(1))]).status_code == 422


def test_docs_show_each_features_range_and_vocabulary(service):
    spec = service.get("/openapi.json").json()
    customer = spec["components"]["schemas"]["Customer"]
    assert customer["additionalProperties"] is False
    age = customer["properties"]["age"]["anyOf"][0]
    assert (age["type"], age["minimum"], age["maximum"]) == ("integer", 18, 120)
    known_groups = customer["properties"]["merchant_group"]["anyOf"][0]["enum"]
    assert known_groups == sorted(MERCHANT_GROUPS)
    assert customer["properties"]["has_paid"]["anyOf"][0]["type"] == "boolean"
    assert set(customer["properties"]) == {UUID, *(f.name for f in FEATURES)}
    request = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/Customer"}
    assert (
        spec["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "properties"
        ]["customers"]["maxItems"]
        == MAX_BATCH
    )
    docs = service.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_a_tampered_model_is_refused_before_listening(trained, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for name in ("model.json", "manifest.json"):
        (model_dir / name).write_bytes((trained[0] / name).read_bytes())
    with (model_dir / "model.json").open(
        "ab"
    ) as model_file:  # still a valid model, not the one in the manifest
        model_file.write(b" ")
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    command = [sys.executable, "-m", "defaultrisk.serving", "--model-dir", str(model_dir), "--port", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 4
    assert done.stdout == ""
    assert "does not match its manifest" in done.stderr.strip().splitlines()[-1]


def test_reason_rows_all_names_reasons_for_every_customer(trained, job_run):
    """`--reason-rows all`: every customer gets reasons, the high-risk ones the same as by default."""
    from defaultrisk.serving.options import Reasons
    from defaultrisk.serving.request import customers_table
    from defaultrisk.serving.scorer import Scorer

    rows, scored, _ = job_run
    table = customers_table([as_json(r) for r in rows[:300]])
    every = Scorer.load(trained[0], Reasons(3, "all")).answers(table)
    shipped = Scorer.load(trained[0], Reasons(3, "high_risk")).answers(table)
    assert all(a["reason_codes"] for a in every)
    assert any(not a["is_high_risk"] for a in every) and any(a["is_high_risk"] for a in every)
    for a, b in zip(every, shipped, strict=True):
        assert a["pd"] == b["pd"] == scored[a[UUID]]["pd"]
        assert b["reason_codes"] == (a["reason_codes"] if a["is_high_risk"] else None)


def test_the_listening_socket_is_tcp_without_nagle():
    """Accepted connections answer without waiting for the client's delayed ACK: asyncio turns Nagle
    off on sockets declared TCP, and the listening socket has TCP_NODELAY itself."""
    import socket

    from defaultrisk.serving.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        sock.close()


def _workers(pid: int) -> list[int]:
    """The worker processes the service's supervisor has started (not multiprocessing's own tracker)."""
    tasks = Path(f"/proc/{pid}/task")
    children = [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]
    return sorted(c for c in children if b"spawn_main" in _command_line(c))


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads worker processes from Linux /proc")
def test_workers_answer_on_one_port_a_killed_one_is_replaced_and_all_stop_with_the_service(trained):
    process, url = start_service(trained[0], "--workers", "2")
    try:
        assert _until(lambda: len(_workers(process.pid)) == 2)
        first = _workers(process.pid)
        os.kill(first[0], signal.SIGKILL)
        assert _until(lambda: len(set(_workers(process.pid)) - set(first)) == 1)  # a new one in its place
        with httpx.Client(base_url=url, timeout=60) as client:
            pds = {
                client.post("/predict", json={UUID: uuid_for(1), "age": 40}).json()["pd"] for _ in range(20)
            }
        assert len(pds) == 1  # every worker gives the same answer
        workers = _workers(process.pid)
    finally:
        stop_service(process)
    assert process.returncode is not None
    assert _until(lambda: not any(_alive(pid) for pid in workers), 20)


def test_what_the_service_loaded_is_frozen_out_of_the_collectors_full_passes(trained):
    import gc

    from defaultrisk.serving.app import create_app

    gc.unfreeze()
    create_app(trained[0])
    try:
        assert gc.get_freeze_count() > 10_000  # the model, FastAPI, pyarrow: all loaded once
    finally:
        gc.unfreeze()
