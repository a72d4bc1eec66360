"""The swap of one date's staged outputs into the live tables, kept in a journal while it runs.

Before the first rename a small JSON document, `OUTPUT/_journal/snapshot_date=D.json`, lists every
move: each table's staged partition, live partition and trash folder (a partition the run retires,
such as a date's shadow scores rerun without challengers, has no staged one: it only goes to trash),
and results.csv's staged file and target. It is removed after the last rename. A driver that dies in
between leaves it behind, and the next run that touches the table completes that swap (everything in
it was staged whole and marked before the journal was written) before it does anything else. A swap
that fails inside a living run is rolled back instead, so that a failed run leaves the live outputs as
they were.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from pyspark.sql import SparkSession

from defaultrisk.fs import (
    delete_path,
    list_children,
    mkdirs,
    path_exists,
    read_text,
    remove_if_empty,
    rename,
    rename_to_absent,
    write_text,
)
from defaultrisk.schema import SNAPSHOT_DATE
from defaultrisk.scoring import lock, staging

log = logging.getLogger(__name__)

JOURNAL_DIR = "_journal"


def journal_path(table_root: str, day: date) -> str:
    return f"{table_root.rstrip('/')}/{JOURNAL_DIR}/{SNAPSHOT_DATE}={day.isoformat()}.json"


def _document(
    parts: list[staging.StagedPartition],
    results: tuple[str, str] | None,
    retired: list[staging.RetiredPartition],
) -> dict:
    """The swap's moves in order; a retired partition's move has no staged folder (`staged` null)."""

    def move(part, staged: str | None) -> dict:
        live, trash = part.partition, staging.trash_path(part)
        return {"root": part.root, "run_id": part.run_id, "staged": staged, "live": live, "trash": trash}

    moves = [move(p, p.staged) for p in parts] + [move(r, None) for r in retired]
    return {
        "run_id": parts[0].run_id,
        "moves": moves,
        "results": {"staged": results[0], "target": results[1]} if results else None,
    }


def swap(
    spark: SparkSession,
    table_root: str,
    day: date,
    parts: list[staging.StagedPartition],
    results: tuple[str, str] | None,
    retired: list[staging.RetiredPartition] = (),
) -> None:
    """Swap the staged partitions in (old ones to trash), move the retired ones to trash, then
    results.csv (staged file, target).

    The caller holds the date's lock. A failure rolls everything back and re-raises.
    """
    document = _document(parts, results, list(retired))
    path = journal_path(table_root, day)
    write_text(spark, path, json.dumps(document, indent=1) + "\n")
    try:
        _complete(spark, document)
    except BaseException:  # Ctrl-C and SIGTERM too: the live outputs go back to what they were
        try:
            _roll_back(spark, document)
        except Exception as exc:  # the journal stays: the next run completes the swap
            log.error("could not roll back the swap (%s); %s stays for the next run", exc, path)
            raise
        _forget(spark, path)
        raise
    _forget(spark, path)


def _forget(spark: SparkSession, path: str) -> None:
    delete_path(spark, path)
    remove_if_empty(spark, path.rsplit("/", 1)[0])


def _complete(spark: SparkSession, document: dict) -> None:
    """Every remaining rename, in order; each step checks where it stands, so it can be repeated."""
    for move in document["moves"]:
        if move["staged"] is None:  # retired: only the live partition goes, to trash
            if path_exists(spark, move["live"]):
                mkdirs(spark, move["trash"].rsplit("/", 1)[0])
                rename_to_absent(spark, move["live"], move["trash"])
        elif path_exists(spark, move["staged"]):
            if path_exists(spark, move["live"]):
                mkdirs(spark, move["trash"].rsplit("/", 1)[0])
                rename_to_absent(spark, move["live"], move["trash"])
            rename_to_absent(spark, move["staged"], move["live"])
    results = document["results"]
    if results and path_exists(spark, results["staged"]):
        rename(spark, results["staged"], results["target"], overwrite=True)
    _clear(spark, document)


def _roll_back(spark: SparkSession, document: dict) -> None:
    results = document["results"]
    if results and not path_exists(spark, results["staged"]):
        _complete(spark, document)  # results.csv was replaced: that rename is the commit point
        return
    for move in reversed(document["moves"]):
        moved_in = move["staged"] is not None and not path_exists(spark, move["staged"])
        if moved_in and path_exists(spark, move["live"]):
            delete_path(spark, move["live"])  # this run's partition, already moved in
        if path_exists(spark, move["trash"]) and not path_exists(spark, move["live"]):
            rename_to_absent(spark, move["trash"], move["live"])
    if results:
        delete_path(spark, results["staged"])
    _clear(spark, document)


def _clear(spark: SparkSession, document: dict) -> None:
    for move in document["moves"]:
        staging.remove_run_folders(spark, move["root"], move["run_id"])


def recover(spark: SparkSession, table_root: str, day: date, run_id: str) -> list[str]:
    """Complete the swaps that died runs left in the table's journal, before this run does anything.

    This run holds the lock of `day`; another date's journal is completed only if its lock is free
    (a journal under a live run's lock is that run's swap in progress). Returns what was completed.
    """
    done = []
    for path in list_children(spark, f"{table_root.rstrip('/')}/{JOURNAL_DIR}"):
        other = _journal_date(path)
        if other is None:
            continue
        held = None if other == day else lock.try_acquire(spark, table_root, other, run_id)
        if other != day and held is None:
            continue
        try:
            text = read_text(spark, path)
            if text:
                document = json.loads(text)
                _complete(spark, document)
                log.warning(
                    "completed the swap of run %s for %s, interrupted: %s", document["run_id"], other, path
                )
                done.append(path)
            _forget(spark, path)
        finally:
            if held is not None:
                lock.release(spark, held)
    return done


def _journal_date(path: str) -> date | None:
    name = path.rsplit("/", 1)[-1]
    prefix, suffix = f"{SNAPSHOT_DATE}=", ".json"
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    try:
        return date.fromisoformat(name[len(prefix) : -len(suffix)])
    except ValueError:
        return None
