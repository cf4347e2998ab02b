"""A row's JSON form: how a frame's or a dict's values are written as JSON text.

A row held in memory (a Polars frame, an Arrow batch, a dict) becomes the JSON object text
that is its lineage, and that the one data path reads like an NDJSON record. JSON's own types
(null, bools, numbers, strings) are written as Python's ``json`` writes them (NaN and the
infinities as ``NaN``, ``Infinity``, ``-Infinity``, which ``json.loads`` reads back); a float
as the shortest text that reads back as the same float (``repr``). Types JSON lacks are
written as text: dates, datetimes and times as their ``isoformat()``, decimals as their
plain decimal text (``0.0000001``), anything else (durations, bytes, nested values) as
Pydantic's JSON form of it. Polars frames are encoded column by column, vectorized.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic_core import to_jsonable_python

from engine.sources.json_values import escape_surrogates

PLAIN = (str, int, float, bool, type(None))
UNWRITABLE = "__unwritable__"  # the one key of the JSON form of a row JSON cannot hold
TEMPORAL = (pl.Date, pl.Datetime, pl.Time)


def jsonable(value: Any) -> Any:
    """A Python value as JSON data (for types JSON lacks: their text)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:
        return to_jsonable_python(value)
    except Exception:  # an arbitrary object: its repr, as the error inputs show it
        return repr(value)


def dumps(value: Any) -> str:
    """JSON text as Python's ``json`` writes it, compact, lone surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return escape_surrogates(text)


def row_json(row: Any) -> tuple[str, bool]:
    """A row (normally a dict) as JSON text, and whether Pydantic must see the row itself:
    it holds something JSON does not (a datetime, a tuple, a subclass of int...)."""
    if isinstance(row, Mapping):
        plain = all(type(k) is str for k in row) and all(type(v) in PLAIN for v in row.values())
        if plain:
            return dumps(row), False
    try:
        return dumps(jsonable(row)), True
    except (RecursionError, ValueError):  # nested deeper than the stack, or circular: an
        # object still (Pydantic judges the row itself), saying why it holds nothing else
        return dumps({UNWRITABLE: unwritable(row)}), True


def unwritable(value: Any) -> str:
    """Why a value is not written as JSON: nested past the recursion limit, or circular."""
    return f"a {type(value).__name__} nested too deeply (or circular) to write as JSON"


def _python_token(value: Any) -> str:
    if isinstance(value, pl.Series):  # an element of a list column: its values, in full
        value = value.to_list()
    return "null" if value is None else dumps(jsonable(value))


def _float_token(column: pl.Expr) -> pl.Expr:
    wide = column.cast(pl.Float64)
    return (
        pl.when(wide.is_nan())
        .then(pl.lit("NaN"))
        .when(wide == math.inf)
        .then(pl.lit("Infinity"))
        .when(wide == -math.inf)
        .then(pl.lit("-Infinity"))
        .otherwise(_repr_text(wide.cast(pl.String)))
    )


def _repr_text(text: pl.Expr) -> pl.Expr:
    """Polars' shortest float text as Python's ``repr`` writes it: Polars writes magnitudes
    from 1e-6 to 1e-4 in fixed notation (``0.00001``, repr ``1e-05``) and one-digit
    exponents without the padding zero (``1e-7``, repr ``1e-07``); the digits are the same."""
    fixed = text.str.extract_groups(r"^(-?)0\.(0{4,5})([1-9])([0-9]*)$")
    digits = fixed.struct.field("4")
    exponent = fixed.struct.field("2").str.len_chars() + 1
    scientific = pl.concat_str(
        fixed.struct.field("1"),
        fixed.struct.field("3"),
        pl.when(digits != "").then(pl.lit(".") + digits).otherwise(pl.lit("")),
        pl.lit("e-0"),
        exponent.cast(pl.String),
    )
    padded = text.str.replace(r"e-([1-9])$", "e-0${1}")
    return pl.when(fixed.struct.field("3").is_not_null()).then(scientific).otherwise(padded)


def _quoted(text: pl.Expr) -> pl.Expr:
    return pl.lit('"') + text + pl.lit('"')


def _micros(column: pl.Expr) -> pl.Expr:
    """``.ffffff`` when the value has microseconds, as ``isoformat`` writes it."""
    return (
        pl.when(column.dt.microsecond() != 0).then(column.dt.strftime("%.6f")).otherwise(pl.lit(""))
    )


def odd_offset(column: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    """Where a zoned datetime's UTC offset has seconds (local mean time, before about 1900):
    its ``isoformat()`` says so (``+00:09:21``), which no datetime parser of text takes."""
    value = column.cast(pl.Datetime("us", dtype.time_zone))
    wall = value.dt.replace_time_zone(None)
    utc = value.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return (wall - utc).dt.total_seconds() % 60 != 0


def _datetime_token(column: pl.Expr, dtype: pl.Datetime) -> pl.Expr:
    value = column.cast(pl.Datetime("us", dtype.time_zone))  # what Python sees (floored)
    text = value.dt.strftime("%Y-%m-%dT%H:%M:%S") + _micros(value)
    if dtype.time_zone is not None:
        text = text + pl.when(odd_offset(column, dtype)).then(value.dt.strftime("%::z")).otherwise(
            value.dt.strftime("%:z")
        )
    return _quoted(text)


def token(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column's values as JSON text (``null`` for a null)."""
    if dtype == pl.Null():
        return column.cast(pl.String).fill_null(pl.lit("null"))  # a column: as tall as the frame
    if dtype == pl.Boolean():
        text = (
            pl.when(column.is_null())
            .then(pl.lit(None, pl.String))
            .when(column)
            .then(pl.lit("true"))
            .otherwise(pl.lit("false"))
        )
    elif dtype.is_integer():
        text = column.cast(pl.String)
    elif dtype.is_float():
        text = _float_token(column)
    elif isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
        encoded = pl.struct(column.cast(pl.String).alias("v")).struct.json_encode()
        text = encoded.str.slice(5).str.head(-1)  # {"v":"..."} -> "..."
    elif isinstance(dtype, pl.Date):
        text = _quoted(column.dt.strftime("%Y-%m-%d"))
    elif isinstance(dtype, pl.Datetime):
        text = _datetime_token(column, dtype)
    elif isinstance(dtype, pl.Time):
        text = _quoted(column.dt.strftime("%H:%M:%S") + _micros(column))
    elif isinstance(dtype, pl.Decimal):
        text = _quoted(column.cast(pl.String))
    else:  # durations, bytes, nested and Python objects: rare, written by Python
        text = column.map_elements(_python_token, return_dtype=pl.String, skip_nulls=False)
    return text.fill_null(pl.lit("null"))


def column_tokens(frame: pl.DataFrame) -> pl.DataFrame:
    """Each column's values as JSON text (``token``), by position: ``t0``, ``t1``..."""
    # Columns by position: a name like "^a$" would be a pattern to pl.col().
    positional = frame.rename({name: f"c{i}" for i, name in enumerate(frame.columns)})
    return positional.select(
        token(pl.col(f"c{i}"), dtype).alias(f"t{i}") for i, dtype in enumerate(frame.dtypes)
    )


def object_expr(columns: list[tuple[str, str]]) -> pl.Expr:
    """A JSON object text per row from (key, token column) pairs, in order."""
    pieces: list[pl.Expr] = []
    for index, (name, column) in enumerate(columns):
        pieces += [pl.lit(("{" if index == 0 else ",") + dumps(name) + ":"), pl.col(column)]
    return pl.concat_str([*pieces, pl.lit("}")]) if columns else pl.lit("{}")


def object_text(frame: pl.DataFrame, tokens: pl.DataFrame | None = None) -> pl.Series:
    """Each row of ``frame`` as one JSON object text, its columns in order (``tokens``:
    its ``column_tokens`` when already computed)."""
    if not frame.width:
        return pl.Series("raw", ["{}"] * frame.height, dtype=pl.String)
    tokens = column_tokens(frame) if tokens is None else tokens
    pairs = [(name, f"t{index}") for index, name in enumerate(frame.columns)]
    return tokens.select(object_expr(pairs).alias("raw")).to_series()
