"""What the benchmarks share: the resident memory of a process and all its descendants (JVM, Python
workers), polled from /proc while the process runs. Linux only, like the figures it measures."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def process_tree_rss(root: int) -> dict[int, int]:
    """Resident bytes of `root` and every descendant, by pid (from /proc; vanished processes skipped)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    rss, pending = {}, [root]
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        try:
            rss[pid] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except OSError:
            continue
    return rss


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


class MemoryWatch(threading.Thread):
    """Polls a process tree's resident memory until the process ends: the peak of the sum, and each
    program's own peak (by process name)."""

    def __init__(self, process: subprocess.Popen, poll_seconds: float):
        super().__init__(daemon=True)
        self.process = process
        self.poll_seconds = poll_seconds
        self.peak_total = 0
        self.peak_by_name: dict[str, int] = {}

    def run(self) -> None:
        while self.process.poll() is None:
            rss = process_tree_rss(self.process.pid)
            self.peak_total = max(self.peak_total, sum(rss.values()))
            for pid, size in rss.items():
                name = process_name(pid)
                self.peak_by_name[name] = max(self.peak_by_name.get(name, 0), size)
            time.sleep(self.poll_seconds)
