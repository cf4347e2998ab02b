"""Helper columns: intermediate values computed once, before the rules that read them.

Helpers are run in levels (a helper one level after the latest helper it reads), so that
independent ones are computed together; a sparse helper (``Helper.rows``) only on the rows
that need it, null elsewhere: how an expensive parser runs on just the values the fast path
could not take.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from polars._typing import PolarsDataType

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
        rows that need them."""
        masks: dict[int, pl.Series] = {}
        for helpers in self.schedule:
            dense = [
                h.expr.alias(h.name)
                for h in helpers
                if h.rows is None and isinstance(h.expr, pl.Expr)
            ]
            if dense:
                frame = frame.with_columns(dense)
            for helper in helpers:
                if helper.rows is not None or not isinstance(helper.expr, pl.Expr):
                    frame = frame.with_columns(self._sparse(frame, helper, masks))
        return frame

    def _sparse(
        self, frame: pl.DataFrame, helper: Helper, masks: dict[int, pl.Series]
    ) -> pl.Series | pl.Expr:
        """A helper computed on the rows that need it (or all rows), null elsewhere."""
        compute = (
            helper.expr if callable(helper.expr) and not isinstance(helper.expr, pl.Expr) else None
        )

        def evaluate(part: pl.DataFrame) -> pl.Series:
            if compute is not None:
                return compute(part).alias(helper.name)
            assert isinstance(helper.expr, pl.Expr)
            return part.lazy().select(helper.expr.alias(helper.name)).collect().to_series()

        if helper.rows is None:
            return evaluate(frame)
        if id(helper.rows) not in masks:
            masks[id(helper.rows)] = frame.select(helper.rows.fill_null(False)).to_series()
        mask = masks[id(helper.rows)]
        if helper.name not in self.dtypes:
            self.dtypes[helper.name] = evaluate(frame.head(0)).dtype
        dtype = self.dtypes[helper.name]
        if not mask.any():
            return pl.lit(None, dtype).alias(helper.name)
        if compute is None:  # only the columns the expression reads are filtered
            assert isinstance(helper.expr, pl.Expr)
            part = frame.lazy().filter(pl.lit(mask)).select(helper.expr.alias(helper.name))
            values = part.collect().to_series()
        else:
            values = evaluate((frame.select(helper.reads) if helper.reads else frame).filter(mask))
        return _spread(values, mask, dtype).alias(helper.name)


def _spread(values: pl.Series, mask: pl.Series, dtype: PolarsDataType) -> pl.Series:
    """``values`` (one per true row of ``mask``) in a column as tall as ``mask``, null elsewhere."""
    if isinstance(dtype, pl.Struct):  # scatter has no struct support: one field at a time
        fields = [
            _spread(values.struct.field(f.name), mask, f.dtype).alias(f.name) for f in dtype.fields
        ]
        return pl.select(pl.when(mask).then(pl.struct(fields))).to_series()
    column = pl.repeat(None, len(mask), dtype=dtype, eager=True)
    return column.scatter(mask.arg_true(), values)
