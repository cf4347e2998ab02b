"""Where a consumer's committed batches go next, when the DuckDB file is only a stage.

By default a session's DuckDB file is the store: its ``kafka_offsets`` say where each
partition resumes. A ``Sink`` (the lake's, ``engine.lake.stream``) takes each batch group
right after the file committed it, publishes it elsewhere with its own exactly-once
records, and says where partitions resume instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.outcomes import Tally
from engine.store.runs import RunCounts
from engine.streaming.messages import TopicPartitionKey
from engine.streaming.topic_ids import Stored, TopicIds

if TYPE_CHECKING:
    from engine.streaming.workers import ParsedBatch


@dataclass(frozen=True)
class Published:
    """What a publish kept of its batches: each one's figures, and, when another writer had
    published some of their rows, which staged rows were kept (an SQL condition on
    ``row_number``; None: all of them). Only kept rows go to the dead-letter topic."""

    tallies: list[Tally]
    kept: str | None = None


class Sink(Protocol):
    @property
    def run_id(self) -> int:
        """The id the session is recorded under where the sink publishes."""
        ...

    def positions(
        self, group: str, partitions: Iterable[TopicPartitionKey], topic_ids: TopicIds
    ) -> dict[TopicPartitionKey, Stored]:
        """The next offset stored for each partition that has one, and the id of the topic it
        is in (``engine.streaming.topic_ids``; ``topic_ids``: each topic's id now)."""
        ...

    def adopt(
        self,
        run_id: int,
        group: str,
        offsets: Mapping[TopicPartitionKey, int],
        topic_ids: TopicIds,
    ) -> None:
        """Record ``offsets``, stored without a topic id and resumed from, as those of the
        topics with ``topic_ids`` (``engine.streaming.offsets.stored_positions``)."""
        ...

    def publish(
        self,
        run_id: int,
        batches: Sequence[ParsedBatch],
        tallies: Sequence[Tally],
        topic_ids: TopicIds,
    ) -> Published:
        """Publish batches the stage committed; returns what was kept of each (rows already
        published by another writer are left out)."""
        ...

    def finish(self, run_id: int, status: str, counts: RunCounts, message: str) -> None:
        """Record how the session ended."""
        ...
