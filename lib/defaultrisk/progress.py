"""A heartbeat for long runs: which Spark stage is running and how far it got, from Spark's status API.

With the console progress bar off (and, locally, the UI), a multi-minute stage is otherwise silent and an
operator cannot tell slow from hung. A daemon thread polls `SparkContext.statusTracker()` and logs a
start line for each stage still running once the first interval has passed, then at most one line per
interval per stage (tasks done/total, elapsed). A run that finishes within the interval logs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from pyspark import SparkContext

log = logging.getLogger(__name__)
INTERVAL_ENV = "DEFAULTRISK_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0
# How often the thread looks: often enough to see a stage start, cheap enough (a few py4j calls).
POLL_SECONDS = 1.0


def interval_from_env() -> float:
    """Seconds between a stage's progress lines: $DEFAULTRISK_PROGRESS_SECONDS, else 30."""
    text = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


class Heartbeat:
    """Log running stages every `interval` seconds from a daemon thread; `with Heartbeat(sc): ...`."""

    def __init__(self, sc: SparkContext, interval: float | None = None):
        self._tracker = sc.statusTracker()
        self._interval = interval if interval is not None else interval_from_env()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="defaultrisk-heartbeat", daemon=True)
        self._first_seen: dict[int, float] = {}  # stage id -> when the thread first saw it running
        self._last_line: dict[int, float] = {}  # stage id -> when its last line was logged

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        quiet_until = time.monotonic() + self._interval
        poll = min(POLL_SECONDS, self._interval)
        while not self._stopped.wait(poll):
            now = time.monotonic()
            try:
                self._beat(now, speak=now >= quiet_until)
            except Exception as exc:  # the session stopping under it: the run itself reports what matters
                log.debug("heartbeat: %s", exc)
                return

    def _beat(self, now: float, speak: bool) -> None:
        for stage_id in sorted(self._tracker.getActiveStageIds()):
            # The status API gives no start time: elapsed counts from when this thread first saw it.
            first_seen = self._first_seen.setdefault(stage_id, now)
            info = self._tracker.getStageInfo(stage_id)
            if info is None or not speak:  # finished between the two calls, or still the quiet start
                continue
            last = self._last_line.get(stage_id)
            if last is None:
                log.info("stage %d started: %s (%d tasks)", stage_id, info.name, info.numTasks)
            elif now - last >= self._interval:
                log.info(
                    "stage %d: %d/%d tasks done, %d running, %.0fs elapsed (%s)",
                    stage_id,
                    info.numCompletedTasks,
                    info.numTasks,
                    info.numActiveTasks,
                    now - first_seen,
                    info.name,
                )
            else:
                continue
            self._last_line[stage_id] = now
