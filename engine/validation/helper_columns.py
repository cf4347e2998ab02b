"""Helper columns: intermediate values computed once, before the rules that read them.

Helpers are run in levels (a helper one level after the latest helper it reads), so that
independent ones are computed together; a sparse helper (``Helper.rows``) only on the rows
that need it, null elsewhere: how an expensive parser runs on just the values the fast path
could not take.

A field whose helpers read nothing but its own input columns (and each other) has them
computed once per distinct input when the batch repeats its values (exports do: codes,
flags, dates, small numbers), then gathered back to every row (``engine.validation.distinct``).
A helper is a function of its row's inputs (batches split rows arbitrarily), so this gives
the same columns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import polars as pl

from engine.columns import helper_mask_column
from engine.validation.distinct import by_distinct, input_columns, repeats
from engine.validation.rules import FieldProgram, Helper

LOOK_EVERY = 4  # batches between looks at a field whose inputs did not repeat


class HelperColumns:
    """The helpers of a compiled schema's fields, scheduled once, added to each batch."""

    def __init__(
        self,
        fields: Sequence[FieldProgram],
        *,
        distinct: bool = True,
        read: Collection[str] | None = None,
    ) -> None:
        """``read``: the columns read after the helpers (by the rules, values and errors);
        a field's helpers computed by distinct input are gathered back only if read there
        or by another field's helpers (all of them when not given)."""
        self.fields = fields
        self.dtypes: dict[str, pl.DataType] = {}  # a sparse helper's type, found on first use
        self.unlooked: dict[str, int] = {}  # batches before a field's inputs are looked at
        self.schedule = self._schedule()
        # Per field that may be computed by distinct input: its input columns, its helpers
        # on their own (run on the distinct inputs), the helpers gathered back, and all.
        self.by_input: dict[str, tuple[list[str], HelperColumns, list[str], set[str]]] = {}
        helpers = {h.name for p in fields for h in p.helpers}
        for program in fields if distinct else ():
            columns = input_columns(program.helpers)
            if not columns or helpers.intersection(columns) or not _costly(program.helpers):
                continue
            names = [h.name for h in program.helpers]
            others = [h for p in fields if p is not program for h in p.helpers]
            by_others = input_columns(others)
            # Another field's helper that may read anything may read these too.
            everything = read is None or (others and not by_others)
            wanted = set(by_others) | set(names if everything or read is None else read)
            self.by_input[program.name] = (
                columns,
                HelperColumns([program], distinct=False),
                [n for n in names if n in wanted],
                set(names),
            )

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
        """Intermediate columns: those of fields whose inputs repeat in this batch by
        distinct input, the others level by level (``_levels``)."""
        skip: set[str] = set()
        gathered: list[pl.Series] = []
        for field, (columns, alone, kept, names) in self.by_input.items():
            # A field whose inputs did not repeat is looked at again only every few batches
            # (what a batch holds changes slowly; the look costs a little on each).
            if self.unlooked.get(field, 0) > 0:
                self.unlooked[field] -= 1
                continue
            if not repeats(frame, columns):
                self.unlooked[field] = LOOK_EVERY - 1
                continue
            computed = by_distinct(frame, columns, alone.add, kept)
            if computed is not None:
                gathered += computed
                skip |= names
        if gathered:
            frame = frame.with_columns(gathered)
        return self._levels(frame, skip)

    def _levels(self, frame: pl.DataFrame, skip: set[str]) -> pl.DataFrame:
        """Intermediate columns but ``skip``, level by level (see ``_schedule``); sparse ones
        only on the rows that need them. Each level is one query for its expression helpers
        and the row masks of its sparse ones, then one step adding what its sparse ones
        computed."""
        for level, scheduled in enumerate(self.schedule):
            helpers = [h for h in scheduled if h.name not in skip]
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


def _costly(helpers: Sequence[Helper]) -> bool:
    """Whether a field's helpers cost more per row than matching rows to distinct inputs: a
    staged step (a parser in several queries, Pydantic per distinct value) does; a few
    expressions Polars runs in one pass do not."""
    return any(h.rows is not None or not isinstance(h.expr, pl.Expr) for h in helpers)


def _spread(values: pl.Series, mask: pl.Series) -> pl.Series:
    """``values`` (one per true row of ``mask``) in a column as tall as ``mask``, null elsewhere."""
    index = pl.select(pl.when(mask).then(mask.cum_sum() - 1)).to_series()
    return values.gather(index)
