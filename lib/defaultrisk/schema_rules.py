"""The entry contract's words: missing-value tokens, limits and reason texts, shared by every checker.

`validate` (Spark SQL, the nightly job) and `checks` (Arrow, the service) both build their reasons from
here, so a rejected row reads the same wherever it was rejected.
"""

from __future__ import annotations

from defaultrisk.schema import Feature

MISSING_TOKENS = ("", "NA")  # compared after trimming spaces, in any case
REASON_SEPARATOR = "; "
# Whole-number columns are stored as long; beyond 2**53 a double no longer holds every whole number.
MAX_WHOLE = 2**53

WRONG_NUMBER_OF_FIELDS = "line: wrong number of fields"
MISSING = "missing"
MALFORMED = "malformed"
NOT_A_NUMBER = "not a number"
NOT_TRUE_FALSE = "not true/false"
NOT_FINITE = "not a finite number"
NOT_WHOLE = "not a whole number"
TOO_LARGE = "too large"
NOT_A_LABEL = "not 0 or 1"
# `uuid: duplicate (N rows)` is built from these two around the count.
DUPLICATE_OPEN = "duplicate ("
DUPLICATE_CLOSE = " rows)"


def problem(column: str, what: str) -> str:
    """A reason as the rejects table shows it: `column: problem`."""
    return f"{column}: {what}"


def bounds(feature: Feature) -> list[tuple[str, float, str]]:
    """The feature's range checks, in order: (comparison that fails, bound, problem)."""
    checks = []
    if feature.minimum is not None:
        checks.append(("<", feature.minimum, f"below minimum {feature.minimum:g}"))
    if feature.maximum is not None:
        checks.append((">", feature.maximum, f"above maximum {feature.maximum:g}"))
    return checks
