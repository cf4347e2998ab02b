"""Validating a column of values as one model field ``x``, in-process, for grammar checks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine.batch import RawBatch
from engine.columns import ERRORS, LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.sources.json import json_batch
from engine.sources.json_values import JsonValues
from engine.validation.compiler import compile_schema
from engine.validation.validate import BatchValidator


def engine_outcomes(
    model: type[BaseModel], values: list[Any], *, typed: bool
) -> list[tuple[Any, ...]]:
    """("ok", stored value) or ("error", type, msg) of the first error, per value: as a CSV
    cell (``typed=False``, values are text) or as the JSON value of key ``x``."""
    schema = compile_schema(model, typed=typed)
    n = len(values)
    lineage = {
        LINE: pl.int_range(2, n + 2, eager=True),
        MALFORMED: pl.Series([None] * n, dtype=pl.String),
        MALFORMED_MSG: pl.Series([None] * n, dtype=pl.String),
    }
    if typed:
        raws = [json.dumps({"x": v}, ensure_ascii=False) for v in values]
        frame = pl.DataFrame({**lineage, RAW: raws})
        values_reader = JsonValues(("x",), want_all_keys=False)
        batch = json_batch(frame, values_reader, 1)
        values_reader.close()
    else:
        frame = pl.DataFrame(
            {ROW: pl.int_range(1, n + 1, eager=True), **lineage, RAW: values, "x": values}
        )
        batch = RawBatch(frame, ("x",), typed=False)
    result = BatchValidator(schema, ("x",)).validate(batch, datetime.now(UTC))
    got: dict[int, tuple[Any, ...]] = {}
    for row, value in result.valid.select(ROW, "x").iter_rows():
        got[row] = ("ok", value)
    for row, errors in result.invalid.select(ROW, ERRORS).iter_rows():
        got[row] = ("error", errors[0]["type"], errors[0]["msg"])
    return [got[i] for i in range(1, n + 1)]
