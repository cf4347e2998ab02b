"""A topic deleted and created again under its name: every message of the new topic is stored.

The stored offsets were the old topic's. Read as positions in the new one they skipped its
first messages without a word: those below the old offset when the new topic already held
more, all of them (dropped as stale) when it held fewer. Each offset now keeps its topic's id,
and a partition whose stored id is not the topic's is read from its beginning, with a line
that says why. Offsets stored before ids were kept (NULL) are resumed from as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store.store import Store
from engine.streaming import consumer as consumer_module
from engine.streaming.consumer import consume
from engine.streaming.events import Assigned, Event, Notice
from schemas.transactions import Transaction
from tests.conftest import query
from tests.streaming.conftest import Kafka, Record, Sent, assigned_starts
from tests.streaming.test_consumer import transaction

RECREATED = (
    "from the beginning: the topic was deleted and created again since its offsets were stored"
)


def consume_once(kafka: Kafka, topic: str, group: str, db: Path) -> tuple[int, list[Event]]:
    events: list[Event] = []
    with Store(db) as store:
        summary = consume(
            store,
            Transaction,
            kafka.settings(topic, group, max_records=50, stop_when_idle_s=2.0),
            on_event=events.append,
        )
    return summary.run_id, events


def send(kafka: Kafka, topic: str, first: int, count: int) -> Sent:
    return kafka.send(topic, [Record(transaction(i)) for i in range(first, first + count)])


def coordinates(db: Path, run_id: int) -> list[tuple[int, int]]:
    rows = query(
        db,
        "SELECT kafka_partition, kafka_offset FROM kafka_lineage "
        f"WHERE run_id = {run_id} ORDER BY 1, 2",
    )
    return [(int(p), int(o)) for p, o in rows]  # type: ignore[call-overload]


def test_a_topic_created_again_is_read_from_its_beginning(kafka: Kafka, db: Path) -> None:
    topic, group = kafka.topic(), kafka.group()
    send(kafka, topic, 0, 30)  # 10 per partition
    consume_once(kafka, topic, group, db)
    old_id = kafka.topic_id(topic)
    offsets = 'SELECT "partition", next_offset, topic_id FROM kafka_offsets ORDER BY 1'
    assert query(db, offsets) == [(p, 10, old_id) for p in range(3)]

    # Created again, and already holding more than the old topic did: 15 per partition.
    kafka.recreate(topic)
    new_id = kafka.topic_id(topic)
    assert new_id != old_id
    sent = send(kafka, topic, 100, 45)
    run_id, events = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert assigned_starts(events) == {(p, None, "recreated") for p in range(3)}
    said = [str(e) for e in events if isinstance(e, Assigned)]
    assert all(line.endswith(f"({RECREATED})") for line in said), said
    assert query(db, offsets) == [(p, 15, new_id) for p in range(3)]

    # Created again, holding fewer than the stored offsets: 5 per partition.
    kafka.recreate(topic)
    newest_id = kafka.topic_id(topic)
    sent = send(kafka, topic, 200, 15)
    run_id, events = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert assigned_starts(events) == {(p, None, "recreated") for p in range(3)}
    assert query(db, offsets) == [(p, 5, newest_id) for p in range(3)]

    # The same topic next time: resumed where it stopped, nothing read twice.
    sent = send(kafka, topic, 300, 6)
    run_id, events = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert assigned_starts(events) == {(p, 5, "duckdb") for p in range(3)}
    assert query(db, "SELECT count(*), count(DISTINCT external_id) FROM processed_data") == [
        (30 + 45 + 15 + 6, 30 + 45 + 15 + 6)
    ]


def test_offsets_stored_without_ids_are_resumed_then_keep_the_id(
    kafka: Kafka, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = kafka.topic(), kafka.group()
    send(kafka, topic, 0, 30)
    with monkeypatch.context() as brokers_without_ids:
        brokers_without_ids.setattr(
            consumer_module, "topic_ids", lambda *args, **kwargs: ({}, "no ids (a test)")
        )
        _, events = consume_once(kafka, topic, group, db)
    assert [str(e) for e in events if isinstance(e, Notice)] == [
        "warning: no ids (a test): a topic created again would not be recognised"
    ]
    offsets = 'SELECT "partition", next_offset, topic_id FROM kafka_offsets ORDER BY 1'
    assert query(db, offsets) == [(p, 10, None) for p in range(3)]

    # Resumed with ids, new messages in partition 0 only: every partition resumed from
    # takes the topic's id, the quiet ones too (an independent attack: a quiet partition kept
    # no id, and after the topic was created again it was read from its old offset).
    sent = kafka.send(topic, [Record(transaction(i)) for i in range(100, 104)], partitions=1)
    run_id, events = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert assigned_starts(events) == {(p, 10, "duckdb") for p in range(3)}
    assert not [e for e in events if isinstance(e, Notice)]
    old_id = kafka.topic_id(topic)
    assert query(db, offsets) == [(0, 14, old_id), (1, 10, old_id), (2, 10, old_id)]

    kafka.recreate(topic)
    sent = send(kafka, topic, 200, 45)
    run_id, events = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert assigned_starts(events) == {(p, None, "recreated") for p in range(3)}

    # A session whose brokers give no ids keeps the ids stored: the next one still knows.
    sent = send(kafka, topic, 300, 3)
    with monkeypatch.context() as brokers_without_ids:
        brokers_without_ids.setattr(
            consumer_module, "topic_ids", lambda *args, **kwargs: ({}, "no ids (a test)")
        )
        run_id, _ = consume_once(kafka, topic, group, db)
    assert coordinates(db, run_id) == sorted(sent.coordinates)
    assert query(db, offsets) == [(p, 16, kafka.topic_id(topic)) for p in range(3)]
