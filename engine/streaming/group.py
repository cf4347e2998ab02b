"""What the consumer tells the group and asks the brokers: committed offsets (information
for lag tooling, written after the store's commit), the group's own committed offsets, and
the high watermarks. Kafka failures here are notices, never errors: the store holds the
offsets that count."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from engine.streaming.connection import kafka_reason
from engine.streaming.events import Event, Notice
from engine.streaming.messages import TopicPartitionKey


def commit_offsets(
    consumer: Consumer,
    offsets: Mapping[TopicPartitionKey, int],
    on_event: Callable[[Event], None],
    *,
    synchronous: bool,
) -> None:
    """Tell the group where the store is (after the store's commit, never before)."""
    if not offsets:
        return
    partitions = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
    try:
        if synchronous:
            result = consumer.commit(offsets=partitions, asynchronous=False)
            failed = [tp for tp in result if tp.error is not None]
            if failed:
                on_event(
                    Notice(
                        f"committing offsets to Kafka failed for {failed[0].topic}"
                        f"[{failed[0].partition}]: {failed[0].error}"
                    )
                )
        else:
            consumer.commit(offsets=partitions, asynchronous=True)
    except KafkaException as exc:
        on_event(Notice(f"committing offsets to Kafka failed: {kafka_reason(exc)}"))


def group_offsets(
    consumer: Consumer,
    keys: list[TopicPartitionKey],
    timeout_s: float,
    on_event: Callable[[Event], None],
) -> dict[TopicPartitionKey, int]:
    """The group's committed offsets of ``keys`` (none it cannot read, with a notice)."""
    if not keys:
        return {}
    try:
        found = consumer.committed([TopicPartition(t, p) for t, p in keys], timeout=timeout_s)
    except KafkaException as exc:
        on_event(
            Notice(
                f"cannot read the group's committed offsets ({kafka_reason(exc)}); using DuckDB's"
            )
        )
        return {}
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}


def high_watermark(consumer: Consumer, key: TopicPartitionKey) -> int | None:
    """The partition's last known high watermark (cached by librdkafka), if any."""
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(*key), cached=True)
    except KafkaException:
        return None
    return int(high)
