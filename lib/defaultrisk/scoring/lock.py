"""One run per snapshot date: a lock file taken atomically on the table's own file system.

`OUTPUT/_locks/snapshot_date=D` holds the run id, host, pid and start of the run that writes date D. A
second run for D waits up to `DEFAULTRISK_LOCK_WAIT_SECONDS` (default 10) for it to go, then refuses
(exit 9) naming that run. A lock whose run is dead (on this host: its pid is gone; on another host: older
than `DEFAULTRISK_LOCK_STALE_HOURS`, default 24) is broken with a warning. Runs for different dates take
different locks and never wait for one another.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import SparkSession

from defaultrisk.errors import LockedError
from defaultrisk.fs import create_new, delete_path, read_text, remove_if_empty, rename
from defaultrisk.schema import SNAPSHOT_DATE

log = logging.getLogger(__name__)

LOCKS_DIR = "_locks"
WAIT_SECONDS_ENV = "DEFAULTRISK_LOCK_WAIT_SECONDS"
STALE_HOURS_ENV = "DEFAULTRISK_LOCK_STALE_HOURS"
DEFAULT_WAIT_SECONDS = 10.0
DEFAULT_STALE_HOURS = 24.0
POLL_SECONDS = 0.2
# A lock file is created, then written: an empty one younger than this is being written, not abandoned.
UNWRITTEN_GRACE_SECONDS = 30.0


def lock_path(table_root: str, day: date) -> str:
    return f"{table_root.rstrip('/')}/{LOCKS_DIR}/{SNAPSHOT_DATE}={day.isoformat()}"


@dataclass(frozen=True)
class DateLock:
    path: str
    run_id: str
    text: str


def _holder_text(run_id: str) -> str:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    holder = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "started_at": started}
    return json.dumps(holder, sort_keys=True) + "\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def stale_reason(holder: dict | None, first_seen: float) -> str | None:
    """Why the run holding a lock is dead, or None while it may be alive."""
    if holder is None:
        waited = time.monotonic() - first_seen
        return "its lock file was never written" if waited > UNWRITTEN_GRACE_SECONDS else None
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        return f"its process {pid} is gone" if isinstance(pid, int) and not _pid_alive(pid) else None
    try:
        started = datetime.fromisoformat(holder["started_at"])
    except (KeyError, TypeError, ValueError):
        return "its lock file is unreadable"
    hours = (datetime.now(UTC) - started).total_seconds() / 3600
    limit = _env_float(STALE_HOURS_ENV, DEFAULT_STALE_HOURS)
    return (
        f"it started {hours:.1f} h ago on {holder.get('host')} (limit {limit:g} h)" if hours > limit else None
    )


def _parse(text: str | None) -> dict | None:
    try:
        holder = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    return holder if isinstance(holder, dict) else None


def _break(spark: SparkSession, path: str, text: str, run_id: str, reason: str) -> None:
    """Move a dead run's lock aside, then check it was that lock (not one a faster run just took)."""
    aside = f"{path.rsplit('/', 1)[0]}/_broken-{path.rsplit('/', 1)[-1]}-{run_id}"
    try:
        rename(spark, path, aside)
    except Exception:  # another run broke it first
        return
    if (read_text(spark, aside) or "") == text:
        log.warning("broke the lock %s: %s; it held %s", path, reason, text.strip() or "nothing")
        delete_path(spark, aside)
        return
    # A live run's lock after all: put it back, unless a third run took the date meanwhile.
    create_new(spark, path, read_text(spark, aside) or "")
    delete_path(spark, aside)


def acquire(
    spark: SparkSession, table_root: str, day: date, run_id: str, wait: float | None = None
) -> DateLock:
    """Take date `day`'s lock for `run_id`, waiting for a live holder up to `wait` seconds."""
    path = lock_path(table_root, day)
    text = _holder_text(run_id)
    wait = _env_float(WAIT_SECONDS_ENV, DEFAULT_WAIT_SECONDS) if wait is None else wait
    deadline = time.monotonic() + wait
    seen: dict[str, float] = {}
    while True:
        if create_new(spark, path, text):
            return DateLock(path, run_id, text)
        current = read_text(spark, path)
        if current is None:  # released in between
            continue
        first_seen = seen.setdefault(current, time.monotonic())
        holder = _parse(current)
        reason = stale_reason(holder, first_seen)
        if reason:
            _break(spark, path, current, run_id, reason)
            continue
        if time.monotonic() >= deadline:
            other = (holder or {}).get("run_id", "unknown")
            raise LockedError(
                f"snapshot date {day.isoformat()} is being written by run {other} "
                f"(host {(holder or {}).get('host')}, pid {(holder or {}).get('pid')}); lock {path}"
            )
        time.sleep(POLL_SECONDS)


def release(spark: SparkSession, lock: DateLock) -> None:
    """Remove the lock if it is still this run's (a lock broken as stale may belong to another now)."""
    if read_text(spark, lock.path) == lock.text:
        delete_path(spark, lock.path)
    remove_if_empty(spark, lock.path.rsplit("/", 1)[0])


@contextmanager
def date_lock(spark: SparkSession, table_root: str, day: date, run_id: str):
    lock = acquire(spark, table_root, day, run_id)
    try:
        yield lock
    finally:
        release(spark, lock)


def try_acquire(spark: SparkSession, table_root: str, day: date, run_id: str) -> DateLock | None:
    """The lock if it is free now (or held by a dead run), else None; never waits."""
    try:
        return acquire(spark, table_root, day, run_id, wait=0.0)
    except LockedError:
        return None
