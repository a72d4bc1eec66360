"""A corpus of bad inputs, each with its expected outcome, run through the scoring job's command line.

Every case ends either in a clear one-line error, its documented exit code and nothing written, or in
scored and rejected rows whose counts reconcile with the input. No case may lose a row silently.

The cases that are rows (a bad value, a bad uuid, a quoted field, a cut last line) share one file and
one run, each row's outcome asserted by its uuid: a job run costs half a minute or more, a row nothing.
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
from jobrun import run_job

from defaultrisk.model import model_version
from defaultrisk.schema import INPUT_COLUMNS

from rows import GOOD_ROW, row, write_csv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
import score as score_job

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

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


def _parquet_wrong_type(folder: Path) -> Path:
    frame = pd.DataFrame([row(1), row(2)])
    frame["has_paid"] = [5, 1]  # a number where True/False belongs
    path = folder / "in.parquet"
    frame.to_parquet(path)
    return path


def _row_cases_file(folder: Path) -> Path:
    """Every row of ROW_CASES in one file with an extra column; fields holding `;` or a newline quoted."""
    columns = [*INPUT_COLUMNS, EXTRA_COLUMN]

    def field(value: str) -> str:
        return f'"{value}"' if ";" in value or "\n" in value else value

    lines = [";".join(columns)]
    for number, (values, _) in enumerate(r for rows in ROW_CASES.values() for r in rows):
        lines.append(";".join(field(v) for v in [*(values[c] for c in INPUT_COLUMNS), f"note {number}"]))
    last = lines[-1].split(";")
    lines[-1] = ";".join(last[:-2]) + ";"  # the last line cut short
    path = folder / "in.csv"
    path.write_text("\n".join(lines))
    return path


CASES: dict[str, tuple] = {
    "missing column": (
        _csv([row(1)], columns=[c for c in INPUT_COLUMNS if c != "age"]),
        Outcome(3, "missing 1 required column(s): age"),
    ),
    "parquet column of the wrong type": (
        _parquet_wrong_type,
        Outcome(0, scored=1, rejected=1, reason="has_paid"),
    ),
    "empty file": (_text(b""), Outcome(3, "is empty")),
    "header only": (_text(";".join(INPUT_COLUMNS) + "\n"), Outcome(0)),
    "comma-separated file": (
        _text(_lines([row(1)]).replace(";", ",")),
        Outcome(3, "is the file comma-separated?"),
    ),
    # Two ways a file's bytes differ from the usual, in one file: each alone scores the same rows.
    "utf-8 byte-order mark and crlf line endings": (
        _text(b"\xef\xbb\xbf" + _lines([row(1), row(2)]).replace("\n", "\r\n").encode()),
        Outcome(0, scored=2),
    ),
    "utf-16 file": (
        _text(_lines([row(1), row(2)]).encode("utf-16")),
        Outcome(3, "UTF-16"),
    ),
}

NOT_A_NUMBER = "not a number"
DUPLICATE = "uuid: duplicate (2 rows)"
# Rows of one file, each with the reason it is rejected for (a part of it), or None: scored. Every case
# numbers its rows from its own hundred, so no uuid is shared by accident.
ROW_CASES: dict[str, list[tuple[dict, str | None]]] = {
    "column of the wrong type": [
        (row(101, age="young"), "age: not a number"),
        (row(102, age="old"), "age: not a number"),
        (row(103), None),
    ],
    "malformed uuid": [(row(201), None), (row(202, uuid="12345"), "malformed")],
    "empty uuid": [(row(301), None), (row(302, uuid=""), "uuid: missing")],
    "duplicate uuids": [
        (row(401), None),
        (row(402), DUPLICATE),
        (row(403, uuid=row(402)["uuid"]), DUPLICATE),
    ],
    "duplicate uuids differing in case": [
        (row(501), None),
        (row(502, uuid=GOOD_ROW["uuid"]), DUPLICATE),
        (row(503, uuid=GOOD_ROW["uuid"].upper()), DUPLICATE),
    ],
    "unseen categories": [
        (row(601, merchant_category="Space travel", merchant_group="Moon", name_in_email="X"), None),
        (row(602), None),
    ],
    "out-of-range values": [
        (row(701, age="130"), "imum"),
        (row(702, num_unpaid_bills="-3"), "imum"),
        (row(703, time_hours="25"), "imum"),
        (row(704), None),
    ],
    "java float suffixes and hex floats": [
        (row(801, num_active_inv="5d"), NOT_A_NUMBER),
        (row(802, num_unpaid_bills="7F"), NOT_A_NUMBER),
        (row(803, avg_payment_span_0_12m="0x1p3"), NOT_A_NUMBER),
        (row(804, default="1d"), None),  # the label is not read without --unlabeled-only
        (row(805, avg_payment_span_0_12m="+1.5E+1", max_paid_inv_0_12m=".5", recovery_debt="3."), None),
        (row(806, time_hours="2e0", account_amount_added_12_24m="-0"), None),
    ],
    "a count of 1e19 or more": [
        (row(901, num_active_inv="1e19"), "too large"),
        (row(902, num_unpaid_bills="-1e300"), "too large"),
        (row(903), None),
    ],
    "nan and inf": [
        (row(1001, max_paid_inv_0_12m="NaN"), "not a finite number"),
        (row(1002, avg_payment_span_0_3m="-inf"), "not a finite number"),
        (row(1003), None),
    ],
    "quoted field holding a semicolon": [
        (row(1101), None),
        (row(1102, merchant_category="Food; drinks"), None),
    ],
    "quoted field holding a newline": [
        (row(1201), None),
        (row(1202, merchant_category="Food\ndrinks"), None),
        (row(1203), None),
    ],
    # Must stay last: the file's last line, cut short (two fields short, no newline).
    "truncated last line": [(row(1301), None), (row(1302), "line: wrong number of fields")],
}
# The file also carries a column the schema does not know: its rows score all the same.
EXTRA_COLUMN = "note"


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
    if case in ("corrupt model file", "model file that is a pickle"):
        # A new version for the new file, so what refuses it is the file's content, not its identity.
        manifest["model_version"] = model_version(manifest["model_sha256"], manifest)
    manifest_path.write_text(json.dumps(manifest))


MODEL_CASES = {
    "corrupt model file": "not a valid XGBoost model",
    "model file that is a pickle": "pickle",
    "manifest hash mismatch": "does not match its manifest",
    "manifest feature list mismatch": "feature list does not match",
}


def _run(
    spark, capsys, model_dir: Path, input_path: Path, output: Path, *extra: str
) -> tuple[int, dict | None, str]:
    argv = ["--input", input_path, "--model-dir", model_dir, "--output", output, *extra]
    argv += ["--snapshot-date", DATE, "--results-csv", output.parent / "results.csv"]
    return run_job(score_job.main, argv, spark, capsys)


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
    if code != 0:
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


def test_bad_rows_each_get_their_reason_in_one_run(spark, trained, tmp_path, capsys):
    expected = [(values["uuid"], reason) for rows in ROW_CASES.values() for values, reason in rows]
    output = tmp_path / "scored"
    code, summary, err = _run(spark, capsys, trained[0], _row_cases_file(tmp_path), output)
    assert code == 0, err[-2000:]
    scored = sorted(uuid for uuid, reason in expected if reason is None)
    rejected = sorted(uuid for uuid, reason in expected if reason is not None)
    assert summary["input_rows"] == summary["scored_rows"] + summary["rejected_rows"] == len(expected)
    assert (summary["scored_rows"], summary["rejected_rows"]) == (len(scored), len(rejected))
    assert sorted(pq.read_table(output / f"snapshot_date={DATE}").column("uuid").to_pylist()) == scored
    results = (tmp_path / "results.csv").read_text().splitlines()
    assert sorted(line.split(";")[0] for line in results[1:]) == scored
    rejects = pq.read_table(output / "_rejects" / f"snapshot_date={DATE}").to_pylist()
    assert sorted(r["uuid"] or "" for r in rejects) == rejected
    wanted = {uuid: reason for uuid, reason in expected if reason is not None}
    wrong = [(r["uuid"], r["reason"]) for r in rejects if wanted[r["uuid"] or ""] not in r["reason"]]
    assert wrong == [], wrong


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_bad_model(case, spark, trained, snapshot, tmp_path, capsys):
    model_dir = tmp_path / "model"
    shutil.copytree(trained[0], model_dir)
    _tamper_model(model_dir, case)
    output = tmp_path / "scored"
    code, _, err = _run(spark, capsys, model_dir, snapshot[0], output)
    assert code == 4
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error:")
    assert MODEL_CASES[case] in last
    _only_the_failed_run_logged(spark, output, err)


def _parquet_parts(folder: Path, *parts: list[dict]) -> Path:
    path = folder / "in"
    path.mkdir()
    for i, rows in enumerate(parts):
        pd.DataFrame(rows).to_parquet(path / f"part-{i}.parquet")
    return path


def _stale_crc(spark, folder: Path) -> tuple[Path, str]:
    """A part rewritten after Spark wrote it and its Hadoop checksum file: the `.crc` is stale."""
    path = folder / "in"
    spark.createDataFrame(pd.DataFrame([row(1), row(2)])).coalesce(1).write.parquet(str(path))
    part = next(path.glob("part-*.parquet"))
    pd.DataFrame([row(3), row(4), row(5)]).to_parquet(part)
    return path, part.name


def _truncated_part(spark, folder: Path) -> tuple[Path, str]:
    path = _parquet_parts(folder, [row(1)], [row(2), row(3)])
    data = (path / "part-1.parquet").read_bytes()
    (path / "part-1.parquet").write_bytes(data[: len(data) // 2])
    return path, "part-1.parquet"


def _mixed_formats(spark, folder: Path) -> tuple[Path, str]:
    path = _parquet_parts(folder, [row(1)])
    write_csv(path / "part-1.csv", [row(2)])
    return path, "part-1.csv"


def _csv_as_parquet(spark, folder: Path) -> tuple[Path, str]:
    return write_csv(folder / "in.csv", [row(1)]), "in.csv"


def _parts_with_other_columns(spark, folder: Path) -> tuple[Path, str]:
    path = folder / "in"
    path.mkdir()
    write_csv(path / "part-0.csv", [row(1)])
    write_csv(path / "part-1.csv", [row(2)], columns=[c for c in INPUT_COLUMNS if c != "age"])
    return path, "part-1.csv"


UNREADABLE = {
    "parquet part with a stale crc": (_stale_crc, ()),
    "parquet folder with a truncated part": (_truncated_part, ()),
    "folder mixing csv and parquet parts": (_mixed_formats, ()),
    "csv file read as parquet": (_csv_as_parquet, ("--input-format", "parquet")),
    "csv parts with different columns": (_parts_with_other_columns, ()),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_input_exits_3_naming_the_file(case, spark, trained, tmp_path, capsys):
    build, extra = UNREADABLE[case]
    input_path, file_name = build(spark, tmp_path)
    output = tmp_path / "scored"
    code, _, err = _run(spark, capsys, trained[0], input_path, output, *extra)
    assert code == 3, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error:") and file_name in last
    assert "Traceback" not in err
    _only_the_failed_run_logged(spark, output, err)


def test_csv_parts_are_each_read_by_their_own_header(spark, trained, tmp_path, capsys):
    """Two exports of one table, the columns in another order: the same scores as one file."""
    rows = [row(i, age=str(20 + i), num_arch_ok_0_12m=str(i)) for i in range(1, 7)]
    one_file = write_csv(tmp_path / "one.csv", rows)
    folder = tmp_path / "parts"
    folder.mkdir()
    write_csv(folder / "part-0.csv", rows[:3])
    write_csv(folder / "part-1.csv", rows[3:], columns=INPUT_COLUMNS[::-1])
    code, summary, err = _run(spark, capsys, trained[0], folder, tmp_path / "a" / "scored")
    assert code == 0, err[-2000:]
    assert (summary["input_rows"], summary["scored_rows"]) == (6, 6)
    code, _, err = _run(spark, capsys, trained[0], one_file, tmp_path / "b" / "scored")
    assert code == 0, err[-2000:]
    assert (tmp_path / "a" / "results.csv").read_bytes() == (tmp_path / "b" / "results.csv").read_bytes()


def test_unlabeled_only_rejects_a_label_that_is_not_0_or_1(spark, trained, tmp_path, capsys):
    labels = {1: "maybe", 2: "2", 3: "yes", 4: "1", 5: "0.0", 6: "NA", 7: "", 8: "1d"}
    path = write_csv(tmp_path / "in.csv", [row(i, default=label) for i, label in labels.items()])
    output = tmp_path / "scored"
    code, summary, err = _run(spark, capsys, trained[0], path, output, "--unlabeled-only")
    assert code == 0, err[-2000:]
    assert summary["skipped_labelled_rows"] == 2
    assert (summary["input_rows"], summary["scored_rows"], summary["rejected_rows"]) == (6, 2, 4)
    rejects = pq.read_table(output / "_rejects" / f"snapshot_date={DATE}").to_pylist()
    assert sorted((r["default"], r["reason"]) for r in rejects) == [
        (label, "default: not 0 or 1") for label in sorted(["maybe", "2", "yes", "1d"])
    ]
