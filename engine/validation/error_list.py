"""The shape of a row's error list, as stored: Pydantic's ``errors()`` without url/ctx."""

from __future__ import annotations

import polars as pl

ERRORS = "__errors"

ERROR_STRUCT = pl.Struct(
    {
        "type": pl.String(),
        "loc": pl.List(pl.String()),
        "msg": pl.String(),
        "input": pl.String(),  # the offending input as JSON text
    }
)
ERROR_DTYPE = pl.List(ERROR_STRUCT)


def error(
    error_type: pl.Expr, loc: list[str] | pl.Expr, msg: pl.Expr, input_json: pl.Expr
) -> pl.Expr:
    loc_expr = loc if isinstance(loc, pl.Expr) else pl.lit(loc, dtype=pl.List(pl.String))
    return pl.struct(
        error_type.alias("type"),
        loc_expr.alias("loc"),
        msg.alias("msg"),
        input_json.alias("input"),
    )
