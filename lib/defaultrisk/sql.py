"""Quoting for the Spark SQL the product generates (column names and text literals), in one place."""

from __future__ import annotations


def name(column: str) -> str:
    """A column name as a quoted SQL identifier."""
    return "`" + column.replace("`", "``") + "`"


def text(value: str) -> str:
    """A Python string as a SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
