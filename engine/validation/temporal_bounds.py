"""Bounds on ordered temporal values (ge, gt, le, lt), as pydantic-core checks them.

pydantic-core compares with speedate: two aware datetimes (or times) as instants, anything
else by wall time, and writes the bound in its messages the way speedate prints it
(``2030-01-01T00:00:00Z``: microseconds only when not zero, ``Z`` for UTC).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

import polars as pl

from engine.validation.common import message
from engine.validation.rules import Rule

FIRST_INSTANT = datetime(1, 1, 1)
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, 999999)
BOUNDS: tuple[tuple[str, str, Callable[[pl.Expr, Any], pl.Expr]], ...] = (
    ("le", "less_than_equal", lambda v, c: v <= c),
    ("lt", "less_than", lambda v, c: v < c),
    ("ge", "greater_than_equal", lambda v, c: v >= c),
    ("gt", "greater_than", lambda v, c: v > c),
)


def bound_rules(
    schema: Mapping[str, Any],
    sides: Callable[[Any], tuple[pl.Expr, Any]],
    shown: Callable[[Any], str],
) -> list[Rule]:
    """le, lt, ge, gt in pydantic-core's order; ``sides(bound)`` gives what to compare (the
    value as an expression, the bound as a literal or expression), ``shown`` the bound as
    pydantic-core writes it in the message."""
    rules = []
    for key, error_type, compare in BOUNDS:
        bound = schema.get(key)
        if bound is None:
            continue
        value, limit = sides(bound)
        limit_expr = limit if isinstance(limit, pl.Expr) else pl.lit(limit)
        text = shown(bound)
        rules.append(
            Rule(
                error_type,
                value.is_not_null() & ~compare(value, limit_expr).fill_null(True),
                message(error_type, {key: text}),
                describe=f"{key} {text}",
            )
        )
    return rules


def datetime_sides(
    utc: pl.Expr, wall: pl.Expr, has_tz: pl.Expr, bound: datetime
) -> tuple[pl.Expr, pl.Expr]:
    """speedate compares two aware datetimes as instants, anything else by wall time."""
    if bound.tzinfo is None or bound.utcoffset() is None:
        return wall, pl.lit(bound)
    bound_utc = (bound - bound.utcoffset()).replace(tzinfo=None)  # type: ignore[operator]
    bound_wall = bound.replace(tzinfo=None)
    # Compare (value - bound) with zero on the matching side, so both sides are one expression.
    delta = pl.when(has_tz).then(utc - pl.lit(bound_utc)).otherwise(wall - pl.lit(bound_wall))
    return delta, pl.lit(timedelta(0))


def speedate_time(value: time) -> str:
    """A time as speedate prints it: microseconds only when not zero, offset as Z or +HH:MM."""
    text = value.strftime("%H:%M:%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
    offset = value.utcoffset()
    return text + ("" if offset is None else _offset_text(offset))


def speedate_datetime(value: datetime) -> str:
    """A datetime as speedate prints it: ``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM]``."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T" + speedate_time(value.timetz())


def _offset_text(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    minutes = abs(seconds) // 60
    return f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
