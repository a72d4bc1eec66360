"""A corpus of bad inputs, each with its expected outcome, run through the scoring job's command line.

Every case ends either in a clear one-line error, its documented exit code and nothing written, or in
scored and rejected rows whose counts reconcile with the input. No case may lose a row silently.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from defaultrisk.errors import EXIT_INPUT, EXIT_MODEL, EXIT_OK
from defaultrisk.model import model_version
from defaultrisk.schema import INPUT_COLUMNS

from rows import row, write_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
import score as score_job

DATE = "2026-11-21"


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str = ""  # in the last stderr line, for failures
    scored: int = 0
    rejected: int = 0
    reason: str = ""  # in every reject's reason


def _csv(rows, **kwargs):
    return lambda folder: write_csv(folder / "in.csv", rows, **kwargs)


def _text(text: str | bytes):
    def build(folder: Path) -> Path:
        path = folder / "in.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    return build


def _lines(rows) -> str:
    return "\n".join([";".join(INPUT_COLUMNS), *(";".join(r[c] for c in INPUT_COLUMNS) for r in rows)]) + "\n"


def _truncated(folder: Path) -> Path:
    text = _lines([row(1), row(2)])
    path = folder / "in.csv"
    path.write_text(text[: text.rindex(";NA;") + 1])  # the last line cut short, no newline
    return path


def _quoted_semicolon(folder: Path) -> Path:
    text = _lines([row(1), row(2, merchant_category="@@")]).replace("@@", '"Food; drinks"')
    path = folder / "in.csv"
    path.write_text(text)
    return path


def _parquet_wrong_type(folder: Path) -> Path:
    frame = pd.DataFrame([row(1), row(2)])
    frame["has_paid"] = [5, 1]  # a number where True/False belongs
    path = folder / "in.parquet"
    frame.to_parquet(path)
    return path


CASES: dict[str, tuple] = {
    "missing column": (
        _csv([row(1)], columns=[c for c in INPUT_COLUMNS if c != "age"]),
        Outcome(EXIT_INPUT, "missing 1 required column(s): age"),
    ),
    "extra column": (
        _csv([{**row(1), "note": "x"}, {**row(2), "note": "y"}], columns=[*INPUT_COLUMNS, "note"]),
        Outcome(EXIT_OK, scored=2),
    ),
    "column of the wrong type": (
        _csv([row(1, age="young"), row(2, age="old"), row(3)]),
        Outcome(EXIT_OK, scored=1, rejected=2, reason="age: not a number"),
    ),
    "parquet column of the wrong type": (
        _parquet_wrong_type,
        Outcome(EXIT_OK, scored=1, rejected=1, reason="has_paid"),
    ),
    "malformed uuid": (
        _csv([row(1), row(2, uuid="12345")]),
        Outcome(EXIT_OK, scored=1, rejected=1, reason="malformed"),
    ),
    "empty uuid": (
        _csv([row(1), row(2, uuid="")]),
        Outcome(EXIT_OK, scored=1, rejected=1, reason="uuid: missing"),
    ),
    "duplicate uuids": (
        _csv([row(1), row(2), row(3, uuid=row(2)["uuid"])]),
        Outcome(EXIT_OK, scored=1, rejected=2, reason="uuid: duplicate (2 rows)"),
    ),
    "empty file": (_text(b""), Outcome(EXIT_INPUT, "is empty")),
    "header only": (_text(";".join(INPUT_COLUMNS) + "\n"), Outcome(EXIT_OK)),
    "truncated last line": (
        _truncated,
        Outcome(EXIT_OK, scored=1, rejected=1, reason="line: wrong number of fields"),
    ),
    "comma-separated file": (
        _text(_lines([row(1)]).replace(";", ",")),
        Outcome(EXIT_INPUT, "is the file comma-separated?"),
    ),
    "utf-8 byte-order mark": (
        _text(b"\xef\xbb\xbf" + _lines([row(1), row(2)]).encode()),
        Outcome(EXIT_OK, scored=2),
    ),
    "crlf line endings": (_csv([row(1), row(2)], newline="\r\n"), Outcome(EXIT_OK, scored=2)),
    "quoted field holding a semicolon": (_quoted_semicolon, Outcome(EXIT_OK, scored=2)),
    "unseen categories": (
        _csv([row(1, merchant_category="Space travel", merchant_group="Moon", name_in_email="X"), row(2)]),
        Outcome(EXIT_OK, scored=2),
    ),
    "out-of-range values": (
        _csv([row(1, age="130"), row(2, num_unpaid_bills="-3"), row(3, time_hours="25"), row(4)]),
        Outcome(EXIT_OK, scored=1, rejected=3, reason="imum"),
    ),
    "nan and inf": (
        _csv([row(1, max_paid_inv_0_12m="NaN"), row(2, avg_payment_span_0_3m="-inf"), row(3)]),
        Outcome(EXIT_OK, scored=1, rejected=2, reason="not a finite number"),
    ),
}


def _tamper_model(model_dir: Path, case: str) -> None:
    manifest_path = model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    model_path = model_dir / "model.json"
    if case == "corrupt model file":
        payload = b'{"learner": "not a booster"'
    elif case == "model file that is a pickle":
        payload = pickle.dumps({"booster": "bytes"})
    else:
        payload = model_path.read_bytes()
    model_path.write_bytes(payload)
    manifest["model_sha256"] = hashlib.sha256(payload).hexdigest()
    if case == "manifest hash mismatch":
        manifest["model_sha256"] = hashlib.sha256(b"another model").hexdigest()
    if case == "manifest feature list mismatch":
        manifest["features"] = manifest["features"][::-1]
    if case == "corrupt model file":  # a consistent manifest: only the file's content is wrong
        manifest["model_version"] = model_version(manifest["model_sha256"], manifest)
    manifest_path.write_text(json.dumps(manifest))


MODEL_CASES = {
    "corrupt model file": "not a valid XGBoost model",
    "model file that is a pickle": "pickle",
    "manifest hash mismatch": "does not match its manifest",
    "manifest feature list mismatch": "feature list does not match",
}


def _run(spark, capsys, model_dir: Path, input_path: Path, output: Path) -> tuple[int, dict | None, str]:
    argv = ["--input", str(input_path), "--model-dir", str(model_dir), "--output", str(output)]
    code = score_job.main(
        [*argv, "--snapshot-date", DATE, "--results-csv", str(output.parent / "results.csv")], spark
    )
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1]) if code == 0 else None
    return code, summary, captured.err


def _only_the_failed_run_logged(spark, output: Path, err: str) -> None:
    """Nothing written but the run log's row for the failed run, with the error the job printed."""
    assert sorted(p.name for p in output.iterdir()) == ["_runs"]
    runs = spark.read.parquet(str(output / "_runs")).collect()
    assert [(r.status, r.scored_rows) for r in runs] == [("failed", None)]
    assert runs[0].error in err.strip().splitlines()[-1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, spark, trained, tmp_path, capsys):
    build, expected = CASES[case]
    input_path = build(tmp_path)
    output = tmp_path / "scored"
    code, summary, err = _run(spark, capsys, trained[0], input_path, output)
    assert code == expected.code, err[-2000:]
    if code != EXIT_OK:
        assert expected.message in err.strip().splitlines()[-1]
        _only_the_failed_run_logged(spark, output, err)
        assert not (tmp_path / "results.csv").exists()
        return
    assert summary["input_rows"] == summary["scored_rows"] + summary["rejected_rows"]
    assert (summary["scored_rows"], summary["rejected_rows"]) == (expected.scored, expected.rejected)
    partition = output / f"snapshot_date={DATE}"
    scored = pq.read_table(partition).num_rows if expected.scored else 0
    assert scored == expected.scored
    assert len((tmp_path / "results.csv").read_text().splitlines()) == expected.scored + 1
    if expected.rejected:
        reasons = pq.read_table(output / "_rejects" / f"snapshot_date={DATE}").column("reason").to_pylist()
        assert len(reasons) == expected.rejected
        assert all(expected.reason in r for r in reasons), reasons


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_bad_model(case, spark, trained, snapshot, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(trained[0], model_dir)
    _tamper_model(model_dir, case)
    output = tmp_path / "scored"
    code, _, err = _run(spark, capsys, model_dir, snapshot[0], output)
    assert code == EXIT_MODEL
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error:")
    assert MODEL_CASES[case] in last
    _only_the_failed_run_logged(spark, output, err)
