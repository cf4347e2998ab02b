"""``engine.validate``: a frame (or rows) against a model, in memory, no database.

The rows take the one data path up to storing: their JSON forms are cut into batches
(``engine.sources.frames``), validated by the compiled rules (or Pydantic for the rows only
it can judge), and the result is handed back instead of being stored. So the verdicts are
those of a file run (and of ``Model.model_validate(row)``), and the errors Pydantic's.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl
from pydantic import BaseModel

from engine.columns import ERRORS as ERROR_LIST
from engine.columns import RAW, ROW
from engine.errors import ConfigError
from engine.schemas import load_schema
from engine.sources.frames import Chunk, FrameEncoder, chunks, is_frame, to_polars
from engine.validation.compiler import CompiledSchema, compile_schema
from engine.validation.error_list import ERROR_DTYPE
from engine.validation.validate import BatchValidator, ValidationResult

ROW_NUMBER = "row_number"
ERRORS = "errors"
# Batches validated at once, each on its own thread: the rules run in Polars, which releases
# the GIL, so batches overlap on the cores (a validator is shared: Kafka's workers do too).
WORKERS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Validation:
    """What ``validate`` found.

    ``valid``: the valid rows as the model types them, one column per field. ``invalid``:
    the invalid rows, ``row_number`` (1-based, in input order), the input's own columns (for
    an iterable of rows: ``raw``, each row's JSON text), then ``errors``, a list of
    ``{type, loc, msg, input}`` as Pydantic reports them (``input`` as JSON text).
    """

    valid: pl.DataFrame
    invalid: pl.DataFrame
    rows: int
    python_rows: int  # rows Pydantic itself decided
    error_counts: Counter[tuple[str, str]]  # errors per (loc, type)

    @property
    def valid_rows(self) -> int:
        return self.valid.height

    @property
    def invalid_rows(self) -> int:
        return self.invalid.height


Data = Any  # a Polars/pandas DataFrame, an Arrow table or record batch, or an iterable of dicts


def validate(
    data: Data,
    schema: type[BaseModel] | str,
    *,
    context: Mapping[str, Any] | None = None,
) -> Validation:
    """Validate ``data`` against ``schema`` (a Pydantic model, or a name ``load_schema``
    knows), as ``schema.model_validate(row, context=context)`` would, row by row."""
    model = load_schema(schema) if isinstance(schema, str) else schema
    if context is not None and not isinstance(context, Mapping):
        raise ConfigError(
            f"validate takes a context that is a mapping (a dict), not a {type(context).__name__}"
        )
    compiled, validator = _prepared(model, context or {})
    frame = to_polars(data) if is_frame(data) else None
    if frame is not None:
        for taken in (ROW_NUMBER, ERRORS):
            if taken in frame.columns:
                raise ConfigError(
                    f"the input has a column named {taken!r}, which the invalid rows use; rename it"
                )
    parts: list[ValidationResult] = []
    raws: list[pl.DataFrame] = []
    rows = 0
    for part, raw in _validated(chunks(frame if frame is not None else _rows(data)), validator):
        parts.append(part)
        raws.append(raw)
        rows += raw.height
    valid = (
        pl.concat([part.valid for part in parts]).drop(ROW)
        if parts
        else pl.DataFrame(schema={p.name: p.dtype for p in compiled.fields})
    )
    # Each batch's error lists (decoded from its violations), with the rows' JSON text.
    lists = [
        part.invalid.join(raw, on=ROW, how="left").select(
            pl.col(ROW).cast(pl.Int64).alias(ROW_NUMBER),
            pl.col(RAW).alias("raw"),
            pl.col(ERROR_LIST).alias(ERRORS),
        )
        for part, raw in zip(parts, raws, strict=True)
        if part.invalid_rows
    ]
    invalid = pl.concat(lists) if lists else _no_errors()
    counts: Counter[tuple[str, str]] = Counter()
    for part in parts:
        counts.update(part.error_counts)
    python_rows = sum(part.python_rows for part in parts)
    return Validation(valid, _with_inputs(invalid, frame), rows, python_rows, counts)


def _validated(
    pieces: Iterable[Chunk], validator: BatchValidator
) -> Iterator[tuple[ValidationResult, pl.DataFrame]]:
    """Each piece's result and its rows' JSON text (``ROW``, ``RAW``), in input order.

    A piece is turned into its JSON forms and validated on one of WORKERS threads (DuckDB
    parses the JSON, Polars runs the rules: both release the GIL), each thread with its own
    encoder (a DuckDB connection is not shared); at most WORKERS + 1 pieces are in flight."""
    encoders: list[FrameEncoder] = []
    mine = threading.local()

    def work(piece: Chunk, first_row: int) -> tuple[ValidationResult, pl.DataFrame]:
        encoder = getattr(mine, "encoder", None)
        if encoder is None:
            encoder = mine.encoder = FrameEncoder(validator.schema)
            encoders.append(encoder)  # list.append is atomic
        if isinstance(piece, pl.DataFrame):
            batch = encoder.frame_batch(piece, first_row)
        else:
            batch = encoder.rows_batch(piece, first_row)
        return validator.validate(batch, datetime.now(UTC)), batch.frame.select(ROW, RAW)

    rows = 0
    running: deque[Future[tuple[ValidationResult, pl.DataFrame]]] = deque()
    try:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="validate") as pool:
            try:
                for piece in pieces:
                    running.append(pool.submit(work, piece, rows + 1))
                    rows += piece.height if isinstance(piece, pl.DataFrame) else len(piece)
                    while len(running) > WORKERS:
                        yield running.popleft().result()
                while running:
                    yield running.popleft().result()
            finally:
                for future in running:
                    future.cancel()
    finally:
        for encoder in encoders:
            encoder.close()


def _prepared(
    model: type[BaseModel], context: Mapping[str, Any]
) -> tuple[CompiledSchema, BatchValidator]:
    """The compiled schema and its validator, kept for the next call with the same model and
    context (a validator infers some of its columns' types on first use: a second or so)."""
    try:
        # the type too: 1, 1.0 and True are equal keys but not the same context
        key = tuple(sorted((name, type(value), value) for name, value in context.items()))
        hash(key)
    except TypeError:  # a context with lists or dicts in it: compiled afresh
        return _compile(model, context)
    return _cached(model, key)


def _compile(
    model: type[BaseModel], context: Mapping[str, Any]
) -> tuple[CompiledSchema, BatchValidator]:
    compiled = compile_schema(model, typed=True, context=context)
    return compiled, BatchValidator(compiled, compiled.input_keys)


@functools.lru_cache(maxsize=32)
def _cached(
    model: type[BaseModel], context: tuple[tuple[str, type, Any], ...]
) -> tuple[CompiledSchema, BatchValidator]:
    return _compile(model, {name: value for name, _, value in context})


def _rows(data: Iterable[Any]) -> Iterable[Any]:
    if isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
        raise ConfigError(
            "validate takes a DataFrame, an Arrow table or record batch, or an iterable of "
            f"dicts, not a {type(data).__name__}"
        )
    return data


def _no_errors() -> pl.DataFrame:
    return pl.DataFrame(schema={"row_number": pl.Int64, "raw": pl.String, "errors": ERROR_DTYPE})


def _with_inputs(invalid: pl.DataFrame, frame: pl.DataFrame | None) -> pl.DataFrame:
    """The invalid rows with the input's own columns (frames) or their JSON text (rows)."""
    if frame is None:
        return invalid.select(ROW_NUMBER, "raw", ERRORS)
    numbers = invalid.get_column(ROW_NUMBER)
    inputs = frame.with_row_index(ROW_NUMBER, offset=1).filter(
        pl.col(ROW_NUMBER).is_in(numbers.cast(pl.UInt32).implode())
    )
    return inputs.with_columns(
        pl.col(ROW_NUMBER).cast(pl.Int64), invalid.get_column(ERRORS).alias(ERRORS)
    )
