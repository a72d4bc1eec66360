"""One local SparkSession, one small generated data set and one real trained model for the whole run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from defaultrisk.config import TrainConfig, XGBoostParams
from defaultrisk.model import load_model
from defaultrisk.pipeline import run_train
from defaultrisk.sample import make_history, make_snapshot, write_original_csv
from defaultrisk.session import build_session

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HISTORY_ROWS = 40_000
SNAPSHOT_ROWS = 3_000
SNAPSHOT_BAD_ROWS = 7


@pytest.fixture(scope="session")
def spark():
    session = build_session("defaultrisk-tests", properties_file=TESTS / "spark-test.conf")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def history(data_dir):
    """A labelled history table in the original format, and each row's true pd."""
    frame, true_pd = make_history(HISTORY_ROWS, seed=3)
    path = data_dir / "history.csv"
    write_original_csv(frame, path)
    return path, frame, true_pd


@pytest.fixture(scope="session")
def snapshot(data_dir):
    """A snapshot with injected bad rows, and what the generator says about them."""
    frame, info = make_snapshot(SNAPSHOT_ROWS, seed=5, bad_rows=SNAPSHOT_BAD_ROWS)
    path = data_dir / "snapshot.csv"
    write_original_csv(frame, path)
    return path, frame, info


def small_train_config(input_path: Path, model_dir: Path, **changes) -> TrainConfig:
    """The shipped config, with fewer trees so the suite stays quick."""
    xgb_params = XGBoostParams(n_estimators=80, max_depth=4, learning_rate=0.1, nthread=2)
    cfg = TrainConfig(input_path=str(input_path), model_dir=str(model_dir), xgboost=xgb_params)
    return replace(cfg, **changes)


@pytest.fixture(scope="session")
def trained(spark, history, tmp_path_factory):
    """A real model trained by the training pipeline on the generated history: (model_dir, summary)."""
    model_dir = tmp_path_factory.mktemp("model")
    summary = run_train(spark, small_train_config(history[0], model_dir))
    return model_dir, summary


@pytest.fixture(scope="session")
def model(trained):
    return load_model(trained[0])


@pytest.fixture(scope="session")
def manifest(trained) -> dict:
    return json.loads((trained[0] / "manifest.json").read_text())
