"""The one path for data: validate a RawBatch and store it with its lineage.

``validate_batch`` then ``store_batch`` is what every batch goes through: a file run's, a
Kafka micro-batch's (``engine.streaming`` calls them on two threads), rows in memory
(``engine.ingest``) and ``engine.validate`` (which stops before storing). ``ingest_file``
and ``ingest_rows`` wrap them for a run: idempotency, one DuckDB transaction per run,
progress, the quality gate and the run's figures.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel

from engine import interrupts
from engine.batch import KAFKA_COLUMNS, LINE, RAW, ROW, RawBatch
from engine.block_budget import block_for
from engine.errors import EngineError, neutral_spelling
from engine.gate import QualityGate
from engine.outcomes import Progress, ProgressCallback, RunSummary, Tally
from engine.prefetch import prefetch
from engine.priority import yield_to_current_thread
from engine.sources import Source
from engine.sources.dialect import CsvDialect
from engine.sources.feeds import ReadOptions, prepare
from engine.sources.frames import RecordsSource, chunks
from engine.sources.inputs import Input, full_hash, open_input, quick_fingerprint
from engine.store import ddl
from engine.store.disk_full import write_failure
from engine.store.modes import (
    LoadMode,
    check_mode,
    latest_completed,
    merge_batch,
    record_load,
    replace_table,
)
from engine.store.rules import rule_id_sql, rule_ids
from engine.store.runs import (
    RunStart,
    completed_candidates,
    fail_run,
    finish_run,
    forget_run,
    record_progress,
    start_run,
)
from engine.store.store import Store
from engine.store.uniqueness import split_duplicates
from engine.store.versions import fit_table
from engine.validation.compiler import CompiledSchema, compile_schema, fingerprint
from engine.validation.error_list import RULE_IDS, RuleText, count_violations, row_lists
from engine.validation.validate import BatchValidator, ValidationResult

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
    dialect: CsvDialect = field(default_factory=CsvDialect)
    gate: QualityGate | None = None
    # How valid rows meet the table's (``engine.store.modes``), and whether the model's rows
    # go to a new table (``engine.store.versions``).
    mode: LoadMode = "append"
    new_table: bool = False

    @property
    def read(self) -> ReadOptions:
        return ReadOptions(self.fmt, self.dialect, self.block_size, self.max_record_bytes)


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
    python_rows: pl.Series  # row_number of the rows Pydantic decided itself


def validate_batch(validator: BatchValidator, batch: RawBatch, now: datetime) -> Validated:
    """Validate a batch and shape it for storing."""
    return shaped(validator.schema, batch.frame, validator.validate(batch, now))


def shaped(schema: CompiledSchema, frame: pl.DataFrame, result: ValidationResult) -> Validated:
    """The validation ``result`` of the rows of ``frame``, shaped for storing."""
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
        rows=frame.height,
        valid=valid.height,
        invalid=result.invalid_rows,
        python_rows=result.python_rows,
        errors=result.error_counts,
    )
    return Validated(
        lineage, kafka, valid, invalid, tally, schema, result.rules, result.python_row_numbers
    )


def store_batch(
    store: Store, run_id: int, validated: Validated, mode: LoadMode = "append"
) -> Tally:
    """Append a validated batch's raw rows, valid rows and invalid rows (with ``run_id``);
    in ``merge`` mode the valid rows replace the stored rows of their keys."""
    schema, valid, invalid, tally = (
        validated.schema,
        validated.valid,
        validated.invalid,
        validated.tally,
    )
    if mode == "merge":
        valid = merge_batch(store, schema.table, schema.unique, run_id, valid)
    elif schema.unique:
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
    store: Store,
    model: type[BaseModel],
    *,
    typed: bool,
    context: Mapping[str, Any],
    new_table: bool = False,
) -> CompiledSchema:
    """The compiled schema, aimed at the table its rows go to, made to fit the model (schema
    evolution: ``engine.store.versions``); ``new_table`` starts a new table for it."""
    schema = compile_schema(model, typed=typed, context=context)
    return fit_table(store, schema, new_table=new_table)


@dataclass(frozen=True)
class _Plan:
    """What a run reads, known before it starts: names, format, size, how to read it."""

    name: str
    recorded_as: str
    fmt: str
    typed: bool
    size: int | None
    precheck: Path | None  # a plain file whose bytes can be fingerprinted before reading
    open: Callable[[CompiledSchema], Source]


def ingest_file(
    store: Store,
    source: Path | Input,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None = None,
) -> RunSummary:
    """Ingest one file or stream as one atomic run (or skip it if already ingested).

    The input is read exactly once (a compressed one decompressed on the way). Whether it
    was already ingested (same content, same schema) is decided from the bytes read, when
    the run commits: then the run is rolled back and reported skipped. A plain regular file
    is also checked before it is read, so that one ingested before is skipped without
    reading it through. The run's duration (stored, and in the returned summary) counts from
    this call to the commit of its rows: hashing, compiling the schema and the commit
    included.
    """
    started = datetime.now(UTC)
    if isinstance(source, Path):
        with open_input(source, name=options.source_name) as opened:
            return _ingest_input(store, opened, model, options, progress, started)
    return _ingest_input(store, source, model, options, progress, started)


def _ingest_input(
    store: Store,
    source: Input,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None,
    started: datetime,
) -> RunSummary:
    feed = prepare(source, options.read)
    plan = _Plan(
        source.name,
        source.recorded_as,
        feed.fmt,
        feed.typed,
        source.size if feed.codec is None else None,
        feed.precheck,
        lambda schema: feed.open(schema, options.read),
    )
    try:
        return _ingest(store, plan, model, options, progress, started)
    finally:
        feed.input.close()


def ingest_rows(
    store: Store,
    data: Any,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None = None,
    *,
    name: str,
    fmt: str,
) -> RunSummary:
    """Ingest rows held in memory (a frame, an iterable of dicts) as one atomic run: each
    row's lineage is its JSON form, and the run's content those forms as NDJSON text."""
    started = datetime.now(UTC)
    plan = _Plan(
        name,
        name,
        fmt,
        True,
        None,
        None,
        lambda schema: RecordsSource(chunks(data), schema, fmt),
    )
    return _ingest(store, plan, model, options, progress, started)


class _SameContent(Exception):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id


def _previous_run(
    store: Store,
    quick: str,
    size: int,
    schema_id: str,
    fmt: str,
    digest: Callable[[], str],
    mode: LoadMode = "append",
) -> int | None:
    """The completed run of this content, schema and format, if any (``digest`` asked only if
    needed). In ``replace`` and ``merge`` modes, only the latest run into its table counts:
    after later runs, loading the same content again changes the table."""
    candidates = completed_candidates(store, quick, size, schema_id, fmt)
    if mode != "append":
        latest = latest_completed(store, [run_id for run_id, _ in candidates])
        candidates = [c for c in candidates if c[0] in latest]
    if not candidates:
        return None
    content = digest()
    return next((run_id for run_id, found in candidates if found == content), None)


def _skipped(plan: _Plan, previous: int, started: datetime) -> RunSummary:
    return RunSummary(
        None,
        plan.name,
        "skipped",
        Tally(),
        (datetime.now(UTC) - started).total_seconds(),
        f"already ingested as run {previous} with the same schema",
        previous_run=previous,
        format=plan.fmt,
    )


def _ingest(
    store: Store,
    plan: _Plan,
    model: type[BaseModel],
    options: RunOptions,
    progress: ProgressCallback | None,
    started: datetime,
) -> RunSummary:
    fmt = plan.fmt
    schema_id = fingerprint(model, options.context)
    path = plan.precheck
    if not options.force and path is not None:
        previous = _previous_run(
            store,
            quick_fingerprint(path),
            path.stat().st_size,
            schema_id,
            fmt,
            lambda: full_hash(path),
            options.mode,
        )
        if previous is not None:
            return _skipped(plan, previous, started)
    with store.writing():
        schema = prepare_schema(
            store, model, typed=plan.typed, context=options.context, new_table=options.new_table
        )
        mode = check_mode(options.mode, schema.unique, schema.name)
        run_id, started = start_run(
            store,
            RunStart(
                "file", plan.recorded_as, fmt, schema.name, schema_id, schema.table, None, None
            ),
            started=started,
        )
    tally = Tally()
    gate: str | None = None

    def validated() -> Iterator[tuple[Validated, int]]:
        # Three stages on their own threads, a batch apart: reading and splitting, validating,
        # storing (this thread). With two, the reading thread's Python and NumPy steps left
        # the storing one waiting; 5M rows: 3.62 -> 3.45 s (medians of 5 interleaved rounds;
        # one more batch held, peak RSS 720 -> 780 MB).
        validator: BatchValidator | None = None
        rows.reader.limit_blocks(options.block_size)  # the ramp waits for each batch's errors
        for batch in prefetch(rows.batches(), depth=1):
            if validator is None:
                validator = BatchValidator(schema, rows.keys)
            item = validate_batch(validator, batch, datetime.now(UTC))
            rows.reader.limit_blocks(block_for(item, options.block_size))  # errors take memory
            yield item, rows.reader.bytes_read

    try:
        rows = plan.open(schema)
        with store.bulk_load(), store.transaction():
            if mode == "replace":
                replace_table(store, schema.table, run_id)
            for number, (item, bytes_read) in enumerate(prefetch(validated(), depth=1)):
                if options.storing_first and number == 0:  # the other threads exist now
                    yield_to_current_thread()
                tally.add(store_batch(store, run_id, item, mode))
                if progress is not None:
                    progress(Progress(bytes_read, plan.size, tally))
            read = rows.reader.fingerprint()
            if not options.force:
                previous = _previous_run(
                    store, read.quick, read.size, schema_id, fmt, lambda: read.digest, mode
                )
                if previous is not None:
                    raise _SameContent(previous)
            if options.gate is not None:
                gate = options.gate.check(tally.rows, tally.invalid)
            record_load(store, run_id, mode, options.dialect.read_options(fmt, rows.keys))
            duration = record_progress(
                store,
                run_id,
                tally.counts(rows.blank_lines),
                started,
                status="completed",
                content_hash=read.digest,
                quick_hash=read.quick,
                file_size=read.size,
                message=gate,
            )
            interrupts.committing()  # the command line holds a signal from here: run kept
    except _SameContent as same:
        with store.writing():
            forget_run(store, run_id)
        return _skipped(plan, same.run_id, started)
    except BaseException as exc:
        _record_failure(store, run_id, started, interrupts.explained(exc))
        if isinstance(exc, duckdb.Error):
            failure = write_failure(store.path, exc)
            failure.run_id = run_id
            raise failure from exc
        if isinstance(exc, EngineError):
            exc.run_id = run_id
        raise
    # The rows are committed: should this small write fail, the duration written with them
    # stays, and is the one returned.
    with contextlib.suppress(duckdb.Error):
        duration = finish_run(store, run_id, started)
    return RunSummary(
        run_id, plan.name, "completed", tally, duration, gate or "", format=fmt, gate=gate
    )


def _record_failure(store: Store, run_id: int, started: datetime, exc: BaseException) -> None:
    """Record the run failed, if the database still takes writes; if not, it stays 'running'
    and the next writer to open the file marks it failed (``mark_interrupted``)."""
    text = exc.render(neutral_spelling) if isinstance(exc, EngineError) else str(exc)
    with contextlib.suppress(duckdb.Error):
        fail_run(store, run_id, started, f"{type(exc).__name__}: {text}")


__all__ = [
    "Progress",
    "ProgressCallback",
    "RunOptions",
    "RunSummary",
    "Tally",
    "Validated",
    "ingest_file",
    "ingest_rows",
    "prepare_schema",
    "store_batch",
    "validate_batch",
]
