"""A session the group gives no partition says so, once, instead of waiting without a word.

An attacker's two consumers of a group stuck at the broker ran for 400 s printing nothing:
``--stop-when-idle`` counts from the first assignment, so it never started. Here a topic of
one partition is held by a first session; a second one of the group gets nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path

from engine.store.store import Store
from engine.streaming.consumer import consume
from engine.streaming.events import Assigned, Event, Notice
from engine.streaming.shutdown import StopRequest
from schemas.transactions import Transaction
from tests.streaming.conftest import STEADY_GROUP, Kafka, Record
from tests.streaming.test_consumer import transaction


def test_a_session_given_no_partition_says_so_once(kafka: Kafka, tmp_path: Path) -> None:
    topic, group = kafka.topic(1), kafka.group()
    kafka.send(topic, [Record(transaction(i)) for i in range(5)], partitions=1)
    settings = kafka.settings(topic, group, kafka_config=STEADY_GROUP, broker_timeout_s=2.0)
    holder_events: list[Event] = []
    holding, holder_stop = threading.Event(), StopRequest()

    def hold(event: Event) -> None:
        holder_events.append(event)
        if isinstance(event, Assigned) and event.partitions:
            holding.set()

    def holder() -> None:
        with Store(tmp_path / "holder.duckdb") as store:
            consume(store, Transaction, settings, on_event=hold, stop=holder_stop)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert holding.wait(60), holder_events
        events: list[Event] = []
        stop = StopRequest()
        timer = threading.Timer(60, stop.set, ["no notice"])  # should it never come
        timer.start()

        def watch(event: Event) -> None:
            events.append(event)
            if isinstance(event, Notice):
                threading.Timer(3.0, stop.set, ["noticed"]).start()  # said only once?

        with Store(tmp_path / "second.duckdb") as store:
            summary = consume(store, Transaction, settings, on_event=watch, stop=stop)
        timer.cancel()
    finally:
        holder_stop.set("done")
        thread.join(60)
    assert [str(e) for e in events if isinstance(e, Notice)] == [
        "warning: no partition assigned after 2 s: the group's other consumers may hold every "
        "partition, or it is still rebalancing (--stop-when-idle counts from the first "
        "assignment)"
    ]
    assert not [e for e in events if isinstance(e, Assigned) and e.partitions]
    assert summary.tally.rows == 0
