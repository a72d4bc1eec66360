"""The command line and what every job does around its pipeline: the heartbeat, the logs, the streams."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import defaultrisk
from defaultrisk.cli import COMMANDS, run_command
from defaultrisk.progress import INTERVAL_ENV, Heartbeat, interval_from_env

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PROGRESS = "defaultrisk.progress"


def _run(args: list, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **env},
    )


def _progress_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == PROGRESS]


def _slow_job(spark, seconds: float) -> None:
    """Two tasks that each take `seconds`, side by side on the session's two cores."""
    sleep = time.sleep
    spark.sparkContext.parallelize([seconds, seconds], 2).map(lambda s: sleep(s) or s).collect()


def test_heartbeat_logs_a_start_line_then_progress_at_most_once_per_interval(spark, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    with Heartbeat(spark.sparkContext, interval=1.0):
        _slow_job(spark, 5)
    lines = _progress_lines(caplog)
    starts = [r for r in lines if " started: " in r.getMessage()]
    beats = [r for r in lines if "tasks done" in r.getMessage()]
    assert len(starts) == 1
    assert re.fullmatch(r"stage \d+ started: collect at .+ \(2 tasks\)", starts[0].getMessage())
    assert len(beats) >= 2
    assert re.match(r"stage \d+: [012]/2 tasks done, [012] running, \d+s elapsed", beats[0].getMessage())
    times = [r.created for r in (starts[0], *beats)]
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(times))
    # Stopped with the block: nothing more comes.
    count = len(_progress_lines(caplog))
    time.sleep(1.5)
    assert len(_progress_lines(caplog)) == count


def test_heartbeat_says_nothing_about_work_done_within_the_interval(spark, caplog):
    caplog.set_level(logging.INFO, logger=PROGRESS)
    with Heartbeat(spark.sparkContext, interval=4.0):
        _slow_job(spark, 2)
    assert _progress_lines(caplog) == []


def test_heartbeat_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "1")
    assert interval_from_env() == 1.0
    monkeypatch.setenv(INTERVAL_ENV, "soon")
    assert interval_from_env() == 30.0
    monkeypatch.delenv(INTERVAL_ENV)
    assert interval_from_env() == 30.0


def test_a_job_logs_its_application_once_beats_while_it_runs_and_ends_with_the_summary(
    spark, trained, snapshot, tmp_path, monkeypatch, caplog, capsys
):
    # A fifth of a second: the heartbeat then looks five times a second, so it sees the run's stages
    # however quick they are on a warm session (with 1 s, a 3 s run could slip between two looks).
    monkeypatch.setenv(INTERVAL_ENV, "0.2")
    caplog.set_level(logging.INFO)
    argv = ["--input", snapshot[0], "--model-dir", trained[0], "--output", tmp_path / "pd"]
    code = run_command("score", [str(a) for a in [*argv, "--snapshot-date", "2026-11-24"]], spark=spark)
    out = capsys.readouterr().out.strip().splitlines()
    assert code in (0, 6)  # 6: drift over the limit, the scores written all the same
    assert json.loads(out[-1])["snapshot_date"] == "2026-11-24"
    messages = [r.getMessage() for r in caplog.records]
    application = [m for m in messages if "spark application" in m]
    assert application == [
        f"score: defaultrisk {defaultrisk.__version__}, spark application {spark.sparkContext.applicationId}"
    ]
    assert any(" started: " in r.getMessage() for r in _progress_lines(caplog))


def test_one_parser_per_job_behind_every_entry_point():
    # The console script, `python -m` and the job file print the same options for each job.
    # The Spark jobs have a spark-submit shim in jobs/; the service its own `python -m` entry point; the
    # model approval its script in scripts/; promotion only the command line.
    required = {
        "train": "--input",
        "score": "--input",
        "backtest": "--scored",
        "serve": "--model-dir",
        "sign-model": "--help",
        "promote": "--evidence",
    }
    shims = {"serve": ["-m", "defaultrisk.serving"], "sign-model": ["scripts/sign_model.py"]}
    shims["promote"] = ["-m", "defaultrisk", "promote"]  # a registry command: no Spark, no job file
    assert set(COMMANDS) == set(required)
    for job in COMMANDS:
        script = _run([VENV_BIN / "defaultrisk", job, "--help"])
        module = _run([sys.executable, "-m", "defaultrisk", job, "--help"])
        own = shims.get(job, [f"jobs/{job}.py"])
        shim = _run([sys.executable, *own, "--help"])
        assert script.returncode == module.returncode == shim.returncode == 0, shim.stderr
        options = [set(re.findall(r"--[a-z-]+", p.stdout)) for p in (script, module, shim)]
        assert options[0] == options[1] == options[2]
        assert required[job] in options[0]
        assert job in shims or "--config" in options[0]
    listed = _run([VENV_BIN / "defaultrisk", "--help"]).stdout
    assert all(job in listed for job in COMMANDS)


def test_the_version_comes_from_git():
    shown = _run([VENV_BIN / "defaultrisk", "--version"])
    assert shown.stdout.strip() == f"defaultrisk {defaultrisk.__version__}"
    head = _run(["git", "rev-parse", "--short=7", "HEAD"]).stdout.strip()
    # setuptools-scm: 0.1.devN+gHASH before the first tag, with the commit the code was taken from.
    assert f"+g{head}" in defaultrisk.__version__


def test_the_console_script_fails_a_bad_config_with_exit_2_and_one_reason_line(tmp_path):
    config = tmp_path / "score.toml"
    config.write_text("[score]\nreason_codes = true\n")
    argv = [
        "--input",
        "in.csv",
        "--model-dir",
        "m",
        "--output",
        tmp_path / "out",
        "--snapshot-date",
        "2026-11-24",
    ]
    failed = _run([VENV_BIN / "defaultrisk", "score", *argv, "--config", config])
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.strip().splitlines()[-1] == (
        f"score: error: config {config}: [score] reason_codes must be a whole number from 0 to 41, "
        "found true (a boolean)"
    )


@pytest.mark.slow
def test_under_spark_submit_the_job_streams_go_to_stdout_and_spark_logs_only_warnings(trained, tmp_path):
    """spark-submit runs the Python driver with its stderr merged into stdout: docs/guarantees.md says so."""
    spark_submit = [VENV_BIN / "spark-submit", "--properties-file", "conf/spark-local.conf", "jobs/score.py"]
    argv = ["--input", tmp_path / "in_{snapshot_date}.csv", "--model-dir", trained[0]]
    argv += ["--output", tmp_path / "pd", "--from", "2026-11-23", "--to", "2026-11-24"]
    env = {"SPARK_CONF_DIR": str(REPO / "conf"), "PYSPARK_PYTHON": sys.executable}

    dry = _run([*spark_submit, *argv, "--dry-run"], timeout=300, **env)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    summary = json.loads(dry.stdout.strip().splitlines()[-1])
    assert summary["dry_run"] is True
    assert [d["snapshot_date"] for d in summary["dates"]] == ["2026-11-23", "2026-11-24"]
    assert " INFO defaultrisk: score: defaultrisk " in dry.stdout  # the job's own log lines, merged
    assert " INFO " not in dry.stderr  # Spark's JVM: warnings and errors only (conf/log4j2.properties)

    config = tmp_path / "score.toml"
    config.write_text('[drift]\nenabled = "false"\n')
    failed = _run([*spark_submit, *argv, "--config", config], timeout=300, **env)
    assert failed.returncode == 2
    assert failed.stdout.strip().splitlines()[-1] == (
        f'score: error: config {config}: [drift] enabled must be true or false, found "false" (a string)'
    )


def test_a_stop_from_outside_is_told_whatever_error_it_surfaced_as():
    """py4j answers a Ctrl-C inside a call with a Py4JError; cleanup after a SIGTERM can fail with any
    error. The stop stays in the chain, and the run log and the exit line name it (docs/guarantees.md)."""
    from py4j.protocol import Py4JError

    from defaultrisk.errors import Terminated, stopped_by

    def surfaced(stop: BaseException, then: Exception) -> BaseException:
        try:
            try:
                raise stop
            except BaseException:
                raise then  # noqa: B904 (the implicit context is what is tested)
        except BaseException as caught:
            return caught

    interrupted = surfaced(KeyboardInterrupt(), Py4JError("Gateway must be connected to send cancel cmd."))
    terminated = surfaced(Terminated(), KeyError("p"))
    assert isinstance(interrupted, Py4JError) and isinstance(terminated, KeyError)
    assert stopped_by(interrupted) == "interrupted (Ctrl-C)"
    assert stopped_by(terminated) == "terminated (SIGTERM)"
    assert stopped_by(surfaced(ValueError("bad"), KeyError("p"))) is None
