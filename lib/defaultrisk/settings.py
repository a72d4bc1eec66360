"""Typed settings: a config field's allowed values, and the checks a loaded TOML table goes through.

A field made by `setting` (or `choice`, `whole`, `fraction`, ...) carries what its value must be; the
checks convert each value to the field's declared type (a boolean is not a number, a string is not a
number, a whole number is a number) and collect every problem, so that one `ConfigError` names them all.

Every room reads its TOML file through `read_toml`, which finds the shipped defaults in `CONF_DIR`: the
checkout's `conf/`, or the copy built into the installed package.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import field
from datetime import date, datetime
from pathlib import Path

from defaultrisk.errors import ConfigError


def _conf_dir() -> Path:
    """The checkout's `conf/` when the package runs from a checkout; else the copy built into the package.

    `setup.py` copies `conf/` into the wheel (`defaultrisk/conf/`), so there is one source and an
    installed package or a cluster-mode driver reads the same defaults as the checkout.
    """
    here = Path(__file__).resolve()
    checkout_conf = here.parents[2] / "conf"
    if here.parents[1].name == "lib" and checkout_conf.is_dir():
        return checkout_conf
    return here.parent / "conf"


CONF_DIR = _conf_dir()
INPUT_FORMATS = ("auto", "csv", "parquet")


def read_toml(path: Path | None, default_name: str) -> tuple[str, dict]:
    """The file's name and its contents; the shipped default when no path is given."""
    if path is None:
        path = CONF_DIR / default_name
        if not path.exists():
            return "built-in defaults", {}
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        with path.open("rb") as fh:
            return str(path), tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def as_dict(cfg) -> dict:
    """The effective config as plain data, for the start-of-run log line and the manifest."""
    return dataclasses.asdict(cfg)


def setting(default, must: str, ok: Callable[[object], bool]):
    """A field whose value must pass `ok` beyond its declared type; `must` says so in an error."""
    return field(default=default, metadata={"must": must, "ok": ok})


def choice(default: str, choices: tuple[str, ...]):
    *first, last = (f'"{c}"' for c in choices)
    return setting(default, f"{', '.join(first)} or {last}", lambda v: v in choices)


def whole(default: int | None, low: int, high: int | None = None):
    must = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"
    return setting(default, must, lambda v: low <= v and (high is None or v <= high))


def fraction(default: float | None, *, include_one: bool = True):
    """A number in (0, 1] (or (0, 1) when one is excluded)."""
    if include_one:
        return setting(default, "a number in (0, 1]", lambda v: 0.0 < v <= 1.0)
    return setting(default, "a number in (0, 1)", lambda v: 0.0 < v < 1.0)


def positive(default: float | None):
    return setting(default, "a number above 0", lambda v: v > 0.0)


def at_least_zero(default: float):
    return setting(default, "a number >= 0", lambda v: v >= 0.0)


def ratios(default: tuple[float, ...]):
    return setting(default, "a list of numbers in (0, 1]", lambda v: all(0.0 < r <= 1.0 for r in v))


# What each TOML type is called in an error, and what each declared type expects when no range is given.
_EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", date: "a date"}


_BAD = object()  # a value of the wrong type


_NOT_IN_FILES = object()  # a field only the command line sets


def found(value) -> str:
    """A value as the file wrote it, and what TOML read it as."""
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"{json.dumps(value)} (a string)"
    if isinstance(value, int):
        return f"{value} (a whole number)"
    if isinstance(value, float):
        return f"{value!r} (a float)"
    if isinstance(value, list):
        return f"{json.dumps(value, default=str)} (a list)"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return f"{value.isoformat()} (a date and time)"
    return f"{value} ({type(value).__name__})"


def optional_of(hint):
    """`X` for `X | None`, else the hint itself."""
    if isinstance(hint, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def convert(value, hint):
    """`value` as the declared type, `_BAD` when it is not one, `_NOT_IN_FILES` for flag-only fields.

    Strict on purpose: TOML's booleans are never numbers, strings never numbers or booleans; a whole
    number is accepted where a number is declared.
    """
    hint = optional_of(hint)
    if hint is bool or hint is str:
        return value if isinstance(value, hint) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _BAD
    if hint is date:
        return value if isinstance(value, date) and not isinstance(value, datetime) else _BAD
    if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
        if not isinstance(value, list):
            return _BAD
        items = [convert(v, typing.get_args(hint)[0]) for v in value]
        return _BAD if any(i is _BAD for i in items) else tuple(items)
    return _NOT_IN_FILES


def check_values(cls, values: dict, where: str, problems: list[str]) -> dict:
    """The values of one section that have their field's type and range, converted; the rest as problems."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    good = {}
    for key, value in values.items():
        spec = fields.get(key)
        if spec is None or dataclasses.is_dataclass(hints[key]):
            problems.append(f"{where} {key} is not a known setting")
            continue
        converted = convert(value, hints[key])
        if converted is _NOT_IN_FILES:
            problems.append(f"{where} {key} is set on the command line, not in a config file")
            continue
        ok = spec.metadata.get("ok", lambda _: True)
        if converted is _BAD or not ok(converted):
            must = spec.metadata.get("must") or _EXPECTED[optional_of(hints[key])]
            problems.append(f"{where} {key} must be {must}, found {found(value)}")
            continue
        good[key] = converted
    return good


def check_flags(cls, overrides: dict, problems: list[str]) -> None:
    """Command-line values come typed by argparse; only their ranges are left to check."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in overrides.items():
        ok = fields[key].metadata.get("ok")
        if ok is not None and value is not None and not ok(value):
            flag = "--" + key.replace("_", "-")
            problems.append(f"{flag} must be {fields[key].metadata['must']}, found {value!r}")


def read_sections(raw: dict, known: tuple[str, ...], problems: list[str]) -> dict[str, dict]:
    """Each known section's table (empty when absent); unknown sections and non-tables as problems."""
    for name in sorted(set(raw) - set(known)):
        problems.append(f"[{name}] is not a known section (known: {', '.join(known)})")
    tables = {}
    for name in known:
        value = raw.get(name, {})
        if not isinstance(value, dict):
            problems.append(f"[{name}] must be a table, found {found(value)}")
            value = {}
        tables[name] = value
    return tables


def fail_if(problems: list[str], source: str) -> None:
    # One line, every problem: the job's failure reason is a single stderr line.
    if problems:
        raise ConfigError(f"config {source}: {'; '.join(problems)}")
