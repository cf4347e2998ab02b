"""The ``ingestion_runs`` table: one row per file run or consumer session.

A run row is written in its own small transaction when the run starts (status ``running``),
so that a failed run can be recorded as failed; the data and the final figures commit
together. A ``running`` row found when a writer opens the file belongs to a process that
died: a file run is marked ``failed`` (its data was never committed), a Kafka consumer
session ``interrupted`` (each of its micro-batches committed with its figures, and is kept).

A run's duration has one definition: ``duration_s = finished_at - started_at``, from the
moment its caller started it (``start_run``'s ``started``) to the last write of its figures
(for a file run, ``finish_run`` right after its rows committed). The functions that write
it return it, so what a command prints is what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from engine.store.ddl import RUNS
from engine.store.store import Store

# A run's status as stored: running until it ends; a Kafka session whose process died is
# interrupted (its committed batches are kept), a file run that did not commit is failed.
RunStatus = Literal["running", "completed", "failed", "interrupted"]
SourceKind = Literal["file", "kafka"]

FILE_INTERRUPTED = (
    "interrupted: the run ended before it committed (its process died, or its failure could "
    "not be recorded); no rows were kept"
)
KAFKA_INTERRUPTED = (
    "interrupted: the consumer process died; its committed micro-batches are kept and counted here"
)


@dataclass(frozen=True)
class RunStart:
    source_kind: SourceKind
    source_path: str
    format: str
    schema_name: str
    schema_fingerprint: str
    target_table: str
    quick_hash: str | None = None
    file_size: int | None = None


@dataclass(frozen=True)
class RunCounts:
    rows_total: int
    rows_valid: int
    rows_invalid: int
    rows_python: int = 0
    blank_lines: int = 0


def start_run(
    store: Store, start: RunStart, *, started: datetime | None = None
) -> tuple[int, datetime]:
    """Record a run as ``running``; ``started`` (default: now) is when its work began."""
    started = started or datetime.now(UTC)
    run_id = store.rows("SELECT nextval('ingestion_run_ids')")[0][0]
    store.execute(
        f"INSERT INTO {RUNS} (run_id, source_kind, source_path, format, schema_name, "
        "schema_fingerprint, target_table, quick_hash, file_size, started_at, status) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
        [
            run_id,
            start.source_kind,
            start.source_path,
            start.format,
            start.schema_name,
            start.schema_fingerprint,
            start.target_table,
            start.quick_hash,
            start.file_size,
            started,
        ],
    )
    return int(run_id), started


def record_progress(
    store: Store,
    run_id: int,
    counts: RunCounts,
    started: datetime,
    *,
    status: RunStatus,
    content_hash: str | None = None,
    quick_hash: str | None = None,
    file_size: int | None = None,
    message: str | None = None,
    if_running: bool = False,
) -> float:
    """Write a run's figures (inside the data transaction for completed file runs); returns
    its duration as stored.

    ``content_hash``, ``quick_hash`` and ``file_size`` describe the bytes the run read (a file
    that grew while it was read is recorded as what was ingested). ``if_running`` leaves a run
    that is no longer running as it is.
    """
    finished, duration = _elapsed(started)
    store.execute(
        f"UPDATE {RUNS} SET status = ?, finished_at = ?, duration_s = ?, rows_total = ?, "
        "rows_valid = ?, rows_invalid = ?, rows_python = ?, blank_lines = ?, "
        "content_hash = coalesce(?, content_hash), quick_hash = coalesce(?, quick_hash), "
        "file_size = coalesce(?, file_size), message = ? WHERE run_id = ?"
        + (" AND status = 'running'" if if_running else ""),
        [
            status,
            finished,
            duration,
            counts.rows_total,
            counts.rows_valid,
            counts.rows_invalid,
            counts.rows_python,
            counts.blank_lines,
            content_hash,
            quick_hash,
            file_size,
            message,
            run_id,
        ],
    )
    return duration


def finish_run(store: Store, run_id: int, started: datetime) -> float:
    """After a file run's commit: it ends when its rows are durable, so the commit counts
    (a tenth of a 1M-row run). Returns its duration as stored."""
    finished, duration = _elapsed(started)
    store.execute(
        f"UPDATE {RUNS} SET finished_at = ?, duration_s = ? WHERE run_id = ?",
        [finished, duration, run_id],
    )
    return duration


def _elapsed(started: datetime) -> tuple[datetime, float]:
    finished = datetime.now(UTC)
    return finished, (finished - started).total_seconds()


def fail_run(store: Store, run_id: int, started: datetime, message: str) -> None:
    """After a rollback: the run keeps no rows, only its failed status and why. A run that
    committed after all (a signal handled just after its commit) stays completed."""
    record_progress(
        store,
        run_id,
        RunCounts(0, 0, 0),
        started,
        status="failed",
        message=message[:2000],
        if_running=True,
    )


def forget_run(store: Store, run_id: int) -> None:
    """A run rolled back because its input had been ingested before: as if never started."""
    store.execute(f"DELETE FROM {RUNS} WHERE run_id = ? AND status = 'running'", [run_id])


def mark_interrupted(store: Store, *, cause: str | None = None) -> int:
    """Runs left 'running' by a process that died (or, with ``cause``, by a database that
    failed under a running server and was reopened).

    A file run commits at its end, so nothing of it was kept: it is marked 'failed'. A Kafka
    consumer session commits each micro-batch on its own, so what it committed is kept: it is
    marked 'interrupted', with the figures of its committed batches.
    """
    file_message, kafka_message = FILE_INTERRUPTED, KAFKA_INTERRUPTED
    if cause is not None:
        file_message = f"failed: {cause}; no rows of this run were kept"[:2000]
        kafka_message = f"interrupted: {cause}; its committed micro-batches are kept"[:2000]
    rows = store.rows(
        f"UPDATE {RUNS} SET status = CASE WHEN source_kind = 'kafka' THEN 'interrupted' "
        "ELSE 'failed' END, message = CASE WHEN source_kind = 'kafka' THEN ? ELSE ? END "
        "WHERE status = 'running' RETURNING run_id",
        [kafka_message, file_message],
    )
    return len(rows)


def completed_candidates(
    store: Store, quick_hash: str, file_size: int, fingerprint: str, fmt: str
) -> list[tuple[int, str | None]]:
    """Completed runs that may be of the same content and schema, read the same way (confirm
    with the full hash): the same bytes read as CSV and as JSON records are two ingestions;
    Parquet, Arrow and rows in memory are their rows as NDJSON text, so one content."""
    rows = store.rows(
        f"SELECT run_id, content_hash FROM {RUNS} WHERE status = 'completed' AND quick_hash = ? "
        "AND file_size = ? AND schema_fingerprint = ? AND (format = 'csv') = ? ORDER BY run_id",
        [quick_hash, file_size, fingerprint, fmt == "csv"],
    )
    return [(int(r[0]), r[1]) for r in rows]
