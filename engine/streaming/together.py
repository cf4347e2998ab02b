"""Closed micro-batches parsed and validated together, then split back: one result each.

Parsing and validating a batch has a fixed cost (a DuckDB JSON query and some forty Polars
steps: about 15 ms) on top of its rows' (a few microseconds each); at 10,000-message
batches the fixed part is about half of it. When the parse threads fall behind, closed batches
wait in the queue: a parser then takes those waiting, up to ``TOGETHER_ROWS`` rows in all,
and parses and validates them as one frame (``engine.streaming.workers``). The result is split
back by row number, so every micro-batch keeps its own rows, offsets, figures, transaction
place and report line. A row's verdict does not depend on the rows beside it (a file is
cut into blocks anywhere too); only a model's ``default_factory`` value, made once per
validated frame, is then shared by the batches validated together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

import polars as pl

from engine.batch import ROW, RawBatch
from engine.pipeline import shaped
from engine.sources.json import json_batch
from engine.sources.json_values import JsonValues
from engine.streaming.messages import next_offsets
from engine.streaming.workers import ClosedBatch, ParsedBatch
from engine.validation.error_list import count_violations
from engine.validation.validate import BatchValidator, ValidationResult


def parse_together(
    reader: JsonValues, validator: BatchValidator, closed: Sequence[ClosedBatch], now: datetime
) -> list[ParsedBatch]:
    """``closed`` (consecutive batches) parsed and validated as one frame; one ParsedBatch
    per closed batch, as if each had been parsed alone. A model with a ``default_factory``
    has its batches parsed one by one: its value is made once per frame validated, and a
    batch's own value can decide its rows (a unique key)."""
    if len(closed) > 1 and validator.schema.defaults:
        return [p for one in closed for p in parse_together(reader, validator, [one], now)]
    for before, after in pairwise(closed):
        if after.first_row != before.last_row + 1:
            raise ValueError(f"batches from row {before.first_row} and {after.first_row} are apart")
    frame = pl.concat([c.frame for c in closed]) if len(closed) > 1 else closed[0].frame
    batch = json_batch(frame, reader, closed[0].first_row)
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
