"""Every path a scoring run writes, checked against the others and the input before anything is read.

The scored table, the rejects table, the drift reports and each date's results.csv must not land inside
one another (a CSV inside a Parquet table breaks every reader; a results.csv inside the date's partition
is renamed away by the swap), must not overlap the input (the night's only copy of it), and a template
must give each date its own results file. Paths are compared qualified and normalised (`..` resolved),
so two spellings of one place are one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from defaultrisk.errors import ConfigError
from defaultrisk.fs import kind, qualified
from defaultrisk.schema import CHALLENGERS_DIR
from defaultrisk.scoring.config import DATE_PLACEHOLDER, ScoreConfig, for_date
from defaultrisk.scoring.staging import shadow_root

# Folders the job itself keeps under a table's root: nothing else may live in them.
RESERVED = frozenset(
    {"_staging", "_trash", "_runs", "_drift", "_locks", "_journal", "_SUCCESS", CHALLENGERS_DIR}
)
# Spark reads a table's folder back as a glob pattern: these would make it match something else.
GLOB_CHARACTERS = "[]{}"


@dataclass(frozen=True)
class Place:
    """A path as given (for the message) and qualified (for comparing)."""

    flag: str
    given: str
    where: str


def _inside(child: str, parent: str) -> bool:
    return child.startswith(parent.rstrip("/") + "/")


def _overlap(a: str, b: str) -> bool:
    return a == b or _inside(a, b) or _inside(b, a)


def _refuse(first: Place, second: Place, why: str) -> ConfigError:
    return ConfigError(f"{first.flag} {first.given} {why} {second.flag} {second.given}")


def _beside_table(place: Place, table: Place) -> None:
    """`place` may sit inside `table` only in a `_` folder of its own (which the table's readers skip)."""
    if place.where == table.where:
        raise _refuse(place, table, "is the same path as")
    if not _inside(place.where, table.where):
        return
    first = place.where[len(table.where.rstrip("/")) + 1 :].split("/", 1)[0]
    if not first.startswith("_") or first in RESERVED:
        raise _refuse(place, table, "lies inside the table of")


def _check_flags(cfg: ScoreConfig) -> None:
    for flag, value in (("--output", cfg.output_dir), ("--rejects", cfg.rejects_dir)):
        if not value:
            continue
        if DATE_PLACEHOLDER in value:
            raise ConfigError(
                f"{flag} {value}: {DATE_PLACEHOLDER} is replaced only in --input and --results-csv"
            )
        if any(c in value for c in GLOB_CHARACTERS):
            raise ConfigError(
                f"{flag} {value}: [ ] {{ }} would be read back as a glob pattern; rename the folder"
            )


def _places(spark: SparkSession, cfg: ScoreConfig) -> tuple[list[Place], list[Place], list[Place]]:
    """The two tables (scores, rejects), the drift folder, the shadow table and results files, and
    the inputs."""

    def place(flag: str, given: str) -> Place:
        return Place(flag, given, qualified(spark, given))

    output = place("--output", cfg.output_dir)
    tables = [output, place("--rejects", cfg.effective_rejects_dir)]
    written = [
        *tables,
        Place("drift reports", f"{output.given.rstrip('/')}/_drift", f"{output.where}/_drift"),
        Place("the shadow table", shadow_root(output.given), shadow_root(output.where)),
    ]
    inputs, results = [], []
    for day in cfg.dates:
        inputs.append(place("--input", for_date(cfg.input_path, day)))
        if cfg.results_csv:
            results.append(place("--results-csv", for_date(cfg.results_csv, day)))
    return tables, [*written, *results], inputs


def check_paths(spark: SparkSession, cfg: ScoreConfig) -> None:
    """Refuse, before anything is read or written, paths that would overwrite or break one another.

    Raises ConfigError (exit 2) with one line naming both paths.
    """
    _check_flags(cfg)
    tables, written, inputs = _places(spark, cfg)
    scores, rejects = tables
    _beside_table(rejects, scores)
    _beside_table(scores, rejects)
    for place in written:
        for source in inputs:
            if _overlap(place.where, source.where):
                raise _refuse(place, source, "overlaps the input")
        if place.flag == "--results-csv":
            for table in tables:
                _beside_table(place, table)
    _check_results_per_date(cfg, [p for p in written if p.flag == "--results-csv"])
    _check_kinds(spark, tables, [p for p in written if p.flag == "--results-csv"])


def _check_results_per_date(cfg: ScoreConfig, results: list[Place]) -> None:
    seen: dict[str, int] = {}
    for number, place in enumerate(results):
        if place.where in seen:
            earlier = cfg.dates[seen[place.where]].isoformat()
            raise ConfigError(
                f"--results-csv {cfg.results_csv} gives one file for {earlier} and "
                f"{cfg.dates[number].isoformat()}: {place.given}"
            )
        seen[place.where] = number


def _check_kinds(spark: SparkSession, tables: list[Place], results: list[Place]) -> None:
    for table in tables:
        if kind(spark, table.given) == "file":
            raise ConfigError(f"{table.flag} {table.given} is a file; a folder is meant")
    for place in results:
        if kind(spark, place.given) == "folder":
            raise ConfigError(f"{place.flag} {place.given} is a folder; a file is meant")
