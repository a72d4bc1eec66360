"""Typed errors. Each maps to one documented exit code of the jobs (docs/guarantees.md, "Exit codes")."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_MODEL = 4
EXIT_OUTPUT = 5
# Runs that wrote what they could but need an operator's look; the summary says what happened.
EXIT_DRIFT = 6  # the population moved beyond the configured PSI limit (scores written)
EXIT_PARTIAL = 7  # a backfill left dates unscored (missing or unreadable input); the others are written
EXIT_TEST_FAILED = 8  # a backtest's configured test failed (its results are written)
EXIT_LOCKED = 9  # another run holds the snapshot date's lock; nothing was read or written
# A run stopped from outside: the shell's convention, 128 + the signal's number.
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (a scheduler's kill, a container stopping)


def warning_exit(summary: dict) -> tuple[int, str | None]:
    """The exit code and warning line of a run that finished: partial beats drift, both beat OK."""
    if summary.get("status") == "partial":
        missing = ", ".join(p["snapshot_date"] for p in summary.get("not_scored", []))
        return EXIT_PARTIAL, f"partial: not scored: {missing} (see the summary's not_scored)"
    failed = summary.get("failed_tests") or []
    if summary.get("status") == "tests_failed" and failed:
        names = sorted({f"{f['test']} ({f['snapshot_date']}, grade {f['grade']})" for f in failed})
        return EXIT_TEST_FAILED, f"backtest test failed: {', '.join(names)} (results are written)"
    over = summary.get("drift_over_limit")
    if over:
        return EXIT_DRIFT, f"drift: PSI above the limit for {', '.join(over)} (scores are written)"
    return EXIT_OK, None


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


class LockedError(DefaultRiskError):
    """Another run holds the lock of the snapshot date this run would write."""

    exit_code = EXIT_LOCKED


class Terminated(BaseException):
    """SIGTERM, raised by the job's signal handler so that it unwinds like Ctrl-C: staging is removed,
    an interrupted swap rolled back, the run log gets its failed row. Not an `Exception`, so that no
    `except Exception` on the way swallows it."""

    exit_code = EXIT_TERMINATED


INTERRUPTED = "interrupted (Ctrl-C)"
TERMINATED = "terminated (SIGTERM)"


def stopped_by(exc: BaseException | None) -> str | None:
    """`INTERRUPTED` or `TERMINATED` when a stop from outside is in the exception's chain, else None.

    A signal can surface as another error: py4j answers a Ctrl-C inside a call with a Py4JError, and
    cleanup on a connection the signal cut can fail with anything; the stop stays in the chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            return INTERRUPTED
        if isinstance(exc, Terminated):
            return TERMINATED
        exc = exc.__cause__ or exc.__context__
    return None


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (of its root cause in the JVM for a Py4J error), or its type."""
    java = getattr(exc, "java_exception", None)  # a Py4J error: the JVM exception says what happened
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        text = str(cause.toString()).strip()
    else:
        text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
