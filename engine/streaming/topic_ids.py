"""Which topic a stored offset belongs to, when a topic of that name was deleted and created
again.

A topic created again under the same name starts its offsets from 0. An offset stored for the
old topic, read as a position in the new one, skipped the new topic's first messages without a
word (its messages below the old position were never read, or were dropped as stale). Kafka
(2.8 on, KIP-516) gives every topic an id that a new topic of the same name does not share, so
each store keeps the id with the offsets (DuckDB: ``kafka_offsets.topic_id``; a lake: in its
idempotency keys, ``engine.lake.stream``), and a session starts a partition whose stored id
is not the topic's id now from the topic's beginning (``partition_start``).

A broker that reports no ids (older than 2.8) leaves the check out; the session says so once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from engine.streaming.connection import kafka_reason
from engine.streaming.events import PartitionStart, StartFrom
from engine.streaming.messages import TopicPartitionKey
from engine.streaming.settings import KafkaSettings

NO_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # the zero id, as a broker without topic ids reports it
# A stored position whose topic id is not known to the store, only that it was another
# topic's (a lake's key from before ids that a later session retired).
EARLIER_TOPIC = "(an earlier topic of that name)"

TopicIds = Mapping[str, str]


@dataclass(frozen=True)
class Stored:
    """A partition's next offset as a store holds it, and the id of the topic it is in
    (None: stored before ids were kept, or by a broker without them)."""

    offset: int
    topic_id: str | None


def topic_ids(
    kafka: KafkaSettings, topics: Iterable[str], timeout_s: float, *, logger: object = None
) -> tuple[dict[str, str], str | None]:
    """Each topic's id as the brokers report it, and why there are none, if so (a failed
    request, or brokers without ids)."""
    config: dict[str, Any] = dict(kafka.producer_config())
    if logger is not None:
        config.update(logger=logger, error_cb=lambda _error: None)
    try:
        admin = AdminClient(config)
        described = admin.describe_topics(
            TopicCollection(sorted(set(topics))), request_timeout=timeout_s
        )
        found = {name: str(future.result().topic_id) for name, future in described.items()}
    except KafkaException as exc:
        return {}, f"cannot ask the brokers for the topics' ids ({kafka_reason(exc)})"
    ids = {name: value for name, value in found.items() if value and value != NO_ID}
    if not ids:
        return {}, "the brokers report no topic ids (Kafka before 2.8)"
    return ids, None


def partition_start(
    key: TopicPartitionKey, stored: Stored | None, committed: int, ids: TopicIds, origin: StartFrom
) -> tuple[int | None, StartFrom]:
    """Where a newly assigned partition starts, and why: the larger of the stored offset and
    the group's committed one; neither (-1): None, ``auto.offset.reset`` decides. A stored
    offset of a topic deleted since then: None too, and "recreated": the new topic is read
    from its beginning (``OFFSET_BEGINNING``, not 0, which may have expired), whatever the
    group committed (Kafka drops a deleted topic's committed offsets; any left are as old),
    so none of its messages is skipped."""
    current = ids.get(key[0])
    if (
        stored is not None
        and stored.topic_id is not None
        and current not in (None, stored.topic_id)
    ):
        return None, "recreated"
    here = stored.offset if stored is not None else -1
    if max(here, committed) < 0:
        return None, "reset"
    return max(here, committed), origin if here >= committed else "group"


def plan_starts(
    partitions: list[TopicPartition],
    stored: Mapping[TopicPartitionKey, Stored],
    committed: Mapping[TopicPartitionKey, int],
    ids: TopicIds,
    origin: StartFrom,
) -> list[PartitionStart]:
    """Each newly assigned partition's start (``partition_start``), also set as the offset it
    is assigned at."""
    starts = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        start, why = partition_start(key, stored.get(key), committed.get(key, -1), ids, origin)
        if start is not None:
            tp.offset = start
        elif why == "recreated":
            tp.offset = OFFSET_BEGINNING
        starts.append(PartitionStart(*key, start, why))
    return starts
