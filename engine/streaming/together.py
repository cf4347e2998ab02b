"""Closed micro-batches parsed and validated together, then split back: one result each.

Parsing and validating a batch has a fixed cost (a DuckDB JSON query and some forty Polars
steps: about 15 ms) on top of its rows' (a few microseconds each); at 10,000-message
batches the fixed part is about half of it. When the parse threads fall behind, closed batches
wait in the queue: a parser then takes those waiting, up to ``TOGETHER_ROWS`` rows in all,
and parses and validates them as one frame (``engine.streaming.workers``). The result is split
back by row number, so every micro-batch keeps its own rows, offsets, figures, transaction
place and report line. A row's verdict does not depend on the rows beside it (a file is
cut into blocks anywhere too). A model's ``default_factory`` value, which a validated frame
makes once, is made once per batch here, as each batch parsed alone makes its own (under a
unique key, a value shared by batches would make one batch's rows duplicates of another's).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

import numpy as np
import polars as pl

from engine.batch import ROW, RawBatch
from engine.columns import default_column, default_unstorable_column
from engine.pipeline import shaped
from engine.sources.json import json_batch
from engine.sources.json_values import JsonValues
from engine.streaming.messages import next_offsets
from engine.streaming.workers import ClosedBatch, ParsedBatch
from engine.validation.compiler import CompiledSchema
from engine.validation.error_list import count_violations
from engine.validation.storable import made_default
from engine.validation.validate import BatchValidator, ValidationResult


def parse_together(
    reader: JsonValues, validator: BatchValidator, closed: Sequence[ClosedBatch], now: datetime
) -> list[ParsedBatch]:
    """``closed`` (consecutive batches) parsed and validated as one frame; one ParsedBatch
    per closed batch, as if each had been parsed alone (a ``default_factory``'s value made
    for each)."""
    for before, after in pairwise(closed):
        if after.first_row != before.last_row + 1:
            raise ValueError(f"batches from row {before.first_row} and {after.first_row} are apart")
    frame = pl.concat([c.frame for c in closed]) if len(closed) > 1 else closed[0].frame
    batch = json_batch(frame, reader, closed[0].first_row)
    if len(closed) > 1 and validator.schema.defaults:
        sizes = [c.frame.height for c in closed]
        batch = RawBatch(
            batch.frame.with_columns(per_batch_defaults(validator.schema, sizes)),
            batch.keys,
            batch.typed,
            batch.python_inputs,
            batch.columns,
        )
    result = validator.validate(batch, now)
    if len(closed) == 1:
        validated = shaped(validator.schema, batch.frame, result)
        return [ParsedBatch(closed[0], validated, next_offsets(batch))]
    parsed: list[ParsedBatch] = []
    start = 0
    for part in closed:
        rows = batch.frame.slice(start, part.frame.height)
        start += part.frame.height
        own = rows_between(result, part.first_row, part.last_row)
        validated = shaped(validator.schema, rows, own)
        parsed.append(ParsedBatch(part, validated, next_offsets(RawBatch(rows, (), True))))
    return parsed


def per_batch_defaults(schema: CompiledSchema, sizes: Sequence[int]) -> list[pl.Series]:
    """Each ``default_factory``'s value made once per batch of ``sizes`` rows, and whether the
    column can hold it, as columns of the batches' rows (what ``BatchValidator`` makes of one
    frame as literals)."""
    dtypes = {p.name: p.dtype for p in schema.fields}
    owners = pl.Series(np.repeat(np.arange(len(sizes), dtype=np.uint32), sizes))  # row's batch
    columns = []
    for name, factory in schema.defaults.items():
        made = [made_default(factory, dtypes[name]) for _ in sizes]
        columns += [
            pl.Series(default_column(name), [v for v, _ in made], dtype=dtypes[name]).gather(
                owners
            ),
            pl.Series(default_unstorable_column(name), [u for _, u in made]).gather(owners),
        ]
    return columns


def rows_between(result: ValidationResult, first: int, last: int) -> ValidationResult:
    """The part of ``result`` about rows ``first`` to ``last``: their valid rows, their
    violations and the figures counted from them."""
    within = pl.col(ROW).is_between(first, last)
    valid = result.valid.filter(within)
    violations = result.violations.filter(within)
    python = result.python_row_numbers
    return ValidationResult(
        valid,
        violations,
        # Every row is valid or invalid, never both (VALID excludes the rows Pydantic
        # decides, which are valid only once it accepted them).
        last - first + 1 - valid.height,
        python.filter(python.is_between(first, last)),
        count_violations(violations, result.rules),
        result.rules,
    )
