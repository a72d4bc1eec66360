"""Typed errors. Each maps to one documented exit code of the jobs (see README, "Exit codes")."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_MODEL = 4
EXIT_OUTPUT = 5


class DefaultRiskError(Exception):
    """A failure the jobs know how to explain in one line."""

    exit_code = EXIT_FAILURE


class ConfigError(DefaultRiskError):
    """Bad command-line arguments or configuration."""

    exit_code = EXIT_USAGE


class InputError(DefaultRiskError):
    """The input table is missing, unreadable or does not follow the schema."""

    exit_code = EXIT_INPUT


class ModelError(DefaultRiskError):
    """The model directory is missing, tampered with, or does not match the schema."""

    exit_code = EXIT_MODEL


class OutputError(DefaultRiskError):
    """An output could not be written."""

    exit_code = EXIT_OUTPUT
