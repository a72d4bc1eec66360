"""The command line: one parser per job for `defaultrisk <job>`, `python -m defaultrisk` and `jobs/*.py`.

Adding a job is one entry in `COMMANDS`; what every job does around its pipeline is `runner.run_job`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import SparkSession

import defaultrisk
from defaultrisk.approval import add_sign_arguments, run_sign_model
from defaultrisk.backtest.command import add_backtest_arguments, run_backtest_job
from defaultrisk.registry.promote import add_promote_arguments, run_promote
from defaultrisk.scoring.command import add_score_arguments, check_score_arguments, run_score_job
from defaultrisk.serving.command import add_serve_arguments, check_serve_arguments, run_serve
from defaultrisk.training.command import add_train_arguments, run_train_job

# -- the commands ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A job on the command line: its arguments, a check of their combination, and how it runs."""

    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, SparkSession | None], int]
    check_arguments: Callable[[argparse.Namespace], str | None] = lambda _: None


COMMANDS = {
    "train": Command("Train the pd model on a labelled customer table.", add_train_arguments, run_train_job),
    "score": Command(
        "Score a customer snapshot (or a backfill of dates) into the partitioned pd table.",
        add_score_arguments,
        run_score_job,
        check_score_arguments,
    ),
    "backtest": Command(
        "Backtest the scored pd against realised defaults, per snapshot and rating grade.",
        add_backtest_arguments,
        run_backtest_job,
    ),
    "serve": Command(
        "Score customers on demand over HTTP with a model directory (the `serve` extra).",
        add_serve_arguments,
        run_serve,
        check_serve_arguments,
    ),
    "promote": Command(
        "Move a registered model's champion alias to a version, on the backtest's evidence (MLflow).",
        add_promote_arguments,
        run_promote,
    ),
    "sign-model": Command(
        "Approve a model directory for signed scoring: sign its manifest with DEFAULTRISK_MODEL_KEY.",
        add_sign_arguments,
        run_sign_model,
    ),
}


def parse_args(name: str, argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    """One job's arguments; a usage error exits 2 with argparse's message."""
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=prog or name, description=command.description)
    command.add_arguments(parser)
    args = parser.parse_args(argv)
    problem = command.check_arguments(args)
    if problem:
        parser.error(problem)
    return args


def run_command(name: str, argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    """Run one job with its command line (`jobs/<name>.py` and tests call this)."""
    return COMMANDS[name].run(parse_args(name, argv), spark)


def main(argv: list[str] | None = None) -> int:
    """`defaultrisk <job> ...` and `python -m defaultrisk <job> ...`."""
    parser = argparse.ArgumentParser(
        prog="defaultrisk", description="Nightly batch scoring of customers' probability of default."
    )
    parser.add_argument("--version", action="version", version=f"defaultrisk {defaultrisk.__version__}")
    jobs = parser.add_subparsers(dest="job", required=True, metavar="JOB")
    for name, command in COMMANDS.items():
        job = jobs.add_parser(name, help=command.description, description=command.description)
        command.add_arguments(job)
    args = parser.parse_args(argv)
    problem = COMMANDS[args.job].check_arguments(args)
    if problem:
        jobs.choices[args.job].error(problem)
    return COMMANDS[args.job].run(args, None)
