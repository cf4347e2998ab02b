"""The shape of a row's error list, as stored: Pydantic's ``errors()`` without url/ctx."""

from __future__ import annotations

from collections import Counter

import polars as pl

from engine.columns import ERRORS

__all__ = ["ERRORS", "ERROR_DTYPE", "ERROR_STRUCT", "count_error_lists", "count_errors", "error"]

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


ErrorCounts = Counter[tuple[str, str]]  # (loc joined with ".", error type) -> errors


def count_errors(errors: pl.Series) -> ErrorCounts:
    """Errors per (loc, type) in a Series of error structs."""
    if errors.len() == 0:
        return Counter()
    counted = (
        pl.DataFrame({"e": errors})
        .select(
            pl.col("e").struct.field("loc").list.join(".").alias("loc"),
            pl.col("e").struct.field("type").alias("type"),
        )
        .group_by("loc", "type")
        .len()
    )
    return Counter({(loc, kind): n for loc, kind, n in counted.iter_rows()})


def count_error_lists(frame: pl.DataFrame, column: str) -> ErrorCounts:
    """Errors per (loc, type) in a frame's column of error lists."""
    return count_errors(frame.get_column(column).explode().drop_nulls())
