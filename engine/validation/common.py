"""Small helpers shared by the type parsers: Pydantic's messages, JSON text, guards."""

from __future__ import annotations

from enum import Enum
from typing import Any

import polars as pl
from pydantic_core import PydanticKnownError


def message(error_type: str, context: dict[str, Any] | None = None) -> str:
    """Pydantic's own message for an error type, rendered by pydantic-core itself."""
    return PydanticKnownError(error_type, context).message()  # type: ignore[arg-type]


def context_number(value: Any) -> Any:
    """A constraint's number as pydantic-core shows it in a message: an int exactly (a bare
    int past 64 bits would go through a float and lose digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def json_text(expr: pl.Expr) -> pl.Expr:
    """Any scalar expression as JSON text (strings quoted and escaped), vectorized."""
    return pl.struct(expr.alias("v")).struct.json_encode().str.slice(5).str.head(-1)


def json_value(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A typed value as JSON the way Pydantic's ``errors()`` input would serialize it."""
    if isinstance(dtype, pl.Datetime):
        return json_text(expr.dt.to_string("%Y-%m-%dT%H:%M:%S%.f"))
    if isinstance(dtype, pl.Date):
        return json_text(expr.dt.to_string("%Y-%m-%d"))
    return json_text(expr)


def nan_safe(compare: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Python semantics for float comparisons: NaN compares false (Polars orders NaN last)."""
    return compare & ~value.is_nan()


# Rust's str::trim (what pydantic-core uses) strips Unicode White_Space; Polars' default
# strip_chars does the same, so numbers and strings are trimmed identically.
def trim(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars()


def plain_value(value: Any) -> Any:
    """A default as a column holds it: an Enum member's value, anything else as is."""
    return value.value if isinstance(value, Enum) else value
