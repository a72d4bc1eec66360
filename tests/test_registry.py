"""The model registry against a real MLflow tracking server on a loopback port (SQLite store).

One module-scoped server; one `train --register` run as a process registers version 1 of `pd`, and
a second, shallower model registered by the training pipeline in this process is version 2. The
scoring job, `mlflow.pyfunc` (pandas and `spark_udf`) and `defaultrisk promote` then work on them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from jobrun import run_job
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sampledata import make_history, make_snapshot, write_original_csv

from defaultrisk import cli
from defaultrisk.backtest.evaluate import load_manifests
from defaultrisk.errors import ModelError, OutputError
from defaultrisk.model import read_checked_model
from defaultrisk.registry.location import DB_FILE, REGISTRY_ENV, TRACKING_ENV
from defaultrisk.registry.register import Registration
from defaultrisk.registry.resolve import local_model_dir
from defaultrisk.schema import CATEGORY, FEATURE_NAMES, FEATURES, FLAG, UUID
from defaultrisk.training.config import XGBoostParams
from defaultrisk.training.pipeline import run_train

from conftest import SMALL_TRAIN_TOML, small_train_config

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MLFLOW = str(Path(PYTHON).with_name("mlflow"))
NAME = "pd"
DATE = "2026-01-31"

pytestmark = pytest.mark.job


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**changes) -> dict:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'lib'}{os.pathsep}{REPO / 'tests'}"}
    env.pop(REGISTRY_ENV, None)
    env.pop(TRACKING_ENV, None)
    env.update(changes)
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `mlflow server` (SQLite store, proxied artifacts) on a free loopback port: its URL.

    Started in its own session, so that it and the workers it starts are stopped together by its
    process group, also when a test or this fixture fails."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    args = [MLFLOW, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    args += ["--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1"]
    args += ["--port", str(port), "--workers", "1"]
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (folder / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.read().strip() == b"OK":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the MLflow server did not answer /health in 90 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A small labelled history (training takes seconds on it), the training and scoring settings."""
    folder = tmp_path_factory.mktemp("registry-data")
    history, _ = make_history(8000, seed=3)
    write_original_csv(history, folder / "history.csv")
    (folder / "train.toml").write_text(SMALL_TRAIN_TOML)
    (folder / "score.toml").write_text("[drift]\nenabled = false\n")
    return folder


@pytest.fixture(scope="module")
def registered(server, data, tmp_path_factory):
    """`defaultrisk train --register pd --registry URL` as a process: (model folder, its summary)."""
    model_dir = tmp_path_factory.mktemp("registered") / "model"
    args = [PYTHON, "-m", "defaultrisk", "train", "--input", data / "history.csv", "--model-dir", model_dir]
    args += ["--config", data / "train.toml", "--register", NAME, "--registry", server]
    done = subprocess.run(
        [str(a) for a in args], env=_env(), capture_output=True, text=True, timeout=600, cwd=data, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return model_dir, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def second(spark, server, data, registered, tmp_path_factory):
    """A shallower model from another seed, registered by the training pipeline here: version 2."""
    model_dir = tmp_path_factory.mktemp("second") / "model"
    xgb_params = XGBoostParams(n_estimators=20, max_depth=2, learning_rate=0.2, nthread=1)
    cfg = small_train_config(data / "history.csv", model_dir, xgboost=xgb_params, seed=11)
    summary = run_train(spark, cfg, registration=Registration(NAME, server))
    return model_dir, summary


@pytest.fixture
def tracking(server, monkeypatch):
    """The team's server as the registry (MLFLOW_TRACKING_URI), for this test only."""
    monkeypatch.delenv(REGISTRY_ENV, raising=False)
    monkeypatch.setenv(TRACKING_ENV, server)
    return MlflowClient(server, server)


@pytest.fixture(scope="module")
def snapshot_frame(data):
    frame, info = make_snapshot(3000, seed=5, bad_rows=7)
    write_original_csv(frame, data / "snapshot.csv")
    return frame, info


def _score_argv(model, data, output) -> list[str]:
    argv = ["--input", data / "snapshot.csv", "--model-dir", model, "--output", output]
    return [str(a) for a in [*argv, "--snapshot-date", DATE, "--config", data / "score.toml"]]


def _score(spark, capsys, model, data, output):
    return run_job(
        lambda a, spark: cli.run_command("score", a, spark), _score_argv(model, data, output), spark, capsys
    )


@pytest.fixture(scope="module")
def scored(spark, server, registered, snapshot_frame, data) -> Path:
    """The snapshot scored by the scoring job with `models:/pd/1`: the scored table's root."""
    output = data / "scored-by-version"
    with pytest.MonkeyPatch.context() as env:
        env.delenv(REGISTRY_ENV, raising=False)
        env.setenv(TRACKING_ENV, server)
        assert cli.run_command("score", _score_argv(f"models:/{NAME}/1", data, output), spark) == 0
    return output


def _promote(capsys, *argv) -> tuple[int, dict | None, str]:
    code = cli.main(["promote", *[str(a) for a in argv]])
    out, err = capsys.readouterr()
    return code, (json.loads(out.strip().splitlines()[-1]) if out.strip() else None), err


def _comparison(challenger: str, champion: str, **figures) -> dict:
    side = {"roc_auc": 0.8, "log_loss": 0.06, "brier": 0.012, "expected_defaults": 40.0}
    side.update({"observed_defaults": 41, "calibration_ratio": 0.98, "jeffreys_p_value": 0.6})
    return {
        "champion_version": champion,
        "challenger_version": challenger,
        "snapshots": ["2025-01-31", "2025-02-28"],
        "customers": 5000,
        "defaults": 71,
        "champion": side,
        "challenger": {**side, "roc_auc": 0.81},
        "delta_roc_auc": 0.011,
        "delong_z": 2.1,
        "delong_p_value": 0.036,
        "delta_log_loss": -0.0012,
        "delta_brier": -0.0003,
        "per_snapshot": [],
        **figures,
    }


def _evidence(folder: Path, *comparisons: dict) -> Path:
    report = folder / "_report"
    report.mkdir(parents=True)
    run = {"run_id": "bt-20260105-1", "backtested_at": "2026-01-05T06:00:00+00:00", "scored": "/scored"}
    (report / "comparison.json").write_text(
        json.dumps({**run, "window_months": 12, "comparisons": comparisons})
    )
    return folder


# -- training registers ------------------------------------------------------------------------------


def test_train_register_logs_the_run_and_registers_a_version_tagged_with_our_identity(registered, tracking):
    model_dir, summary = registered
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert summary["registry"]["name"] == NAME
    assert summary["registry"]["uri"] == f"models:/{NAME}/{summary['registry']['version']}"
    version = tracking.get_model_version(NAME, summary["registry"]["version"])
    assert version.tags["model_version"] == manifest["model_version"]
    assert version.tags["run_id"] == summary["registry"]["run_id"] == version.run_id
    run = tracking.get_run(version.run_id)
    assert run.data.params["strategy"] == manifest["model_selection"]["strategy"]
    assert run.data.params["xgboost.max_depth"] == str(manifest["model_selection"]["params"]["max_depth"])
    assert run.data.params["training.seed"] == "7"
    assert run.data.params["rows.input_rows"] == str(manifest["row_counts"]["input_rows"])
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(manifest["metrics"]["holdout"]["roc_auc"])
    selection = manifest["model_selection"]
    assert run.data.metrics[f"cv_{selection['metric']}"] == pytest.approx(selection["cv_score"])
    assert "holdout_default_rate" in run.data.metrics
    logged = {a.path for a in tracking.list_artifacts(version.run_id)}
    assert {"manifest.json", "metrics.json", "report"} <= logged
    plots = [a.path for a in tracking.list_artifacts(version.run_id, "report") if a.path.endswith(".png")]
    assert plots


def test_a_registration_that_fails_leaves_the_folder_and_says_so_in_one_line(registered):
    model_dir, _ = registered
    before = sorted(p.name for p in model_dir.iterdir())
    closed = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(OutputError) as failed:
        Registration(NAME, closed).register(model_dir)
    line = str(failed.value)
    assert "\n" not in line and str(model_dir) in line and "is written" in line and closed in line
    assert sorted(p.name for p in model_dir.iterdir()) == before


# -- models:/ URIs in the scoring job ----------------------------------------------------------------


def test_score_by_version_and_alias_gives_the_local_folders_pd_and_an_unknown_alias_exits_4(
    spark, registered, scored, data, tracking, tmp_path, capsys
):
    model_dir, summary = registered
    tracking.set_registered_model_alias(NAME, "live", summary["registry"]["version"])
    tables = {"version": pd.read_parquet(scored)}
    for label, model in (("folder", model_dir), ("alias", f"models:/{NAME}@live")):
        code, run, err = _score(spark, capsys, model, data, tmp_path / label)
        assert code == 0, err
        assert run["model_version"] == summary["model_version"]
        tables[label] = pd.read_parquet(tmp_path / label)
    tables = {k: t.sort_values(UUID).reset_index(drop=True) for k, t in tables.items()}
    assert len(tables["folder"]) == 3000 - 1  # 3,007 rows, 8 of them rejected
    for label in ("version", "alias"):
        assert tables[label][UUID].tolist() == tables["folder"][UUID].tolist()
        assert (tables[label]["pd"] == tables["folder"]["pd"]).all()
        assert (tables[label]["model_version"] == summary["model_version"]).all()

    code, scored, err = _score(spark, capsys, f"models:/{NAME}@nobody", data, tmp_path / "none")
    assert code == 4 and scored is None
    assert err.strip().splitlines()[-1] == f"score: error: registered model '{NAME}' has no alias 'nobody'"


# -- the pyfunc flavour ------------------------------------------------------------------------------


def _as_mlflow_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Whole-number columns as float64: MLflow converts int64 to a double column only when it fits
    in six bytes, so it refuses them (docs/registry.md)."""
    return frame.astype({c: "float64" for c in frame.select_dtypes("int64").columns})


def test_pyfunc_gives_the_jobs_pd_bit_for_bit_and_its_reasons_on_invalid_rows(
    scored, snapshot_frame, tracking, spark
):
    frame, info = snapshot_frame
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    inputs = model.metadata.get_input_schema()
    assert inputs.input_names() == [UUID, *FEATURE_NAMES]
    assert {s.name: s.type.name for s in inputs.inputs}["has_paid"] == "boolean"
    assert len([n for n in inputs.required_input_names() if n in FEATURE_NAMES]) == len(FEATURES) == 41

    raw = _as_mlflow_types(frame)
    text = raw.index[raw["max_paid_inv_0_12m"].map(lambda v: isinstance(v, str))]
    assert len(text) == 1  # "abc" in a number column: MLflow refuses the frame before predict runs
    with pytest.raises(MlflowException, match="max_paid_inv_0_12m"):
        model.predict(raw)
    raw = raw.drop(index=text)
    out = model.predict(raw)
    assert list(out.columns) == ["pd", "grade", "is_high_risk", "reason"]
    job = pd.read_parquet(scored)
    rejects = pd.read_parquet(scored / "_rejects")
    answers = out.assign(uuid=raw[UUID].to_numpy())
    scored = answers[answers["reason"].isna()].merge(job, on=UUID, suffixes=("", "_job"), how="outer")
    assert len(scored) == len(job) and scored["pd"].notna().all() and scored["pd_job"].notna().all()
    assert (scored["pd"] == scored["pd_job"]).all()
    assert (scored["grade"] == scored["grade_job"]).all()
    assert (scored["is_high_risk"] == scored["is_high_risk_job"]).all()
    refused = answers[answers["reason"].notna()]
    assert refused["pd"].isna().all() and refused["grade"].isna().all()
    assert len(refused) == info["expected_rejected_rows"] - 1
    assert set(refused["reason"]) <= set(rejects["reason"])
    assert set(rejects["reason"]) - set(refused["reason"]) == {"max_paid_inv_0_12m: not a number"}

    valid = raw[answers["reason"].isna().to_numpy()].drop(columns=["default"], errors="ignore")
    udf = mlflow.pyfunc.spark_udf(spark, f"models:/{NAME}/1", result_type="double", env_manager="local")
    types = {CATEGORY: "string", FLAG: "boolean"}
    schema = ", ".join([f"{UUID} string", *(f"{f.name} {types.get(f.kind, 'double')}" for f in FEATURES)])
    rows = spark.createDataFrame(valid.astype(object).where(valid.notna(), None), schema)
    with_pd = rows.select(UUID, udf(*[rows[c] for c in [UUID, *FEATURE_NAMES]]).alias("pd")).toPandas()
    together = with_pd.merge(job, on=UUID, suffixes=("", "_job"))
    assert len(together) == len(job)
    assert (together["pd"] == together["pd_job"]).all()


# -- promotion ---------------------------------------------------------------------------------------


def test_promote_moves_the_alias_on_evidence_against_the_champion_and_refuses_stale_evidence(
    registered, second, tracking, tmp_path, capsys
):
    first_id, second_id = registered[1]["model_version"], second[1]["model_version"]
    assert second[1]["registry"]["version"] == "2" and first_id != second_id
    code, summary, err = _promote(capsys, NAME, "1")  # the first champion needs no evidence
    assert code == 0, err
    assert (
        summary["previous"] is None and tracking.get_model_version_by_alias(NAME, "champion").version == "1"
    )

    code, _, err = _promote(capsys, NAME, "2")
    assert code == 2 and "--evidence" in err

    stale = _evidence(
        tmp_path / "stale", _comparison(second_id, "pd-000000000000"), _comparison("pd-x", first_id)
    )
    code, summary, err = _promote(capsys, NAME, "2", "--evidence", stale)
    assert code == 3 and summary is None
    line = err.strip()
    assert "\n" not in line and f"does not compare {second_id} against the champion {first_id}" in line
    assert f"{second_id} vs pd-000000000000" in line and f"pd-x vs {first_id}" in line
    assert tracking.get_model_version_by_alias(NAME, "champion").version == "1"
    assert "promoted_at" not in tracking.get_model_version(NAME, "2").tags

    evidence = _evidence(tmp_path / "backtest", _comparison(second_id, first_id))
    code, summary, err = _promote(capsys, NAME, "2", "--evidence", evidence)
    assert code == 0, err
    assert tracking.get_model_version_by_alias(NAME, "champion").version == "2"
    tags = tracking.get_model_version(NAME, "2").tags
    assert tags["backtest_run_id"] == "bt-20260105-1"
    assert tags["backtested_at"] == "2026-01-05T06:00:00+00:00"
    assert json.loads(tags["snapshots"]) == ["2025-01-31", "2025-02-28"]
    assert (tags["customers"], tags["defaults"]) == ("5000", "71")
    assert float(tags["delta_roc_auc"]) == 0.011 and float(tags["delong_p_value"]) == 0.036
    assert float(tags["delta_log_loss"]) == -0.0012 and float(tags["delta_brier"]) == -0.0003
    assert tags["previous_champion"] == "1" and tags["previous_champion_model_version"] == first_id
    assert tags["promoted_by"] and tags["promoted_at"] == summary["promoted_at"]
    assert summary["previous"] == {"version": "1", "model_version": first_id}


# -- the local registry and the registry's absence ---------------------------------------------------


def test_the_local_registry_is_a_folder_that_registers_and_resolves(registered, tmp_path, monkeypatch):
    model_dir, summary = registered
    folder = tmp_path / "registry"
    monkeypatch.delenv(TRACKING_ENV, raising=False)
    monkeypatch.setenv(REGISTRY_ENV, str(folder))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match="no model registry in"):
        local_model_dir("models:/local-pd/1")
    registry = Registration("local-pd").register(model_dir)
    assert registry["uri"] == "models:/local-pd/1"
    assert (folder / DB_FILE).is_file() and any((folder / "artifacts").rglob("manifest.json"))
    assert not (tmp_path / "mlruns").exists()
    copy = local_model_dir("models:/local-pd/1")
    assert read_checked_model(copy)[1]["model_version"] == summary["model_version"]
    assert (copy / "model.json").read_bytes() == (model_dir / "model.json").read_bytes()
    assert list(load_manifests(("models:/local-pd/1",))) == [summary["model_version"]]  # the backtest's


def test_an_unreachable_registry_is_a_model_error_in_one_line(monkeypatch):
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv(TRACKING_ENV, closed)
    with pytest.raises(ModelError) as failed:
        read_checked_model("models:/pd/1")
    assert str(failed.value).startswith(f"cannot load models:/pd/1 from the registry at {closed}: ")
    assert "\n" not in str(failed.value)


def test_without_mlflow_a_models_uri_exits_2_naming_the_extra_and_the_rest_works(
    tmp_path, data, snapshot_frame
):
    blocker = tmp_path / "no-mlflow"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class NoMlflow:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'mlflow' or name.startswith('mlflow.'):\n"
        "            raise ImportError('No module named ' + repr(name))\n"
        "sys.meta_path.insert(0, NoMlflow())\n"
    )
    env = _env(PYTHONPATH=f"{blocker}{os.pathsep}{REPO / 'lib'}", DEFAULTRISK_REGISTRY=str(tmp_path / "r"))

    def run(*args):
        return subprocess.run(
            [PYTHON, *map(str, args)], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    imports = run("-c", "import defaultrisk.cli, defaultrisk.model, sys; print('mlflow' in sys.modules)")
    assert imports.returncode == 0 and imports.stdout.strip() == "False", imports.stderr
    assert run("-m", "defaultrisk", "--help").returncode == 0
    argv = ["--input", data / "snapshot.csv", "--model-dir", "models:/x/1", "--output", tmp_path / "out"]
    done = run(REPO / "jobs" / "score.py", *argv, "--snapshot-date", DATE)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        "score: error: model URI models:/x/1 needs the mlflow extra: pip install 'defaultrisk[mlflow]'"
    )
