"""Arguments an operator types: dates are YYYY-MM-DD only; a model folder whose name holds `=` is a folder."""

import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402


@pytest.mark.parametrize("text", ["2026-W01-1", "20261124", "2026-11-24T00:00", "2026-13-01"])
def test_a_snapshot_date_is_yyyy_mm_dd_only(tmp_path, capsys, text):
    argv = ["--input", "in.csv", "--model-dir", "m", "--output", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as stopped:
        score_job.main([*argv, "--snapshot-date", text])
    assert stopped.value.code == 2  # the documented exit code for bad arguments
    assert f"not a date (YYYY-MM-DD): '{text}'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_folder_whose_name_holds_an_equals_sign_is_a_folder(
    spark, trained, snapshot, tmp_path, capsys
):
    model_dir = tmp_path / "2026-11-01=m1"  # looks like DATE=DIR, but the folder exists
    shutil.copytree(trained[0], model_dir)
    out = tmp_path / "scored"
    argv = ["--input", str(snapshot[0]), "--model-dir", str(model_dir), "--output", str(out)]
    code = score_job.main([*argv, "--snapshot-date", "2026-11-24"], spark=spark)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code in (0, 6)  # 6: drift over the limit, the scores written all the same
    assert summary["model_version"] == json.loads((trained[0] / "manifest.json").read_text())["model_version"]
    assert (out / "snapshot_date=2026-11-24" / "_SUCCESS").is_file()
