"""Kafka helpers over the session's broker (the ``broker`` fixture is in tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from engine.streaming.events import Assigned, Event
from engine.streaming.local_broker import LocalBroker
from engine.streaming.settings import ConsumerSettings, KafkaSettings

# Fast group joins and failure detection against the local broker (see the README).
FAST_GROUP = {"session.timeout.ms": "2000", "heartbeat.interval.ms": "300"}
STEADY_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}

_names = itertools.count(1)


@dataclass(frozen=True)
class Record:
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None
    timestamp: int | None = None  # ms since the epoch; None: the producer's clock


@dataclass
class Sent:
    """What the broker acknowledged, in produce order."""

    records: list[Record] = field(default_factory=list)
    coordinates: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset)

    def by_coordinate(self) -> dict[tuple[int, int], Record]:
        return dict(zip(self.coordinates, self.records, strict=True))


class Kafka:
    """Topics on the session broker, producing with known coordinates, reading back."""

    def __init__(self, broker: LocalBroker) -> None:
        self.broker = broker
        self.bootstrap_servers = broker.bootstrap_servers

    def topic(self, partitions: int = 3) -> str:
        name = f"topic-{next(_names)}"
        self.broker.create_topic(name, partitions)
        return name

    def recreate(self, topic: str, partitions: int = 3) -> None:
        """Delete the topic and create it again under its name: a new topic, with a new id."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result(timeout=30)
        self.broker.create_topic(topic, partitions)

    def topic_id(self, topic: str) -> str:
        """The topic's id, as the broker describes it."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        described = admin.describe_topics(TopicCollection([topic]))
        return str(described[topic].result(timeout=30).topic_id)

    def group(self) -> str:
        return f"group-{next(_names)}"

    def settings(
        self, topic: str, group: str, *, kafka_config: dict[str, str] = FAST_GROUP, **options: Any
    ) -> ConsumerSettings:
        kafka = KafkaSettings(self.bootstrap_servers, dict(kafka_config))
        return ConsumerSettings(kafka, (topic,), group, **options)

    def send(self, topic: str, records: Sequence[Record], partitions: int = 3) -> Sent:
        """Round-robin over the partitions; returns each record's (partition, offset)."""
        producer = Producer({"bootstrap.servers": self.bootstrap_servers, "linger.ms": 5})
        acked: dict[int, tuple[int, int]] = {}

        def delivered(index: int) -> Callable[[KafkaError | None, Message], None]:
            def callback(error: KafkaError | None, message: Message) -> None:
                assert error is None, error
                acked[index] = (message.partition() or 0, message.offset() or 0)

            return callback

        for index, record in enumerate(records):
            producer.produce(
                topic,
                value=record.value,
                key=record.key,
                headers=record.headers,  # type: ignore[arg-type]
                partition=index % partitions,
                on_delivery=delivered(index),
                timestamp=record.timestamp or 0,
            )
            producer.poll(0)
        assert producer.flush(30) == 0
        return Sent(list(records), [acked[i] for i in range(len(records))])

    def read(
        self, topic: str, count: int, partitions: int = 3, attempts: int = 100
    ) -> list[Message]:
        """The first ``count`` messages of a topic, read without a group (or those there are,
        when ``attempts`` of 0.2 s bring no more)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": "reader",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        found: list[Message] = []
        for _ in range(attempts):
            found += [m for m in consumer.consume(count, 0.2) if m.error() is None]
            if len(found) >= count:
                break
        consumer.close()
        return found

    def committed(self, topic: str, group: str, partitions: int = 3) -> dict[int, int]:
        consumer = Consumer({"bootstrap.servers": self.bootstrap_servers, "group.id": group})
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        consumer.close()
        return {tp.partition: tp.offset for tp in found}


def assigned_starts(events: list[Event]) -> set[tuple[int, int | None, str]]:
    """Each partition a session was assigned: (partition, start offset, why there)."""
    return {
        (start.partition, start.offset, start.start_from)
        for event in events
        if isinstance(event, Assigned)
        for start in event.partitions
    }


@pytest.fixture
def kafka(broker: LocalBroker) -> Kafka:
    return Kafka(broker)
