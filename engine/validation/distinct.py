"""Computing a field's helper columns once per distinct input, then gathering them back.

Exports repeat values heavily (codes, flags, dates, small counts): a parser run on the few
distinct inputs of such a column and gathered back to every row does a fraction of the work.
Only fields whose helpers read their own input columns and nothing else qualify, and only in
batches where a sample of the rows shows enough repeats: a column of unique values costs one
look at a sample, never a pass over the distinct values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from engine.validation.rules import Helper

SAMPLE = 1024  # rows looked at to decide whether a batch's inputs repeat enough
HASH, INDEX = "__hash", "__distinct"
# Types whose equal values are the same input (a float's -0.0 equals 0.0).
EXACT = (pl.String(), pl.UInt8(), pl.Boolean(), pl.Int64(), pl.Int32())


def input_columns(helpers: Sequence[Helper]) -> list[str]:
    """The columns the helpers read besides each other (in order), or none when one of them
    may read more than it names (a function reading every column, a wildcard)."""
    own = {h.name for h in helpers}
    reads: dict[str, None] = {}
    for helper in helpers:
        exprs = [helper.rows] if helper.rows is not None else []
        if isinstance(helper.expr, pl.Expr):
            exprs.append(helper.expr)
        elif not helper.reads:
            return []
        if any(e.meta.has_multiple_outputs() for e in exprs):
            return []
        names = [*helper.reads, *(n for e in exprs for n in e.meta.root_names())]
        reads.update((n, None) for n in names if n not in own)
    return list(reads)


def repeats(frame: pl.DataFrame, columns: Sequence[str]) -> bool:
    """Whether the batch's distinct inputs are few enough to be worth computing apart: at
    most a third of its rows, as estimated (Chao1) from ``SAMPLE`` evenly spaced rows: the
    values seen, plus ``f1**2 / (2 f2)`` for those not seen (``f1`` values seen once, ``f2``
    twice). Only columns whose equal values are equal inputs (no floats: ``-0.0 == 0.0``)."""
    height = frame.height
    if height < 64 or not set(columns).issubset(frame.columns):
        return False
    inputs = [frame.get_column(c) for c in columns]
    if not all(column.dtype in EXACT for column in inputs):
        return False
    # Series operations: a query on the frame would cost more than the look itself.
    sample = pl.DataFrame([column.gather_every(max(1, height // SAMPLE)) for column in inputs])
    _, counts = np.unique(sample.hash_rows().to_numpy(), return_counts=True)
    seen = len(counts)
    if sample.height == height:
        return seen * 3 <= height
    once, twice = int((counts == 1).sum()), int((counts == 2).sum())
    estimate = seen + once * (once - 1) / (2 * (twice + 1))
    return estimate * 3 <= height


def by_distinct(
    frame: pl.DataFrame,
    columns: Sequence[str],
    compute: Callable[[pl.DataFrame], pl.DataFrame],
    kept: Sequence[str],
) -> list[pl.Series] | None:
    """The columns ``kept`` of those ``compute`` adds to a frame of the distinct values of
    ``columns``, one value per row of ``frame`` (the one computed for its inputs); None if
    two different inputs share a hash (then nothing is computed).

    Rows are matched by a 64-bit hash of their inputs (a join on strings costs several
    times more), then each row's input is compared with its distinct one's: a collision
    cannot give a row another input's columns."""
    inputs = frame.select(columns)
    hashes = inputs.hash_rows()
    first = hashes.arg_unique()
    distinct = inputs.gather(first)
    table = pl.DataFrame(
        {HASH: hashes.gather(first), INDEX: pl.int_range(first.len(), dtype=pl.UInt32, eager=True)}
    )
    index = (
        hashes.to_frame(HASH)
        .join(table, on=HASH, how="left", maintain_order="left")
        .get_column(INDEX)
    )
    for name in columns:
        if not distinct.get_column(name).gather(index).eq_missing(inputs.get_column(name)).all():
            return None
    computed = compute(distinct)
    return [computed.get_column(name).gather(index) for name in kept]
