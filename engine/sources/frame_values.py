"""A frame's key columns straight from its column types, without parsing its JSON forms.

A row of a frame is written as JSON text (its lineage, ``json_forms.object_text``), and
what the one data path needs from that text, per requested key, is the value's text, its
JSON kind and its token (``engine.sources.json_values``). For a column of a type whose
JSON form is fixed by the type, those are known without reading the text back: a string
column's values are strings (or nulls), an integer column's are ints, and so on. So the
tokens written for the lineage (``json_forms.column_tokens``) are reused and nothing is
parsed: the columns come out equal to what ``JsonValues.frame`` makes of the texts, tokens
as JSON values (a string's control characters escaped as Python's ``json`` writes them,
``\\u001f``, where DuckDB writes ``\\u001F``), checked on generated frames in
``tests/sources/test_frame_values.py``.

Floats are written by DuckDB, as its reading of their tokens gives them back
(``1e+20`` as ``100000000000000000000.0``). Nested values, durations, bytes and Python
objects (whose JSON is objects, arrays or Pydantic's forms) are parsed as before, from a
JSON object of their tokens alone: a fraction of the row's text.

When the model forbids extra keys, each column the model does not read gets a token column
too (``token_column``): the ``input`` of its ``extra_forbidden`` error, as Pydantic's own
error gives it (``fallback.json_input`` of the value): the column's token where the two are
the same text (strings, integers, bools, nulls), else written by Python.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from engine.batch import KEYS, MALFORMED, MALFORMED_MSG, Kind, kind_column
from engine.columns import NEEDS_PYTHON, token_column
from engine.sources.json_forms import object_expr
from engine.validation.fallback import json_input

HEIGHT = "__height"
QUOTED = (pl.Date, pl.Datetime, pl.Time, pl.Decimal)  # written as a JSON string, no escapes
# Parses JSON object texts for the given keys, as ``JsonValues.frame`` does.
Parse = Callable[[tuple[str, ...], pl.Series], pl.DataFrame]
# Float64 values as the JSON texts DuckDB writes for them (null for null).
Floats = Callable[[pl.Series], pl.Series]


def _kind(dtype: pl.DataType) -> Kind | None:
    """The JSON kind of a column's non-null values, None if not fixed by its type."""
    if isinstance(dtype, (pl.String, pl.Categorical, pl.Enum, *QUOTED)):
        return Kind.STR
    if dtype == pl.Boolean():
        return Kind.BOOL
    if dtype.is_integer():
        return Kind.INT
    if dtype.is_float():
        return Kind.FLOAT
    if dtype == pl.Null():
        return Kind.NULL
    return None


def frame_values(
    frame: pl.DataFrame,
    tokens: pl.DataFrame,
    keys: tuple[str, ...],
    *,
    want_all_keys: bool,
    parse: Parse,
    floats: Floats,
) -> pl.DataFrame:
    """The columns ``JsonValues.frame`` gives for the rows' JSON texts: ``MALFORMED``,
    ``MALFORMED_MSG``, ``KEYS``, ``NEEDS_PYTHON`` and per key its text, kind and token, from
    the frame (at least one column) and its ``column_tokens``."""
    names = frame.columns
    position = {name: index for index, name in enumerate(names)}
    parsed_keys = tuple(
        k for k in keys if k in position and _kind(frame.dtypes[position[k]]) is None
    )
    # Columns by position, as in ``tokens``: a name like "^a$" would be a pattern to pl.col().
    parts = [frame.rename({name: f"c{i}" for i, name in enumerate(names)}), tokens]
    needs: pl.Expr = pl.lit(False)
    if want_all_keys:  # the extra columns' inputs, where their tokens are not Python's text
        for index, name in enumerate(names):
            if name not in keys and not _token_is_input(frame.dtypes[index]):
                inputs = [json_input(v) for v in frame.to_series(index).to_list()]
                parts.append(pl.Series(f"x{index}", inputs, dtype=pl.String).to_frame())
    for key in keys:  # a float's text as DuckDB's reading of its token gives it
        if key in position and frame.schema[key].is_float():
            number = frame.get_column(key).cast(pl.Float64)
            parts.append(floats(number).alias(f"f{position[key]}").to_frame())
    if parsed_keys:
        texts = tokens.select(object_expr([(k, f"t{position[k]}") for k in parsed_keys]))
        parsed = parse(parsed_keys, texts.to_series())
        assert parsed[MALFORMED].null_count() == parsed.height, "a frame's own JSON is valid"
        # By get_column: a key like "*" would be a pattern to select().
        own = [parsed.get_column(NEEDS_PYTHON).alias("p")]
        own += [
            parsed.get_column(c).alias(f"p{i}") for i, c in enumerate(_key_columns(parsed_keys))
        ]
        parts.append(pl.DataFrame(own))
        needs = pl.col("p")
    everything = pl.lit(pl.Series([names], dtype=pl.List(pl.String))).first()
    columns: list[pl.Expr] = [
        pl.lit(None, pl.String).alias(MALFORMED),
        pl.lit(None, pl.String).alias(MALFORMED_MSG),
        (everything if want_all_keys else pl.lit(None, pl.List(pl.String))).alias(KEYS),
        needs.alias(NEEDS_PYTHON),
    ]
    for key in keys:
        if key in parsed_keys:
            first = 3 * parsed_keys.index(key)
            columns += [
                pl.col(f"p{first + i}").alias(name) for i, name in enumerate(_key_columns((key,)))
            ]
        elif key in position:
            columns += _native(key, position[key], frame.dtypes[position[key]])
        else:
            columns += [
                pl.lit(None, pl.String).alias(key),
                pl.lit(Kind.ABSENT, pl.UInt8).alias(kind_column(key)),
                pl.lit(None, pl.String).alias(token_column(key)),
            ]
    if want_all_keys:
        columns += [
            pl.col(f"{'t' if _token_is_input(frame.dtypes[i]) else 'x'}{i}").alias(token_column(n))
            for i, n in enumerate(names)
            if n not in keys
        ]
    # With a column of the frame first, literals are as tall as it (alone they are one row).
    both = pl.concat(parts, how="horizontal")
    return both.select(pl.col("c0").alias(HEIGHT), *columns).drop(HEIGHT)


def _token_is_input(dtype: pl.DataType) -> bool:
    """A column whose tokens are Python's JSON text of its values (``json_input``)."""
    plain = dtype in (pl.Null(), pl.Boolean()) or dtype.is_integer()
    return plain or isinstance(dtype, pl.String | pl.Categorical | pl.Enum)


def _key_columns(keys: tuple[str, ...]) -> list[str]:
    return [c for key in keys for c in (key, kind_column(key), token_column(key))]


def _native(key: str, index: int, dtype: pl.DataType) -> list[pl.Expr]:
    """A key's text, kind and token from its column (``c<index>``) and tokens (``t<index>``)."""
    value, tok, kind = pl.col(f"c{index}"), pl.col(f"t{index}"), _kind(dtype)
    assert kind is not None, f"{key}: {dtype} has no fixed JSON kind"
    if kind == Kind.FLOAT:
        text = pl.col(f"f{index}")
        tok = text.fill_null(pl.lit("null"))
    elif isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
        text = value.cast(pl.String)
    elif isinstance(dtype, QUOTED):
        text = pl.when(value.is_not_null()).then(tok.str.slice(1).str.head(-1))
    else:
        text = pl.when(value.is_not_null()).then(tok)
    return [
        text.alias(key),
        pl.when(value.is_null())
        .then(pl.lit(Kind.NULL, pl.UInt8))
        .otherwise(pl.lit(kind, pl.UInt8))
        .alias(kind_column(key)),
        tok.alias(token_column(key)),
    ]
