"""The violations of a validated batch, assembled from its error parts.

Each kind of error (``ErrorPart``) is built only on the rows that have it, read from the
evaluated batch itself (no copy of the invalid rows first), then the pieces are put in
order: no group-by, no join.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import polars as pl

from engine.columns import PYTHON, ROW
from engine.validation.common import json_text
from engine.validation.error_list import (
    INPUT,
    LOC,
    MSG,
    RULE,
    SEQ,
    TYPE,
    VIOLATION_SCHEMA,
    empty_violations,
)


class ErrorPart(NamedTuple):
    """One kind of error: the rows that have it, its rule (a code, or an expression choosing
    one per row), its input, and what is given per row: the message where the rule has no
    fixed one, or type, loc and message together (``code`` None)."""

    rows: pl.Expr
    code: pl.Expr | None
    input: pl.Expr
    msg: pl.Expr | None = None
    given: tuple[pl.Expr, pl.Expr] | None = None  # (type, loc) when not coded


def violations(marked: pl.DataFrame, parts: Sequence[ErrorPart]) -> pl.DataFrame:
    """The violations of the invalid rows of ``marked`` (an evaluated batch with its fields'
    first-failure columns; those Pydantic does not decide), in row order (and, within a row,
    in the order Pydantic reports them: ``SEQ``)."""
    ours = ~pl.col(PYTHON)
    masks = marked.select(
        [(part.rows.fill_null(False) & ours).alias(str(i)) for i, part in enumerate(parts)]
    )
    plans: list[pl.LazyFrame] = []
    n = len(parts)
    for i, part in enumerate(parts):
        mask = masks.get_column(str(i))
        if not mask.any():
            continue
        columns = [
            (part.code if part.code is not None else pl.lit(None, pl.Int32)).alias(RULE),
            part.input.alias(INPUT),
        ]
        if part.msg is not None:
            columns.append(part.msg.alias(MSG))
        if part.given is not None:
            columns += [part.given[0].alias(TYPE), part.given[1].alias(LOC)]
        # The sort key: row position first, then the part's place in Pydantic's order.
        key = (mask.arg_true().cast(pl.Int64) * n + i).alias("__key")
        # Lazy, so that only the columns the part reads are filtered.
        plans.append(marked.lazy().filter(mask).select(columns).with_columns(key))
    # All parts in one call: planned and run together.
    pieces = pl.collect_all(plans, engine="in-memory")
    if not pieces:
        return empty_violations()
    frame = pl.concat(pieces, how="diagonal") if len(pieces) > 1 else pieces[0]
    if len(pieces) > 1:
        frame = frame.sort("__key")
    position = pl.col("__key") // len(parts)
    index = pl.int_range(pl.len(), dtype=pl.Int32)
    start = pl.when(position != position.shift(1, fill_value=-1)).then(index).forward_fill()
    rows = marked.get_column(ROW)
    frame = frame.with_columns(
        rows.gather(frame.get_column("__key") // len(parts)).alias(ROW),
        (index - start).alias(SEQ),
    )
    return frame.select(c for c in VIOLATION_SCHEMA if c in frame.columns)


def row_json(source_keys: Sequence[str]) -> pl.Expr:
    """A CSV row as the JSON object ``model_validate`` got: its non-empty cells in header
    order (Pydantic reports the whole input as the ``input`` of a missing field)."""
    pieces = [
        pl.when(pl.col(k).is_not_null()).then(pl.lit(json.dumps(k) + ":") + json_text(pl.col(k)))
        for k in source_keys
    ]
    if not pieces:
        return pl.lit("{}")
    return pl.lit("{") + pl.concat_str(pieces, separator=",", ignore_nulls=True) + pl.lit("}")
