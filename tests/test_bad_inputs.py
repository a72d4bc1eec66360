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


def _quoted_newline(folder: Path) -> Path:
    text = _lines([row(1), row(2, merchant_category="@@"), row(3)]).replace("@@", '"Food\ndrinks"')
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
        Outcome(3, "missing 1 required column(s): age"),
    ),
    "extra column": (
        _csv([{**row(1), "note": "x"}, {**row(2), "note": "y"}], columns=[*INPUT_COLUMNS, "note"]),
        Outcome(0, scored=2),
    ),
    "column of the wrong type": (
        _csv([row(1, age="young"), row(2, age="old"), row(3)]),
        Outcome(0, scored=1, rejected=2, reason="age: not a number"),
    ),
    "parquet column of the wrong type": (
        _parquet_wrong_type,
        Outcome(0, scored=1, rejected=1, reason="has_paid"),
    ),
    "malformed uuid": (
        _csv([row(1), row(2, uuid="12345")]),
        Outcome(0, scored=1, rejected=1, reason="malformed"),
    ),
    "empty uuid": (
        _csv([row(1), row(2, uuid="")]),
        Outcome(0, scored=1, rejected=1, reason="uuid: missing"),
    ),
    "duplicate uuids": (
        _csv([row(1), row(2), row(3, uuid=row(2)["uuid"])]),
        Outcome(0, scored=1, rejected=2, reason="uuid: duplicate (2 rows)"),
    ),
    "duplicate uuids differing in case": (
        _csv([row(1), row(2, uuid=GOOD_ROW["uuid"]), row(3, uuid=GOOD_ROW["uuid"].upper())]),
        Outcome(0, scored=1, rejected=2, reason="uuid: duplicate (2 rows)"),
    ),
    "empty file": (_text(b""), Outcome(3, "is empty")),
    "header only": (_text(";".join(INPUT_COLUMNS) + "\n"), Outcome(0)),
    "truncated last line": (
        _truncated,
        Outcome(0, scored=1, rejected=1, reason="line: wrong number of fields"),
    ),
    "comma-separated file": (
        _text(_lines([row(1)]).replace(";", ",")),
        Outcome(3, "is the file comma-separated?"),
    ),
    "utf-8 byte-order mark": (
        _text(b"\xef\xbb\xbf" + _lines([row(1), row(2)]).encode()),
        Outcome(0, scored=2),
    ),
    "crlf line endings": (_csv([row(1), row(2)], newline="\r\n"), Outcome(0, scored=2)),
    "quoted field holding a semicolon": (_quoted_semicolon, Outcome(0, scored=2)),
    "unseen categories": (
        _csv([row(1, merchant_category="Space travel", merchant_group="Moon", name_in_email="X"), row(2)]),
        Outcome(0, scored=2),
    ),
    "out-of-range values": (
        _csv([row(1, age="130"), row(2, num_unpaid_bills="-3"), row(3, time_hours="25"), row(4)]),
        Outcome(0, scored=1, rejected=3, reason="imum"),
    ),
    "java float suffixes and hex floats": (
        _csv(
            [
                row(1, num_active_inv="5d"),
                row(2, num_unpaid_bills="7F"),
                row(3, avg_payment_span_0_12m="0x1p3"),
                row(4, default="1d"),  # the label is not read without --unlabeled-only
                row(5, avg_payment_span_0_12m="+1.5E+1", max_paid_inv_0_12m=".5", recovery_debt="3."),
                row(6, time_hours="2e0", account_amount_added_12_24m="-0"),
            ]
        ),
        Outcome(0, scored=3, rejected=3, reason="not a number"),
    ),
    "a count of 1e19 or more": (
        _csv([row(1, num_active_inv="1e19"), row(2, num_unpaid_bills="-1e300"), row(3)]),
        Outcome(0, scored=1, rejected=2, reason="too large"),
    ),
    "utf-16 file": (
        _text(_lines([row(1), row(2)]).encode("utf-16")),
        Outcome(3, "UTF-16"),
    ),
    "quoted field holding a newline": (_quoted_newline, Outcome(0, scored=3)),
    "nan and inf": (
        _csv([row(1, max_paid_inv_0_12m="NaN"), row(2, avg_payment_span_0_3m="-inf"), row(3)]),
        Outcome(0, scored=1, rejected=2, reason="not a finite number"),
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
    argv = ["--input", str(input_path), "--model-dir", str(model_dir), "--output", str(output), *extra]
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
