"""One local SparkSession, one small generated data set and one real trained model for the whole run.

The model is trained once per version of the code and kept under build/ (see `trained`): both pytest
stages of scripts/test.sh, and reruns, use it instead of training their own.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest
from sampledata import make_history, make_snapshot, write_original_csv

from defaultrisk.model import load_model
from defaultrisk.session import build_session
from defaultrisk.training.config import (
    BaselineConfig,
    SearchConfig,
    SelectionConfig,
    TrainConfig,
    XGBoostParams,
)
from defaultrisk.training.pipeline import run_train

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# Where the trained model is kept between runs; build/ is ignored by git and never shipped.
MODEL_CACHE_ENV = "DEFAULTRISK_TEST_MODEL_CACHE"
HISTORY_ROWS = 40_000
SNAPSHOT_ROWS = 3_000
SNAPSHOT_BAD_ROWS = 7
# A quick model for the tests that run the training job itself.
SMALL_TRAIN_TOML = """
[train]
seed = 7
[xgboost]
n_estimators = 30
max_depth = 3
learning_rate = 0.2
[search]
candidates = 1
[baseline]
n_estimators = 30
"""


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
    """The shipped config with fewer trees, two strategies to compare, a search of three candidates
    (the given parameters, XGBoost's defaults, one draw) and a short baseline, so the suite stays quick."""
    xgb_params = XGBoostParams(n_estimators=80, max_depth=4, learning_rate=0.1, nthread=1)
    selection = SelectionConfig(undersampling_ratios=(0.1,), class_weight_ratios=())
    cfg = TrainConfig(
        input_path=str(input_path),
        model_dir=str(model_dir),
        xgboost=xgb_params,
        selection=selection,
        search=SearchConfig(candidates=1),
        baseline=BaselineConfig(n_estimators=80),
    )
    return replace(cfg, **changes)


def code_key() -> str:
    """What the trained model depends on: the product and sample-data code, its config files, this file
    (the training settings and the history's size), the interpreter and every installed library."""
    digest = hashlib.sha256(platform.python_version().encode())
    files = [p for folder in ("lib", "conf") for p in sorted((REPO / folder).rglob("*")) if p.is_file()]
    for path in [*files, Path(__file__)]:
        if "__pycache__" in path.parts or ".egg-info" in str(path):
            continue
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    versions = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions())
    digest.update("\n".join(versions).encode())
    return digest.hexdigest()[:20]


def _files_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _kept_model(request, name: str, **changes) -> tuple[Path, dict]:
    """A real model trained by the training pipeline on the generated history: (model_dir, summary).

    Training takes a minute or more (the slowest fixture of each stage), so the model is trained once per
    `code_key()` into build/test-model/KEY/NAME/ and reused by later pytest processes while nothing it
    depends on changes. The history it was trained on is kept beside it, so the manifest's and the
    summary's paths are those of the folder the tests read; the history (40,000 rows) and the session are
    made only to train. A cached folder whose files changed since (a test must copy a model before
    editing it) is trained again. Concurrent runs take turns on a lock file.
    """
    root = Path(os.environ.get(MODEL_CACHE_ENV, REPO / "build" / "test-model"))
    root.mkdir(parents=True, exist_ok=True)
    folder = root / code_key() / name
    model_dir, record = folder / "model", folder / "trained.json"
    with (root / f"{code_key()}-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if record.is_file() and (kept := json.loads(record.read_text()))["files"] == _files_digest(model_dir):
            return model_dir, kept["summary"]
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        shutil.copyfile(request.getfixturevalue("history")[0], folder / "history.csv")
        spark = request.getfixturevalue("spark")
        summary = run_train(spark, small_train_config(folder / "history.csv", model_dir, **changes))
        record.write_text(json.dumps({"summary": summary, "files": _files_digest(model_dir)}, default=str))
    return model_dir, json.loads(record.read_text())["summary"]


@pytest.fixture(scope="session")
def trained(request):
    """The live model of the tests (see `_kept_model`): (model_dir, summary)."""
    return _kept_model(request, "champion")


@pytest.fixture(scope="session")
def challenger_trained(request):
    """A second real model on the same history, shallower and from another seed, to be scored beside
    the first as a challenger: (model_dir, summary). Its pd differs from the champion's on every row."""
    xgb_params = XGBoostParams(n_estimators=60, max_depth=2, learning_rate=0.15, nthread=1)
    return _kept_model(request, "challenger", xgboost=xgb_params, seed=11)


@pytest.fixture(scope="session")
def model(trained):
    return load_model(trained[0])


@pytest.fixture(scope="session")
def manifest(trained) -> dict:
    return json.loads((trained[0] / "manifest.json").read_text())


def run_command(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def env_archive() -> Path:
    """The packed environment, built once and reused while requirements, setup.py and lib/ are unchanged."""
    packed = run_command(["bash", "scripts/pack_env.sh"], timeout=900)
    assert packed.returncode == 0, packed.stderr[-3000:]
    return Path(packed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def cluster(env_archive, tmp_path_factory):
    """A standalone master and two workers on 127.0.0.1: (master URL, run directory, environment archive).

    The archive is the one built for this session, so a change to lib/ during the run cannot trigger a
    rebuild between the jobs. The cluster is stopped even when a test or this fixture fails.
    """
    run_dir = tmp_path_factory.mktemp("cluster")
    try:
        up = run_command(["bash", "scripts/cluster_up.sh", str(run_dir)], timeout=180)
        assert up.returncode == 0, up.stderr[-3000:]
        master = up.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"spark://127\.0\.0\.1:\d+", master)
        yield master, run_dir, env_archive
    finally:
        down = run_command(["bash", "scripts/cluster_down.sh", str(run_dir)], timeout=120)
        print(down.stderr, file=sys.stderr)
    assert down.returncode == 0, down.stderr
    assert not list(run_dir.glob("*.pid"))
