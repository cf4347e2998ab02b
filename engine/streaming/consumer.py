"""The consumer session: Kafka micro-batches through the file path, exactly once into DuckDB.

Protocol, per micro-batch:

1. the batch's rows (``store_batch``, the same call a file run makes), each partition's next
   offset (``kafka_offsets``) and the run's figures commit in **one DuckDB transaction**;
2. only then are the offsets committed to Kafka, as information (lag tooling, other files);
3. a partition assigned to this consumer starts from the larger of the offset stored in this
   DuckDB file and the group's committed offset; with neither, ``auto.offset.reset``; from
   its beginning if the topic was deleted and created again since (``topic_ids``).

A crash before the DuckDB commit loses only fetched messages, which are fetched again; a crash
after it leaves the stored offset past them, so they are not stored twice.

Rebalances are cooperative. On revoke the partitions are still ours: the in-flight batch is
written, and their offsets are committed to Kafka synchronously before the next owner can
start from them. On loss (our session timed out, someone else may own them already) the
in-flight messages of those partitions are dropped unwritten. Messages fetched before a
rebalance and handed over after it are filtered: only owned partitions, never an offset below
the partition's assigned start.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import duckdb
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pydantic import BaseModel

from engine.errors import StreamError
from engine.pipeline import prepare_schema
from engine.sources.json_values import JsonValues
from engine.store.disk_full import as_write_failure
from engine.store.runs import RunStart, record_progress, start_run
from engine.store.store import Store
from engine.streaming.connection import connect
from engine.streaming.dead_letters import DeadLetters
from engine.streaming.events import (
    UNASSIGNED,
    Assigned,
    BatchWritten,
    Event,
    Notice,
    Revoked,
    SessionSummary,
)
from engine.streaming.group import commit_offsets, group_offsets, high_watermark
from engine.streaming.leaving import LEFT_LATE, close_within
from engine.streaming.messages import TopicPartitionKey, messages_frame
from engine.streaming.offsets import stored_positions
from engine.streaming.ownership import Partitions
from engine.streaming.reachability import BrokerWatch
from engine.streaming.settings import ConsumerSettings
from engine.streaming.shutdown import StopRequest
from engine.streaming.sink import Sink
from engine.streaming.together import parse_together
from engine.streaming.topic_ids import plan_starts, topic_ids
from engine.streaming.workers import BatchWorkers, ClosedBatch, ParsedBatch
from engine.validation.compiler import fingerprint
from engine.validation.validate import BatchValidator

LOG = logging.getLogger("engine.streaming.kafka")

# Batches parsed and validated at once (each parser has its own DuckDB JSON connection).
PARSERS = 2

EventCallback = Callable[[Event], None]


def consume(
    store: Store,
    model: type[BaseModel],
    settings: ConsumerSettings,
    *,
    on_event: EventCallback | None = None,
    stop: StopRequest | None = None,
    sink: Sink | None = None,
    new_table: bool = False,
) -> SessionSummary:
    """Run one consumer session until ``stop`` is set or it has been idle long enough.
    With ``sink``, ``store`` is a stage and the sink holds what counts (a lake).
    ``new_table``: store the model's rows in a new table, as ``run --new-table``."""
    return ConsumerSession(
        store, model, settings, on_event=on_event, stop=stop, sink=sink, new_table=new_table
    ).run()


class ConsumerSession:
    """One session: its state is made here (the schema and validator, the owned partitions,
    the in-flight batch, the figures); ``run`` opens what talks to the outside (the Kafka
    consumer, the run's row, the worker threads), runs, and closes them.

    Connecting waits for the brokers, so it stays in ``run``: the API server makes its
    session while it starts and runs it on a thread, where a failure is the consumer's
    state, not the server's.
    """

    def __init__(
        self,
        store: Store,
        model: type[BaseModel],
        settings: ConsumerSettings,
        *,
        on_event: EventCallback | None = None,
        stop: StopRequest | None = None,
        sink: Sink | None = None,
        new_table: bool = False,
    ) -> None:
        self.store = store
        self.sink = sink
        self.model = model
        self.settings = settings
        self.on_event = on_event or (lambda _event: None)
        self.stop = stop or StopRequest()
        self.schema = prepare_schema(
            store, model, typed=True, context=settings.context, new_table=new_table
        )
        self.validator = BatchValidator(self.schema, self.schema.input_keys)
        self.watch = BrokerWatch(
            settings.kafka.bootstrap_servers,
            self.on_event,
            give_up_after_s=settings.give_up_after_s,
        )
        self.partitions = Partitions()
        self.run_id: int | None = None  # once run() recorded the session
        self.batches = 0
        self.latencies_ms: list[float] = []
        self.pending: list[Message] = []  # the in-flight batch
        self.batch_started = 0.0
        self.idle_since: float | None = None
        self.next_row = 1
        self.rebalanced = False  # since the last fetch: filter what it returns
        self.failed = False  # from here on, revokes drop the in-flight batch
        self.consumer_closed = False
        self.topic_ids: dict[str, str] = {}  # once connected (engine.streaming.topic_ids)
        self.unassigned_since: float | None = None  # until a first partition (UNASSIGNED)

    # -- the session ---------------------------------------------------------------------

    def run(self) -> SessionSummary:
        started = datetime.now(UTC)  # the session's duration counts from here (engine.store.runs)
        settings = self.settings
        schema = self.schema
        self.consumer = connect(settings, self.watch)
        try:
            self.topic_ids, unknown = topic_ids(
                settings.kafka, settings.topics, settings.broker_timeout_s, logger=self.watch
            )
            if unknown:
                self.on_event(Notice(f"{unknown}: a topic created again would not be recognised"))
            dead_letters = (
                DeadLetters(settings.kafka, settings.dead_letter_topic, logger=self.watch)
                if settings.dead_letter_topic
                else None
            )
            run_id, self.started = start_run(
                self.store,
                RunStart(
                    "kafka",
                    settings.source_path,
                    "json",
                    schema.name,
                    fingerprint(self.model, settings.context),
                    schema.table,
                ),
                started=started,
            )
            self.run_id = run_id
        except BaseException as exc:
            self._close_quietly()
            raise as_write_failure(self.store.path, exc) from exc
        readers = [
            JsonValues(schema.input_keys, want_all_keys=schema.extra == "forbid")
            for _ in range(PARSERS)
        ]
        self.workers = BatchWorkers(
            [functools.partial(self._parse, reader) for reader in readers],
            self.store,
            run_id,
            self.started,
            settings.group,
            dead_letters,
            store_threads=settings.store_threads,
            sink=self.sink,
            topic_ids=self.topic_ids,
        )
        try:
            reason, duration = self._session(dead_letters)
        except BaseException as exc:
            self._abandon(exc)
            raise as_write_failure(self.store.path, exc) from exc
        finally:
            for reader in readers:
                reader.close()
        return SessionSummary(
            run_id,
            self.batches,
            self.workers.total,
            duration,
            reason,
            tuple(self.latencies_ms),
        )

    def _session(self, dead_letters: DeadLetters | None) -> tuple[str, float]:
        """Subscribe, consume until asked to stop, then write, commit and leave cleanly;
        returns why it stopped and its duration as stored."""
        self.consumer.subscribe(
            list(self.settings.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        reason = self._loop()
        self._flush()
        self._settle()
        # Revokes everything (offsets go to Kafka synchronously), within a deadline.
        left = close_within(self.consumer, self.settings.broker_timeout_s)
        self.consumer_closed = True
        self.workers.close()
        message = f"stopped: {reason}"
        if not left:
            late = LEFT_LATE.format(self.settings.broker_timeout_s)
            self.on_event(Notice(late))
            message += f"; {late}"
        if dead_letters is not None:
            problem = dead_letters.close(self.settings.broker_timeout_s)
            if problem:
                self.on_event(Notice(problem))
                message += f"; {problem}"
        assert self.run_id is not None
        duration = record_progress(
            self.store,
            self.run_id,
            self.workers.total.counts(),
            self.started,
            status="completed",
            message=message,
        )
        if self.sink is not None:
            self.sink.finish(self.run_id, "completed", self.workers.total.counts(), message)
        return reason, duration

    def _abandon(self, error: BaseException) -> None:
        """After an error: drop what is not written, leave the group, record the run."""
        self.failed = True  # from here on, revokes drop the in-flight batch
        self.workers.close(cancel=True)
        if not self.consumer_closed:
            self._close_quietly()
        message = f"{type(error).__name__}: {error}; its committed micro-batches are kept"
        assert self.run_id is not None
        try:
            record_progress(
                self.store,
                self.run_id,
                self.workers.total.counts(),
                self.started,
                status="failed",
                message=message[:2000],
            )
        except duckdb.Error as problem:
            LOG.warning("cannot record run %s as failed: %s", self.run_id, problem)
        if self.sink is not None:
            try:
                counts = self.workers.total.counts()
                self.sink.finish(self.run_id, "failed", counts, message)
            except Exception as problem:  # the lake may be what failed
                LOG.warning("cannot record the session as failed in the lake: %s", problem)

    def _close_quietly(self) -> None:
        try:
            if not close_within(self.consumer, self.settings.broker_timeout_s):
                LOG.warning(LEFT_LATE.format(self.settings.broker_timeout_s))
        except (KafkaException, RuntimeError) as exc:
            LOG.warning("closing the consumer after a failure: %s", exc)

    def _loop(self) -> str:
        """Fetch into the in-flight batch; write it when full or due. Returns why it stopped."""
        settings = self.settings
        max_wait = settings.max_wait_ms / 1000
        idle_limit = settings.stop_when_idle_s
        self.unassigned_since = time.monotonic()
        while True:
            self._report_written()
            if self.stop.is_set():
                return self.stop.reason
            now = time.monotonic()
            if self.pending:
                due = self.batch_started + max_wait
                if len(self.pending) >= settings.max_records or now >= due:
                    self._flush()
                    self.idle_since = time.monotonic()  # waiting for the workers is not idling
                    continue
                timeout = min(settings.poll_interval_s, due - now)
            else:
                if (
                    idle_limit is not None
                    and self.idle_since is not None
                    and now - self.idle_since >= idle_limit
                ):
                    return f"no messages for {idle_limit:g} s"
                waited = settings.broker_timeout_s
                if self.unassigned_since is not None and now - self.unassigned_since >= waited:
                    self.unassigned_since = None  # said once
                    self.on_event(Notice(UNASSIGNED.format(waited)))
                timeout = settings.poll_interval_s
            self.rebalanced = False
            fetched = self.consumer.consume(settings.max_records - len(self.pending), timeout)
            self.watch.check(self.consumer)
            accepted = self._accept(fetched)
            if accepted:
                now = time.monotonic()
                if not self.pending:
                    self.batch_started = now
                self.pending.extend(accepted)
                self.idle_since = now

    def _accept(self, fetched: list[Message]) -> list[Message]:
        """Drop error events (raising on fatal ones) and messages a rebalance made stale."""
        messages = [m for m in fetched if m.error() is None]
        if len(messages) != len(fetched):
            for event in fetched:
                error = event.error()
                if error is not None:
                    self._kafka_error(event, error)
        if self.rebalanced:
            messages = self._owned_only(messages)
        return messages

    def _kafka_error(self, event: Message, error: KafkaError) -> None:
        if error.fatal() or error.code() in (
            KafkaError.UNKNOWN_TOPIC_OR_PART,
            KafkaError._UNKNOWN_TOPIC,
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.GROUP_AUTHORIZATION_FAILED,
        ):
            raise StreamError(
                error.str(), topic=event.topic(), partition=event.partition(), offset=event.offset()
            )
        self.on_event(Notice(f"kafka: {error.str()}"))

    def _owned_only(self, messages: list[Message]) -> list[Message]:
        return [
            m
            for m in messages
            if self.partitions.accepts((m.topic() or "", m.partition() or 0), m.offset() or 0)
        ]

    # -- writing a batch -----------------------------------------------------------------

    def _flush(self) -> None:
        """Close the in-flight batch: the workers parse, validate and write it."""
        if not self.pending:
            return
        messages, self.pending = self.pending, []
        # Reading the messages' fields is per-message Python work: done on this thread,
        # which otherwise mostly waits, so that the parse threads only run columnar code.
        frame = messages_frame(messages)
        self.workers.submit(ClosedBatch(messages, frame, self.next_row, self.batch_started))
        self.next_row += len(messages)

    def _parse(self, reader: JsonValues, closed: Sequence[ClosedBatch]) -> list[ParsedBatch]:
        """The parse stage (on a worker thread): the same RawBatch path as a file, for one
        batch or several waiting ones together (``engine.streaming.together``)."""
        return parse_together(reader, self.validator, closed, datetime.now(UTC))

    def _settle(self) -> None:
        """Wait until every closed batch is in DuckDB, and report them."""
        self.workers.drain()
        self._report_written()

    def _report_written(self) -> None:
        """For each batch the workers committed: offsets to Kafka (after DuckDB), a log line."""
        for done in self.workers.written():
            self.batches += 1
            # A batch closed before its partitions were lost still commits to DuckDB; its
            # offsets must not reach the group, which may have moved on under a new owner.
            owned = self.partitions.stored_now(done.offsets)
            commit_offsets(self.consumer, owned, self.on_event, synchronous=False)
            self.latencies_ms.append(done.latency_ms)
            self.on_event(
                BatchWritten(
                    self.batches,
                    done.tally.rows,
                    done.tally.valid,
                    done.tally.invalid,
                    done.latency_ms,
                    done.store_ms,
                    self._lag(),
                    done.dead_letters,
                )
            )

    def _lag(self) -> int | None:
        """Messages between what this file holds and the last known high watermarks."""
        return self.partitions.lag(functools.partial(high_watermark, self.consumer))

    # -- rebalance callbacks (run inside consume(), on this thread) -------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if partitions:
            self.unassigned_since = None
        keys = [(p.topic, p.partition) for p in partitions]
        self._settle()  # the store is the workers' until they are drained
        group = self.settings.group
        assert self.run_id is not None  # recorded before subscribing
        stored, origin = stored_positions(
            self.store, self.sink, self.run_id, group, keys, self.topic_ids
        )
        committed = group_offsets(consumer, keys, self.settings.broker_timeout_s, self.on_event)
        starts = plan_starts(partitions, stored, committed, self.topic_ids, origin)
        for start in starts:
            self.partitions.assign((start.topic, start.partition), start.offset)
        consumer.incremental_assign(partitions)
        self.rebalanced = True
        self.idle_since = time.monotonic()
        self.on_event(Assigned(tuple(starts)))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        if not self.failed:
            self._flush()  # still ours until this callback returns
            self._settle()
            commit_offsets(
                self.consumer, self.partitions.stored_of(keys), self.on_event, synchronous=True
            )
        else:
            self._drop(keys)
        self._forget(keys)
        self.on_event(Revoked(tuple(keys), lost=False, dropped=self.failed))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(p.topic, p.partition) for p in partitions]
        self._drop(keys)
        self._forget(keys)
        self.on_event(Revoked(tuple(keys), lost=True))

    def _drop(self, keys: Iterable[TopicPartitionKey]) -> None:
        gone = set(keys)
        self.pending = [m for m in self.pending if (m.topic(), m.partition()) not in gone]

    def _forget(self, keys: Iterable[TopicPartitionKey]) -> None:
        self.partitions.forget(keys)
        self.rebalanced = True
        self.idle_since = time.monotonic()
