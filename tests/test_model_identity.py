"""A model's identity: `model_version` covers the booster and every manifest field scoring reads.

Two model folders sharing a booster but not a threshold are two models, each scoring with its own
threshold in one session; a model whose file or scoring fields changed without a new version is
refused before anything is read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from jobrun import run_job

from defaultrisk.errors import ModelError
from defaultrisk.model import MODEL_KEY_ENV, model_version, read_checked_model, sha256_bytes, sign_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
import score as score_job

# A whole job per test: the second stage of scripts/test.sh.
pytestmark = pytest.mark.job

DATE = "2026-11-21"
QUIET_DRIFT = "[drift]\nenabled = false\n"


def copy_model(source: Path, target: Path, edit: Callable[[dict, Path], None], restamp: bool) -> dict:
    """A copy of a model folder with its manifest (or file) edited; `restamp` recomputes the version."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    edit(manifest, target)
    if restamp:
        manifest["model_version"] = model_version(manifest["model_sha256"], manifest)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _score(spark, capsys, model_dir: Path, input_path: Path, root: Path) -> tuple[int, dict | None, str]:
    config = root / "score.toml"
    root.mkdir(parents=True, exist_ok=True)
    config.write_text(QUIET_DRIFT)
    argv = ["--input", str(input_path), "--model-dir", str(model_dir), "--output", str(root / "scored")]
    argv += ["--snapshot-date", DATE, "--config", str(config), "--results-csv", str(root / "results.csv")]
    return run_job(score_job.main, argv, spark, capsys)


def _scored(root: Path) -> list[dict]:
    return pq.read_table(root / "scored" / f"snapshot_date={DATE}").to_pylist()


def test_models_sharing_a_booster_each_flag_by_their_own_threshold(
    spark, trained, snapshot, tmp_path, capsys
):
    """A recalibrated model (same booster, another threshold) scored after the original in one
    session: workers must not reuse the first model's threshold, and a pd equal to the threshold is
    high risk (`pd >= threshold`)."""
    original = json.loads((trained[0] / "manifest.json").read_text())
    code, _, err = _score(spark, capsys, trained[0], snapshot[0], tmp_path / "a")
    assert code == 0, err[-2000:]
    first = _scored(tmp_path / "a")
    threshold = original["threshold"]["value"]
    assert all(r["is_high_risk"] == (r["pd"] >= threshold) for r in first)
    pds = sorted((r["pd"] for r in first), reverse=True)
    flagged = sum(r["is_high_risk"] for r in first)
    wanted = flagged + 7  # another count than the original model's, with no tie at the cut
    wanted += next(i for i in range(len(pds)) if pds[wanted - 1 + i] != pds[wanted + i])
    new_threshold = pds[wanted - 1]  # exactly one row's pd

    def set_threshold(manifest: dict, _: Path) -> None:
        manifest["threshold"]["value"] = new_threshold

    recalibrated = copy_model(trained[0], tmp_path / "recalibrated", set_threshold, restamp=True)
    assert recalibrated["model_version"] != original["model_version"]
    code, summary, err = _score(spark, capsys, tmp_path / "recalibrated", snapshot[0], tmp_path / "b")
    assert code == 0, err[-2000:]
    assert summary["model_version"] == recalibrated["model_version"]
    second = _scored(tmp_path / "b")
    assert {r["model_version"] for r in second} == {recalibrated["model_version"]}
    assert sorted(r["pd"] for r in second) == sorted(r["pd"] for r in first)  # same booster, same pd
    assert sum(r["is_high_risk"] for r in second) == wanted
    assert all(r["is_high_risk"] == (r["pd"] >= new_threshold) for r in second)
    assert any(r["pd"] == new_threshold and r["is_high_risk"] for r in second)


def _threshold(manifest: dict, _: Path) -> None:
    manifest["threshold"]["value"] = manifest["threshold"]["value"] / 2


def _calibration(manifest: dict, _: Path) -> None:
    manifest["calibration"] = {"method": "none"}


def _booster_and_sha(manifest: dict, folder: Path) -> None:
    """Another model file (here the same trees written differently) and its sha256, together."""
    data = json.dumps(json.loads((folder / "model.json").read_bytes()), indent=1).encode()
    (folder / "model.json").write_bytes(data)
    manifest["model_sha256"] = sha256_bytes(data)


def _xgboost_version(manifest: dict, _: Path) -> None:
    manifest["xgboost_version"] = "1.7.6"


def _master_scale(manifest: dict, _: Path) -> None:
    manifest["master_scale"] = {
        "boundaries": [0.0, 0.01, 1.0],
        "labels": ["A", "B"],
        "central_pd": [0.005, 0.1],
    }


EDITS = {
    "threshold edited": _threshold,
    "calibration edited": _calibration,
    "booster replaced with its sha256": _booster_and_sha,
    "xgboost version edited": _xgboost_version,
    "master scale edited": _master_scale,
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_changed_model_without_a_new_version_is_refused(case, spark, trained, snapshot, tmp_path, capsys):
    copy_model(trained[0], tmp_path / "model", EDITS[case], restamp=False)
    code, _, err = _score(spark, capsys, tmp_path / "model", snapshot[0], tmp_path / "run")
    assert code == 4, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("score: error:") and "does not match what the model scores with" in last
    assert not (tmp_path / "run" / "scored" / f"snapshot_date={DATE}").exists()


def test_a_model_file_outside_its_folder_is_refused(spark, trained, snapshot, tmp_path, capsys):
    def point_outside(manifest: dict, folder: Path) -> None:
        shutil.copy(folder / "model.json", folder.parent / "elsewhere.json")
        manifest["model_file"] = "../elsewhere.json"

    copy_model(trained[0], tmp_path / "model", point_outside, restamp=True)
    code, _, err = _score(spark, capsys, tmp_path / "model", snapshot[0], tmp_path / "run")
    assert code == 4, err[-2000:]
    assert "model_file must name a file inside" in err.strip().splitlines()[-1]


def test_with_a_model_key_set_only_models_signed_with_it_score(
    spark, trained, snapshot, tmp_path, capsys, monkeypatch
):
    model_dir = tmp_path / "model"
    copy_model(trained[0], model_dir, lambda manifest, folder: None, restamp=False)
    monkeypatch.setenv(MODEL_KEY_ENV, "the approver's key")
    refusals = []
    for step, sign_with in enumerate((None, "another key")):
        if sign_with:
            sign_model(model_dir, sign_with)
        code, _, err = _score(spark, capsys, model_dir, snapshot[0], tmp_path / f"run{step}")
        refusals.append((code, err.strip().splitlines()[-1]))
    assert [code for code, _ in refusals] == [4, 4]
    assert "is not signed" in refusals[0][1] and "signature does not match" in refusals[1][1]

    version = sign_model(model_dir, "the approver's key")
    assert read_checked_model(model_dir)[1]["model_version"] == version
    # Whoever can recompute model_version cannot approve: an edited, restamped model is refused.
    manifest = json.loads((model_dir / "manifest.json").read_text())
    _threshold(manifest, model_dir)
    manifest["model_version"] = model_version(manifest["model_sha256"], manifest)
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="signature does not match"):
        read_checked_model(model_dir)
    monkeypatch.delenv(MODEL_KEY_ENV)
    assert read_checked_model(model_dir)[1]["model_version"] == manifest["model_version"]


def test_the_sign_model_command_approves_a_model_that_then_scores_signed(
    spark, trained, snapshot, tmp_path, capsys, monkeypatch
):
    """`defaultrisk sign-model`, run as an approver runs it, signs a real model that scoring then takes."""
    model_dir = tmp_path / "model"
    copy_model(trained[0], model_dir, lambda manifest, folder: None, restamp=False)
    env = {**os.environ, MODEL_KEY_ENV: "the approver's key"}
    command = [sys.executable, "-m", "defaultrisk", "sign-model", str(model_dir)]

    def run(environment: dict) -> subprocess.CompletedProcess:
        return subprocess.run(command, check=False, env=environment, capture_output=True, text=True)

    signed = run(env)
    assert signed.returncode == 0, signed.stderr[-2000:]
    version = json.loads((model_dir / "manifest.json").read_text())["model_version"]
    assert signed.stdout.strip() == f"signed {model_dir} ({version})"
    unkeyed = run({k: v for k, v in env.items() if k != MODEL_KEY_ENV})
    assert unkeyed.returncode == 2 and "DEFAULTRISK_MODEL_KEY is not set" in unkeyed.stderr

    monkeypatch.setenv(MODEL_KEY_ENV, "the approver's key")
    code, summary, err = _score(spark, capsys, model_dir, snapshot[0], tmp_path / "run")
    assert code == 0, err[-2000:]
    assert summary["model_version"] == version
    monkeypatch.setenv(MODEL_KEY_ENV, "another key")
    with pytest.raises(ModelError, match="signature does not match"):
        read_checked_model(model_dir)
