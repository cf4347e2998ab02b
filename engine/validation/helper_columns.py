"""Helper columns: intermediate values computed once, before the rules that read them.

Helpers are run in levels (a helper one level after the latest helper it reads), so that
independent ones are computed together; a sparse helper (``Helper.rows``) only on the rows
that need it, null elsewhere: how an expensive parser runs on just the values the fast path
could not take.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from engine.columns import helper_mask_column
from engine.validation.rules import FieldProgram, Helper


class HelperColumns:
    """The helpers of a compiled schema's fields, scheduled once, added to each batch."""

    def __init__(self, fields: Sequence[FieldProgram]) -> None:
        self.fields = fields
        self.dtypes: dict[str, pl.DataType] = {}  # a sparse helper's type, found on first use
        self.schedule = self._schedule()

    def _schedule(self) -> list[list[Helper]]:
        """Helpers in levels: a helper runs one level after the latest helper it reads (by
        its expression's column names), so independent ones run together, in parallel. A
        function helper's inputs are unknown: it follows every earlier helper of its field."""
        level: dict[str, int] = {}
        for program in self.fields:
            previous = -1
            for helper in program.helpers:
                if isinstance(helper.expr, pl.Expr):
                    exprs = [helper.expr, *([helper.rows] if helper.rows is not None else [])]
                    names = {n for e in exprs for n in e.meta.root_names()}
                    reads = [level[n] for n in names if n in level]
                else:
                    reads = [previous]
                level[helper.name] = max(reads, default=-1) + 1
                previous = max(previous, level[helper.name])
        helpers = [h for p in self.fields for h in p.helpers]
        depth = max(level.values(), default=-1) + 1
        return [[h for h in helpers if level[h.name] == i] for i in range(depth)]

    def add(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Intermediate columns, level by level (see ``_schedule``); sparse ones only on the
        rows that need them. Each level is one query for its expression helpers and the
        row masks of its sparse ones, then one step adding what its sparse ones computed."""
        for level, helpers in enumerate(self.schedule):
            dense = [
                h.expr.alias(h.name)
                for h in helpers
                if h.rows is None and isinstance(h.expr, pl.Expr)
            ]
            staged = [h for h in helpers if h.rows is not None or not isinstance(h.expr, pl.Expr)]
            masks: dict[int, pl.Expr] = {}  # one column per distinct mask expression
            for helper in staged:
                if helper.rows is not None and id(helper.rows) not in masks:
                    name = helper_mask_column(level, len(masks))
                    masks[id(helper.rows)] = helper.rows.fill_null(False).alias(name)
            if dense or masks:
                frame = frame.with_columns([*dense, *masks.values()])
            if not staged:
                continue
            names = {key: mask.meta.output_name() for key, mask in masks.items()}
            rows = {key: frame.get_column(name) for key, name in names.items()}
            frame = frame.drop(list(names.values()))
            frame = frame.with_columns(
                [
                    self._staged(frame, h, rows[id(h.rows)] if h.rows is not None else None)
                    for h in staged
                ]
            )
        return frame

    def _staged(
        self, frame: pl.DataFrame, helper: Helper, mask: pl.Series | None
    ) -> pl.Series | pl.Expr:
        """A function helper, or a helper computed on the rows of ``mask`` only (null elsewhere)."""
        compute = (
            helper.expr if callable(helper.expr) and not isinstance(helper.expr, pl.Expr) else None
        )

        def evaluate(part: pl.DataFrame) -> pl.Series:
            if compute is not None:
                return compute(part.select(helper.reads) if helper.reads else part)
            assert isinstance(helper.expr, pl.Expr)
            return part.lazy().select(helper.expr).collect().to_series()

        if mask is None:
            return evaluate(frame).alias(helper.name)
        if helper.name not in self.dtypes:
            self.dtypes[helper.name] = evaluate(frame.head(0)).dtype
        dtype = self.dtypes[helper.name]
        count = mask.sum()
        if count == 0:
            return pl.lit(None, dtype).alias(helper.name)
        if count == frame.height:
            return evaluate(frame).alias(helper.name)
        if compute is None:  # only the columns the expression reads are filtered
            assert isinstance(helper.expr, pl.Expr)
            values = frame.lazy().filter(pl.lit(mask)).select(helper.expr).collect().to_series()
        else:
            values = evaluate((frame.select(helper.reads) if helper.reads else frame).filter(mask))
        spread = _spread(values, mask)
        return (spread if spread.dtype == dtype else spread.cast(dtype)).alias(helper.name)


def _spread(values: pl.Series, mask: pl.Series) -> pl.Series:
    """``values`` (one per true row of ``mask``) in a column as tall as ``mask``, null elsewhere."""
    index = pl.select(pl.when(mask).then(mask.cum_sum() - 1)).to_series()
    return values.gather(index)
