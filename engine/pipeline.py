"""The one path for data: validate a RawBatch and store it with its lineage.

``process_batch`` is what a file run and a Kafka micro-batch both call; ``ingest_file`` wraps
it for files: idempotency, one DuckDB transaction per run, progress and the run's figures.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
from pydantic import BaseModel

from engine.batch import KAFKA_COLUMNS, LINE, RAW, ROW, RawBatch
from engine.prefetch import prefetch
from engine.priority import yield_to_current_thread
from engine.sources import SNIFF_BYTES, detect_format, open_source
from engine.sources.inputs import Input, full_hash, open_input, quick_fingerprint
from engine.store import ddl
from engine.store.rules import rule_id_sql, rule_ids
from engine.store.runs import (
    RunCounts,
    RunStart,
    completed_candidates,
    fail_run,
    finish_run,
    forget_run,
    record_progress,
    start_run,
)
from engine.store.store import Store, write_failure
from engine.store.uniqueness import split_duplicates
from engine.validation.compiler import CompiledSchema, compile_schema, fingerprint
from engine.validation.error_list import RULE_IDS, RuleText, count_violations, row_lists
from engine.validation.validate import BatchValidator

MiB = 1 << 20


@dataclass(frozen=True)
class RunOptions:
    """How to run: everything explicit, nothing read from the environment."""

    fmt: str | None = None
    force: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)
    block_size: int = 16 * MiB  # about 300,000 CSV rows per batch
    max_record_bytes: int = 16 * MiB
    # The process does nothing but this run: other threads yield to the storing one
    # (engine.priority). The CLI sets it; an API server must not.
    storing_first: bool = False
    # What the run calls its source (``ingestion_runs.source_path``, error messages):
    # by default the file's absolute path; an upload is named by its client's file name.
    source_name: str | None = None


@dataclass
class Tally:
    """Running totals for a run or a consumer session."""

    rows: int = 0
    valid: int = 0
    invalid: int = 0
    python_rows: int = 0
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.rows += other.rows
        self.valid += other.valid
        self.invalid += other.invalid
        self.python_rows += other.python_rows
        self.errors.update(other.errors)

    def counts(self, blank_lines: int = 0) -> RunCounts:
        return RunCounts(self.rows, self.valid, self.invalid, self.python_rows, blank_lines)


@dataclass(frozen=True)
class Progress:
    bytes_read: int
    total_bytes: int | None  # None for a stream
    tally: Tally


@dataclass(frozen=True)
class RunSummary:
    run_id: int | None
    path: str
    status: Literal["completed", "skipped"]
    tally: Tally
    duration_s: float
    message: str = ""
    previous_run: int | None = None

    @property
    def rows_per_s(self) -> float:
        return self.tally.rows / self.duration_s if self.duration_s > 0 else 0.0

    def top_errors(self, limit: int = 10) -> list[tuple[str, str, int]]:
        return [(loc, kind, n) for (loc, kind), n in self.tally.errors.most_common(limit)]


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Validated:
    """A batch ready to store: frames shaped like their tables (all but ``run_id``), and its
    figures. Built on the validating thread, so the storing thread only appends."""

    lineage: pl.DataFrame  # row_number, line_delta, raw
    kafka: pl.DataFrame | None  # row_number and the message coordinates, for Kafka batches
    valid: pl.DataFrame  # row_number, then the model's fields
    invalid: pl.DataFrame  # row_number, rule_ids (codes of ``rules``), inputs[, given]
    tally: Tally
    schema: CompiledSchema
    rules: tuple[RuleText, ...]


def validate_batch(validator: BatchValidator, batch: RawBatch, now: datetime) -> Validated:
    """Validate a batch and shape it for storing."""
    result = validator.validate(batch, now)
    frame = batch.frame
    row_number = pl.col(ROW).alias("row_number")
    lineage = frame.select(
        row_number, (pl.col(LINE) - pl.col(ROW)).alias("line_delta"), pl.col(RAW).alias("raw")
    )
    coordinates = [
        pl.col(c).alias(c.removeprefix("__")) for c in KAFKA_COLUMNS if c in frame.columns
    ]
    kafka = frame.select(row_number, *coordinates) if coordinates else None
    valid = result.valid.rename({ROW: "row_number"})
    invalid = row_lists(result.violations).rename({ROW: "row_number"})
    tally = Tally(
        rows=batch.height,
        valid=valid.height,
        invalid=result.invalid_rows,
        python_rows=result.python_rows,
        errors=result.error_counts,
    )
    return Validated(lineage, kafka, valid, invalid, tally, validator.schema, result.rules)


def process_batch(
    store: Store, run_id: int, batch: RawBatch, validator: BatchValidator, now: datetime
) -> Tally:
    """The one data path: validate a batch, then store it with its lineage."""
    return store_batch(store, run_id, validate_batch(validator, batch, now))


def store_batch(store: Store, run_id: int, validated: Validated) -> Tally:
    """Append a validated batch's raw rows, valid rows and invalid rows (with ``run_id``)."""
    schema, valid, invalid, tally = (
        validated.schema,
        validated.valid,
        validated.invalid,
        validated.tally,
    )
    if schema.unique:
        store.flush_held(schema.table)  # the check reads the table: all earlier rows in it
        valid, duplicates = split_duplicates(
            store, schema.table, schema.unique, schema.unique_loc, run_id, valid
        )
        if duplicates.height:
            rows = row_lists(duplicates, "row_number")
            invalid = pl.concat([invalid, rows], how="diagonal_relaxed").sort("row_number")
            tally = Tally(
                tally.rows,
                valid.height,
                tally.invalid + duplicates.height,
                tally.python_rows,
                tally.errors + count_violations(duplicates, ()),
            )
    store.append(ddl.SOURCE_ROWS, validated.lineage, run_id=run_id)
    if validated.kafka is not None:
        store.append(ddl.KAFKA_LINEAGE, validated.kafka, run_id=run_id)
    store.append(schema.table, valid, run_id=run_id)
    if invalid.height:
        ids = rule_ids(store, schema.fingerprint, validated.rules)
        store.append(ddl.INVALID_ROWS, invalid, run_id=run_id, replace={RULE_IDS: rule_id_sql(ids)})
    return tally


def prepare_schema(
    store: Store, model: type[BaseModel], *, typed: bool, context: Mapping[str, Any]
) -> CompiledSchema:
    schema = compile_schema(model, typed=typed, context=context)
    store.ensure_data_table(schema)
    return schema


def ingest_file(
    store: Store,
    source: Path | Input,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Ingest one file or stream as one atomic run (or skip it if already ingested).

    The input is read exactly once. Whether it was already ingested (same content, same
    schema) is decided from the bytes read, when the run commits: then the run is rolled back
    and reported skipped. A regular file is also checked before it is read, so that one
    ingested before is skipped without reading it through. The run's duration (stored, and in
    the returned summary) counts from this call to the commit of its rows: hashing, compiling
    the schema and the commit included.
    """
    started = datetime.now(UTC)
    if isinstance(source, Path):
        with open_input(source, name=options.source_name) as opened:
            return _ingest(store, opened, model, options, progress, started)
    return _ingest(store, source, model, options, progress, started)


class _SameContent(Exception):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id


def _previous_run(
    store: Store, quick: str, size: int, schema_id: str, digest: Callable[[], str]
) -> int | None:
    """The completed run of this content and schema, if any (``digest`` asked only if needed)."""
    candidates = completed_candidates(store, quick, size, schema_id)
    if not candidates:
        return None
    content = digest()
    return next((run_id for run_id, found in candidates if found == content), None)


def _skipped(source: Input, previous: int, started: datetime) -> RunSummary:
    return RunSummary(
        None,
        source.name,
        "skipped",
        Tally(),
        (datetime.now(UTC) - started).total_seconds(),
        f"already ingested as run {previous} with the same schema; use --force to ingest again",
        previous_run=previous,
    )


def _ingest(
    store: Store,
    source: Input,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None,
    started: datetime,
) -> RunSummary:
    head = source.head(SNIFF_BYTES) if options.fmt is None else None
    fmt = detect_format(source.name, options.fmt, head)
    schema_id = fingerprint(model, options.context)
    path = source.path
    if not options.force and path is not None:
        previous = _previous_run(
            store,
            quick_fingerprint(path),
            path.stat().st_size,
            schema_id,
            lambda: full_hash(path),
        )
        if previous is not None:
            return _skipped(source, previous, started)
    with store.writing():
        schema = prepare_schema(store, model, typed=fmt != "csv", context=options.context)
        run_id, started = start_run(
            store,
            RunStart(
                "file", source.recorded_as, fmt, schema.name, schema_id, schema.table, None, None
            ),
            started=started,
        )
    rows = open_source(
        source,
        fmt,
        keys=schema.input_keys,
        want_all_keys=schema.extra == "forbid",
        block_size=options.block_size,
        max_record_bytes=options.max_record_bytes,
    )
    tally = Tally()

    def validated() -> Iterator[tuple[Validated, int]]:
        validator: BatchValidator | None = None
        for batch in rows.batches():
            if validator is None:
                validator = BatchValidator(schema, rows.keys)
            yield validate_batch(validator, batch, datetime.now(UTC)), rows.reader.bytes_read

    try:
        with store.bulk_load(), store.transaction():
            for number, (item, bytes_read) in enumerate(prefetch(validated(), depth=1)):
                if options.storing_first and number == 0:  # the other threads exist now
                    yield_to_current_thread()
                tally.add(store_batch(store, run_id, item))
                if progress is not None:
                    progress(Progress(bytes_read, source.size, tally))
            read = rows.reader.fingerprint()
            if not options.force:
                previous = _previous_run(
                    store, read.quick, read.size, schema_id, lambda: read.digest
                )
                if previous is not None:
                    raise _SameContent(previous)
            duration = record_progress(
                store,
                run_id,
                tally.counts(rows.blank_lines),
                started,
                status="completed",
                content_hash=read.digest,
                quick_hash=read.quick,
                file_size=read.size,
            )
    except _SameContent as same:
        with store.writing():
            forget_run(store, run_id)
        return _skipped(source, same.run_id, started)
    except BaseException as exc:
        _record_failure(store, run_id, started, exc)
        if isinstance(exc, duckdb.Error):
            raise write_failure(store.path, exc) from exc
        raise
    # The rows are committed: should this small write fail, the duration written with them
    # stays, and is the one returned.
    with contextlib.suppress(duckdb.Error):
        duration = finish_run(store, run_id, started)
    return RunSummary(run_id, source.name, "completed", tally, duration)


def _record_failure(store: Store, run_id: int, started: datetime, exc: BaseException) -> None:
    """Record the run failed, if the database still takes writes; if not, it stays 'running'
    and the next writer to open the file marks it failed (``mark_interrupted``)."""
    with contextlib.suppress(duckdb.Error):
        fail_run(store, run_id, started, f"{type(exc).__name__}: {exc}")
