"""`consume --lake` and a topic deleted and created again: every message of the new topic is
stored, as with a DuckDB file (tests/streaming/test_recreated_topic.py).

A lake keeps each partition's position as a Delta idempotency key, named after the topic's id
since ids are kept; a key named after the topic alone (written before) is resumed from once,
then retired, so that a later topic of that name is known to be another one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.lake.location import Lake
from engine.lake.stream import consume_into_lake
from engine.streaming import consumer as consumer_module
from engine.streaming.events import Event
from schemas.transactions import Transaction
from tests.lake.conftest import lake_rows
from tests.streaming.conftest import Kafka, Sent, assigned_starts
from tests.streaming.test_recovery import records

PARTITIONS = 2


def session(kafka: Kafka, lake: Lake, topic: str, group: str) -> tuple[int, int, list[Event]]:
    """One session: its lake run id, how many records it stored, what it said."""
    events: list[Event] = []
    settings = kafka.settings(topic, group, max_records=100, max_wait_ms=100, stop_when_idle_s=2)
    summary = consume_into_lake(lake, Transaction, settings, on_event=events.append)
    return summary.run_id, summary.tally.rows, events


def stored(lake: Lake, run_id: int) -> list[tuple[object, ...]]:
    return lake_rows(
        lake,
        "SELECT kafka_partition, kafka_offset FROM kafka_lineage "
        f"WHERE run_id = {run_id} ORDER BY 1, 2",
    )


def exactly(sent: Sent) -> list[tuple[int, int]]:
    return sorted(sent.coordinates)


def test_a_lake_reads_a_topic_created_again_from_its_beginning(
    kafka: Kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    lake = Lake(str(tmp_path / "lake"))
    # Positions stored without ids (brokers without them, or an engine from before).
    kafka.send(topic, records(20), PARTITIONS)  # 10 per partition
    with monkeypatch.context() as brokers_without_ids:
        brokers_without_ids.setattr(
            consumer_module, "topic_ids", lambda *args, **kwargs: ({}, "no ids (a test)")
        )
        _, rows, _ = session(kafka, lake, topic, group)
    assert rows == 20

    # With ids: resumed from them, nothing stored twice; new messages in partition 0 only.
    # Partition 1 is resumed from too, so its position is recorded under the topic's id now
    # (an independent attack: a quiet partition kept its name's key, and after the topic was
    # created again it was read from the old position).
    sent = kafka.send(topic, records(6, 100), 1)
    run_id, rows, events = session(kafka, lake, topic, group)
    assert (rows, stored(lake, run_id)) == (6, exactly(sent))
    assert assigned_starts(events) == {(p, 10, "lake") for p in range(PARTITIONS)}

    # Created again, already holding more than before: 15 per partition.
    kafka.recreate(topic, PARTITIONS)
    sent = kafka.send(topic, records(30, 200), PARTITIONS)
    run_id, rows, events = session(kafka, lake, topic, group)
    assert (rows, stored(lake, run_id)) == (30, exactly(sent))
    assert assigned_starts(events) == {(p, None, "recreated") for p in range(PARTITIONS)}

    # Created again, holding fewer: 3 per partition.
    kafka.recreate(topic, PARTITIONS)
    sent = kafka.send(topic, records(6, 300), PARTITIONS)
    run_id, rows, events = session(kafka, lake, topic, group)
    assert (rows, stored(lake, run_id)) == (6, exactly(sent))
    assert assigned_starts(events) == {(p, None, "recreated") for p in range(PARTITIONS)}

    # The same topic next time: resumed where it stopped.
    sent = kafka.send(topic, records(4, 400), PARTITIONS)
    run_id, rows, events = session(kafka, lake, topic, group)
    assert (rows, stored(lake, run_id)) == (4, exactly(sent))
    assert assigned_starts(events) == {(p, 3, "lake") for p in range(PARTITIONS)}
    assert lake_rows(
        lake, "SELECT count(*), count(DISTINCT (run_id, row_number)) FROM raw_data"
    ) == [(20 + 6 + 30 + 6 + 4, 20 + 6 + 30 + 6 + 4)]
