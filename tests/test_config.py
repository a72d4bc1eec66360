"""Strict configuration: each value checked by type and range, every problem in one error, exit 2."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from defaultrisk import settings
from defaultrisk.backtest.config import load_backtest_config
from defaultrisk.errors import ConfigError
from defaultrisk.scoring.config import load_score_config
from defaultrisk.settings import CONF_DIR
from defaultrisk.training.config import XGBoostParams, load_train_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "jobs"))
import score as score_job  # noqa: E402
import train as train_job  # noqa: E402


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def _last_stderr_line(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""  # no summary: the run never started
    return captured.err.strip().splitlines()[-1]


def test_train_job_exits_2_naming_every_bad_value(tmp_path, capsys):
    config = _toml(tmp_path, '[train]\nholdout_fraction = "0.2"\n[xgboost]\nmax_depth = 2.5\n')
    # The config is read before any session is built: a bad file costs no Spark start-up.
    code = train_job.main(["--input", "in.csv", "--model-dir", str(tmp_path / "m"), "--config", str(config)])
    assert code == 2
    reason = _last_stderr_line(capsys)
    assert reason.startswith(f"train: error: config {config}: ")
    assert '[train] holdout_fraction must be a number in (0, 1), found "0.2" (a string)' in reason
    assert "[xgboost] max_depth must be a whole number >= 1, found 2.5 (a float)" in reason


def test_score_job_exits_2_naming_every_bad_value(tmp_path, capsys):
    config = _toml(tmp_path, '[score]\nreason_codes = true\n[drift]\nenabled = "false"\n')
    argv = ["--input", "in.csv", "--model-dir", "m", "--output", str(tmp_path / "out")]
    code = score_job.main([*argv, "--snapshot-date", "2026-11-24", "--config", str(config)])
    assert code == 2
    reason = _last_stderr_line(capsys)
    assert "[score] reason_codes must be a whole number from 0 to 41, found true (a boolean)" in reason
    assert '[drift] enabled must be true or false, found "false" (a string)' in reason
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[search]\nenabled = 1\n", "[search] enabled must be true or false, found 1 (a whole number)"),
        ("[train]\nseed = true\n", "[train] seed must be a whole number >= 0, found true (a boolean)"),
        ("[train]\nseed = 7.0\n", "[train] seed must be a whole number >= 0, found 7.0 (a float)"),
        ('[xgboost]\nlearning_rate = "0.1"\n', "[xgboost] learning_rate must be a number in (0, 1]"),
        ("[xgboost]\nsubsample = 1.5\n", "[xgboost] subsample must be a number in (0, 1], found 1.5"),
        ("[selection]\nundersampling_ratios = 0.1\n", "undersampling_ratios must be a list of numbers"),
        (
            '[selection]\ncalibration_methods = ["platt", "magic"]\n',
            "calibration_methods must be a non-empty",
        ),
        ('[threshold]\nrule = "best"\n', '[threshold] rule must be "target_precision", "target_recall"'),
        ("[train]\nholdout = 0.2\n", "[train] holdout is not a known setting"),
        ("[trian]\nseed = 1\n", "[trian] is not a known section"),
        ("train = 3\n", "[train] must be a table, found 3 (a whole number)"),
    ],
)
def test_train_values_are_checked_by_type_and_range(tmp_path, text, problem):
    with pytest.raises(ConfigError) as raised:
        load_train_config(_toml(tmp_path, text))
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[score]\nresults_csv_decimals = 0\n", "results_csv_decimals must be a whole number from 1 to 17"),
        ('[score]\ninput_format = "json"\n', '[score] input_format must be "auto", "csv" or "parquet"'),
        ("[score]\nmodel_ranges = []\n", "[score] model_ranges is set on the command line"),
        ("[drift]\npsi_limit = 0\n", "[drift] psi_limit must be a number above 0, found 0 (a whole number)"),
        ("[drift]\nmin_rows = -1\n", "[drift] min_rows must be a whole number >= 0, found -1"),
        ("[score]\ndrift = false\n", "[score] drift is not a known setting (drift settings go in [drift])"),
    ],
)
def test_score_values_are_checked_by_type_and_range(tmp_path, text, problem):
    with pytest.raises(ConfigError) as raised:
        load_score_config(_toml(tmp_path, text))
    assert problem in str(raised.value)


def test_all_problems_come_in_one_error(tmp_path):
    text = '[train]\nholdout_fraction = "0.2"\nseed = -1\n[xgboost]\nmax_depth = 2.5\nnthread = 0\n[x]\n'
    with pytest.raises(ConfigError) as raised:
        load_train_config(_toml(tmp_path, text))
    message = str(raised.value)
    assert "\n" not in message  # the job's failure reason is one line
    assert len(message.split("; ")) == 5
    for key in ("holdout_fraction", "seed", "max_depth", "nthread", "[x]"):
        assert key in message


def test_a_whole_number_is_a_number_and_lists_become_tuples(tmp_path):
    text = (
        "[xgboost]\nlearning_rate = 1\nmin_child_weight = 0\n[selection]\nundersampling_ratios = [1, 0.5]\n"
    )
    cfg = load_train_config(_toml(tmp_path, text))
    assert cfg.xgboost.learning_rate == 1.0 and isinstance(cfg.xgboost.learning_rate, float)
    assert isinstance(cfg.xgboost.min_child_weight, float)
    assert cfg.selection.undersampling_ratios == (1.0, 0.5)
    drift = load_score_config(_toml(tmp_path, "[drift]\nenabled = false\npsi_limit = 1\n"))
    assert (drift.drift, drift.psi_limit) == (False, 1.0)


def test_settings_that_must_agree_are_checked_once_each_value_is_right(tmp_path):
    text = "[xgboost]\nn_estimators = 10\n[selection]\nround_step = 20\n"
    with pytest.raises(ConfigError, match=r"n_estimators must be at least \[selection\] round_step \(20\)"):
        load_train_config(_toml(tmp_path, text))


def test_command_line_values_are_range_checked_too():
    with pytest.raises(ConfigError, match="--seed must be a whole number >= 0, found -1"):
        load_train_config(seed=-1)


def test_from_a_checkout_the_defaults_are_the_checkouts_conf():
    assert CONF_DIR == REPO / "conf"
    # conf/train.toml's values, not the dataclass defaults, wherever the two differ (and they do).
    shipped = tomllib.loads((REPO / "conf" / "train.toml").read_text())["xgboost"]
    differ = {k: v for k, v in shipped.items() if getattr(XGBoostParams(), k) != v}
    assert differ
    loaded = load_train_config().xgboost
    assert {k: getattr(loaded, k) for k in differ} == differ


def test_every_room_reads_its_defaults_from_the_one_conf_dir(monkeypatch, tmp_path):
    """The backtest's defaults come from `CONF_DIR` too: an installed package finds its packaged copy."""
    (tmp_path / "backtest.toml").write_text("[backtest]\nwindow_months = 7\n")
    monkeypatch.setattr(settings, "CONF_DIR", tmp_path)
    assert load_backtest_config().window_months == 7
