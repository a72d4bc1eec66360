"""How the service answers: reason codes, request limits, worker processes.

Below the command line, the app, the scorer and the server alike, so each imports it without a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_BATCH = 1000
MAX_BODY_BYTES = 4 * 1024 * 1024
REASON_CODES = 3
REASON_ROWS = ("high_risk", "all")


@dataclass(frozen=True)
class Reasons:
    """How many reason codes to name, and for whom: "high_risk" (as the nightly job ships: the
    customers at or above the threshold; the others' `reason_codes` are null) or "all"."""

    codes: int = REASON_CODES
    rows: str = "high_risk"


SHIPPED_REASONS = Reasons()


@dataclass(frozen=True)
class Options:
    """How the service answers: reason codes, request limits, and its number of worker processes."""

    reasons: Reasons = SHIPPED_REASONS
    max_batch: int = MAX_BATCH
    max_body_bytes: int = MAX_BODY_BYTES
    workers: int = 1
