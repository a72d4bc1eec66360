"""Run a job's `main` in this process on the test session, as its command line would: what it printed."""

from __future__ import annotations

import json
from collections.abc import Callable


def run_job(main: Callable[..., int], argv: list, spark, capsys) -> tuple[int, dict | None, str]:
    """(exit code, the JSON summary that ends stdout or None when there is none, stderr).

    A job that fails prints its one-line reason on stderr and nothing on stdout; a partial backfill (7)
    or a drift warning (6) still ends stdout with its summary.
    """
    code = main([str(a) for a in argv], spark=spark)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    summary = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return code, summary, captured.err
