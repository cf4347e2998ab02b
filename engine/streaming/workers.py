"""The background threads of a consumer session: parse-and-validate (two), then write (one).

The session thread only fetches and hands over closed micro-batches. Batch k is written to
DuckDB while batches k+1 and k+2 are parsed and validated and batch k+3 is fetched; parsing,
validation and DuckDB release the GIL for most of their work, so on two cores the stages
overlap (the file path overlaps reading and writing the same way with ``engine.prefetch``).
Batches are written strictly in order, in transactions that hold their offsets and the run's
figures: one batch, or all that are ready when the writer gets to them (group commit), so
the exactly-once argument is unchanged. The session thread touches the
store only when the workers are drained (``drain``).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl
from confluent_kafka import Message

from engine.pipeline import Tally, Validated, store_batch
from engine.store.ddl import ERRORS
from engine.store.runs import record_progress
from engine.store.store import Store
from engine.streaming.dead_letters import DeadLetters
from engine.streaming.messages import TopicPartitionKey
from engine.streaming.offsets import save_offsets
from engine.streaming.sink import Sink
from engine.streaming.topic_ids import TopicIds

# DuckDB checkpoints when its WAL passes 16 MB by default; micro-batches then pay for
# rewriting (and zstd-compressing) the tables' last row groups again and again. A larger
# threshold halves the cost of a commit; the price is a longer WAL replay after a crash.
CHECKPOINT_THRESHOLD = "256MB"


@dataclass(frozen=True)
class ClosedBatch:
    """Fetched messages that make one micro-batch, rows numbered from ``first_row``."""

    messages: Sequence[Message]  # dropped at submit when there is no dead-letter topic
    frame: pl.DataFrame  # their raw text and lineage (``messages_frame``)
    first_row: int
    arrived: float  # time.monotonic() when its first message arrived

    @property
    def last_row(self) -> int:
        """Its last row's number: counted from the frame, which outlives the messages."""
        return self.first_row + self.frame.height - 1


@dataclass(frozen=True)
class ParsedBatch:
    closed: ClosedBatch
    validated: Validated
    offsets: dict[TopicPartitionKey, int]  # next offset per partition


@dataclass(frozen=True)
class WrittenBatch:
    """A micro-batch committed to DuckDB."""

    offsets: dict[TopicPartitionKey, int]
    tally: Tally
    latency_ms: float
    store_ms: float
    dead_letters: int


# Consecutive closed batches in, one ParsedBatch each out (``engine.streaming.together``).
Parse = Callable[[Sequence[ClosedBatch]], list[ParsedBatch]]
# A parser takes the closed batches waiting for it, up to this many rows in all (three
# 10,000-message batches), and parses them together: a batch's fixed cost is paid once.
TOGETHER_ROWS = 32_768
# ... and up to this many bytes of their frames: large messages gain nothing from it (the
# fixed cost is small beside theirs), and a parser would hold several batches' work at once.
TOGETHER_BYTES = 16 << 20


class BatchWorkers:
    """Parses (one thread per parser) and writes (one thread) closed batches, in order.

    Each parser owns its own state (a JSON reader is one DuckDB connection), so two batches
    can be parsed at once; the writer puts them back in submission order.
    """

    def __init__(
        self,
        parsers: Sequence[Parse],
        store: Store,
        run_id: int,
        started: datetime,
        group: str,
        dead_letters: DeadLetters | None,
        *,
        store_threads: int | None = None,
        sink: Sink | None = None,
        topic_ids: TopicIds | None = None,
    ) -> None:
        """``topic_ids``: each topic's id, stored with its offsets (``topic_ids``)."""
        self.store = store
        self.topic_ids = topic_ids or {}
        self.sink = sink  # where committed batches are published next (a lake), if anywhere
        self.run_id = run_id
        self.started = started
        self.group = group
        self.dead_letters = dead_letters
        self.total = Tally()  # what DuckDB holds for this run
        # Database-wide settings while the session writes; put back at close.
        wanted = {"checkpoint_threshold": CHECKPOINT_THRESHOLD}
        if store_threads is not None:
            wanted["threads"] = str(store_threads)
        self._settings = ExitStack()
        self._settings.enter_context(store.overriding(wanted))
        self._closed: queue.Queue[tuple[int, ClosedBatch] | None] = queue.Queue(len(parsers))
        self._parsed: queue.Queue[tuple[int, ParsedBatch | None] | None] = queue.Queue(len(parsers))
        self._done: queue.Queue[WrittenBatch] = queue.Queue()
        self._submitted = 0
        self._outstanding = 0
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._cancelled = False
        self._stopped = False
        self._taking = threading.Lock()  # one parser takes closed batches at a time
        self._held: list[tuple[int, ClosedBatch]] = []  # taken, for the next take
        self._parsers = [
            threading.Thread(target=self._parse_all, args=(parse,), name=f"parse-{i}", daemon=True)
            for i, parse in enumerate(parsers, start=1)
        ]
        self._writer = threading.Thread(target=self._write_all, name="duckdb-writer", daemon=True)
        for thread in [*self._parsers, self._writer]:
            thread.start()

    # -- session thread ----------------------------------------------------------------

    def submit(self, batch: ClosedBatch) -> None:
        """Hand a batch over (waits while every parser is busy and one batch is queued)."""
        self._raise_error()
        if self.dead_letters is None and batch.messages:
            # Only dead letters need the messages themselves: let them go now. Every live
            # Message is an object the garbage collector follows: with a few batches in
            # flight, each full collection took 40-120 ms, with the GIL held.
            batch = dataclasses.replace(batch, messages=())
        with self._changed:
            self._outstanding += 1
        job = (self._submitted, batch)
        self._submitted += 1
        while True:
            try:
                self._closed.put(job, timeout=0.1)
                return
            except queue.Full:
                self._raise_error()

    def drain(self) -> None:
        """Wait until every submitted batch is committed (or one failed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._outstanding == 0 or self._error is not None)
        self._raise_error()

    def written(self) -> list[WrittenBatch]:
        """Batches committed since the last call, in order."""
        self._raise_error()
        done: list[WrittenBatch] = []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                return done

    def close(self, *, cancel: bool = False) -> None:
        """Stop the threads; with ``cancel``, batches not yet written are dropped."""
        if self._stopped:
            return
        self._stopped = True
        self._cancelled = cancel
        for _ in self._parsers:
            self._closed.put(None)
        for thread in [*self._parsers, self._writer]:
            thread.join()
        try:
            self._settings.close()
        except duckdb.Error:
            if not cancel:  # after a failure the store may be unusable: keep the first error
                raise

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # -- worker threads ----------------------------------------------------------------

    def _skip(self) -> bool:
        return self._error is not None or self._cancelled

    def _fail(self, error: BaseException) -> None:
        with self._changed:
            self._error = self._error or error
            self._changed.notify_all()

    def _parse_all(self, parse: Parse) -> None:
        stop = False
        while not stop:
            jobs, stop = self._take()
            parsed: list[ParsedBatch | None] = [None] * len(jobs)
            if jobs and not self._skip():
                try:
                    found = list(parse([batch for _, batch in jobs]))
                    if len(found) != len(jobs):
                        raise RuntimeError(f"{len(found)} batches parsed of {len(jobs)}")
                    parsed = list(found)
                except BaseException as exc:
                    self._fail(exc)
            for (number, _), one in zip(jobs, parsed, strict=True):
                self._parsed.put((number, one))  # None: skipped, the writer only counts it
        self._parsed.put(None)

    def _take(self) -> tuple[list[tuple[int, ClosedBatch]], bool]:
        """The next closed batch and those waiting after it, up to ``TOGETHER_ROWS`` rows and
        ``TOGETHER_BYTES`` (consecutive: one parser takes at a time), and whether this
        parser's stop came."""
        with self._taking:
            first = self._held.pop() if self._held else self._closed.get()
            if first is None:
                return [], True
            jobs, rows, size = [first], first[1].frame.height, first[1].frame.estimated_size()
            while rows < TOGETHER_ROWS and size < TOGETHER_BYTES:
                try:
                    job = self._closed.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    return jobs, True  # parsed, then this parser stops
                more = job[1].frame.estimated_size()
                if rows + job[1].frame.height > TOGETHER_ROWS or size + more > TOGETHER_BYTES:
                    self._held.append(job)  # the next take starts with it
                    break
                jobs.append(job)
                rows, size = rows + job[1].frame.height, size + more
            return jobs, False

    def _write_all(self) -> None:
        waiting: dict[int, ParsedBatch | None] = {}
        following = 0
        parsers_left = len(self._parsers)
        while parsers_left:
            items = [self._parsed.get()]
            while True:  # what else is parsed already goes into the same commit
                try:
                    items.append(self._parsed.get_nowait())
                except queue.Empty:
                    break
            for item in items:
                if item is None:
                    parsers_left -= 1
                else:
                    waiting[item[0]] = item[1]
            ready: list[ParsedBatch | None] = []
            while following in waiting:
                ready.append(waiting.pop(following))
                following += 1
            if not ready:
                continue
            try:
                batches = [parsed for parsed in ready if parsed is not None]
                if batches and not self._skip():
                    for done in self._write(batches):
                        self._done.put(done)
            except BaseException as exc:
                self._fail(exc)
            finally:
                with self._changed:
                    self._outstanding -= len(ready)
                    self._changed.notify_all()

    def _write(self, batches: Sequence[ParsedBatch]) -> list[WrittenBatch]:
        """Consecutive batches in one transaction (group commit): their rows, the offsets
        after the last of them and the run's figures commit together, so the exactly-once
        argument is the same as for one; a commit's fixed cost (the offsets, the figures, the
        WAL's sync) is paid once for all the batches that were ready."""
        began = time.perf_counter()
        total = Tally()
        total.add(self.total)
        offsets: dict[TopicPartitionKey, int] = {}
        with self.store.transaction():
            together = _joined([parsed.validated for parsed in batches])
            if together is not None:  # one append per table for them all
                store_batch(self.store, self.run_id, together)
                tallies = [parsed.validated.tally for parsed in batches]
            else:
                tallies = [store_batch(self.store, self.run_id, p.validated) for p in batches]
            for parsed, tally in zip(batches, tallies, strict=True):
                total.add(tally)
                offsets.update(parsed.offsets)  # later batches carry later offsets
            save_offsets(self.store, self.group, offsets, self.run_id, self.topic_ids)
            record_progress(self.store, self.run_id, total.counts(), self.started, status="running")
        kept = None
        if self.sink is not None:  # the file was a stage: publish, keep what was kept
            published = self.sink.publish(self.run_id, batches, tallies, self.topic_ids)
            tallies, kept = published.tallies, published.kept
            total = Tally()
            total.add(self.total)
            for tally in tallies:
                total.add(tally)
        self.total = total
        store_ms = (time.perf_counter() - began) * 1000
        written = []
        for parsed, tally in zip(batches, tallies, strict=True):
            closed = parsed.closed
            latency_ms = (time.monotonic() - closed.arrived) * 1000
            dead = 0
            if self.dead_letters is not None and tally.invalid:
                invalid = self.store.rows(
                    f"SELECT row_number, errors FROM {ERRORS} WHERE run_id = ? "
                    f"AND row_number BETWEEN ? AND ? AND ({kept or 'TRUE'}) ORDER BY row_number",
                    [self.run_id, closed.first_row, closed.last_row],
                )
                dead = self.dead_letters.send(
                    closed.messages, invalid, closed.first_row, self.run_id
                )
            written.append(WrittenBatch(parsed.offsets, tally, latency_ms, store_ms, dead))
        return written


def _joined(batches: Sequence[Validated]) -> Validated | None:
    """Consecutive validated batches as one, to store with one append per table; None for
    a single batch, or when storing may change a batch's figures (a table with unique
    keys: ``store_batch`` moves duplicates to the errors) or batches differ in rules."""
    first = batches[0]
    if len(batches) < 2 or first.schema.unique:
        return None
    if any(
        b.rules is not first.rules or (b.kafka is None) != (first.kafka is None) for b in batches
    ):
        return None
    kafka = [b.kafka for b in batches if b.kafka is not None]
    return Validated(
        pl.concat([b.lineage for b in batches]),
        pl.concat(kafka) if kafka else None,
        pl.concat([b.valid for b in batches]),
        pl.concat([b.invalid for b in batches], how="diagonal_relaxed"),
        Tally(),  # not read: each batch keeps its own
        first.schema,
        first.rules,
        pl.concat([b.python_rows for b in batches]),
    )
