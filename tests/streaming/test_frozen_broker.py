"""Stopping a consumer whose broker stalls (a network partition: connections open, nothing
answered), on a broker of its own, frozen with SIGSTOP.

Leaving the group waited for the coordinator inside librdkafka, on the main thread, where no
signal handler runs: SIGTERM, then a second signal, did nothing until the broker came back
(40 s, or forever; independent attack). Now the first signal stops within the broker timeout
(10 s) with exit code 0, and a second one exits at once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.streaming.local_broker import LocalBroker
from tests.conftest import query
from tests.streaming.conftest import Kafka, Record
from tests.streaming.processes import ConsumerProcess

# librdkafka gives the group session up once the broker has not answered for the session
# timeout ("SESSTMOUT"; once the leave has begun, it no longer matters): with the fast
# groups' 2 s, that raced the signal sent 1 s after the freeze (from 1.9 s on, the session
# was lost first and the consumer stopped at once). A longer session makes the first join
# slower (30 s: past the 10 s the consumer waits before warning).
FROZEN_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "300"}
LATE = (
    "kafka: leaving the group did not finish within 10 s (the brokers do not answer); what "
    "was stored is in DuckDB, and the group lets this member go after its session timeout"
)


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[tuple[LocalBroker, Kafka]]:
    with LocalBroker(tmp_path / "tansu.log") as broker:
        try:
            yield broker, Kafka(broker)
        finally:
            pid = broker._process.pid if broker._process is not None else None
            if pid is not None:
                os.kill(pid, signal.SIGCONT)


def _running(frozen: tuple[LocalBroker, Kafka], tmp_path: Path) -> tuple[ConsumerProcess, Path]:
    broker, kafka = frozen
    topic, group, db = kafka.topic(), kafka.group(), tmp_path / "f.duckdb"
    consumer = ConsumerProcess(kafka.bootstrap_servers, topic, group, db, kafka_config=FROZEN_GROUP)
    consumer.wait_for(lambda: consumer.owned() == {0, 1, 2}, 60, "the assignment")
    kafka.send(topic, [Record(b'{"external_id": "T%d", "amount": 1.5}' % i) for i in range(30)])
    consumer.wait_for(lambda: consumer.records() == 30, 60, "the records")
    assert broker._process is not None
    os.kill(broker._process.pid, signal.SIGSTOP)
    time.sleep(0.5)  # frozen: the consumer's requests go unanswered
    return consumer, db


def test_sigterm_stops_within_the_broker_timeout(
    frozen: tuple[LocalBroker, Kafka], tmp_path: Path
) -> None:
    consumer, db = _running(frozen, tmp_path)
    signalled = time.monotonic()
    consumer.send(signal.SIGTERM)
    assert consumer.finish(60) == 0, consumer.output()
    assert time.monotonic() - signalled < 25
    assert consumer.errors == [f"warning: {LATE}"], consumer.output()
    assert consumer.lines[-1].endswith("(stopped: SIGTERM received)")
    assert query(db, "SELECT status, rows_total, message FROM ingestion_runs") == [
        ("completed", 30, f"stopped: SIGTERM received; {LATE}")
    ]
    assert query(db, "SELECT count(*) FROM raw_data") == [(30,)]


def test_a_second_signal_exits_at_once_while_leaving(
    frozen: tuple[LocalBroker, Kafka], tmp_path: Path
) -> None:
    consumer, db = _running(frozen, tmp_path)
    consumer.send(signal.SIGTERM)
    time.sleep(1)  # leaving the group, which the frozen broker does not answer
    assert consumer.process.poll() is None
    again = time.monotonic()
    consumer.send(signal.SIGINT)
    assert consumer.finish(30) == 130, consumer.output()
    assert time.monotonic() - again < 5
    assert consumer.errors[-1] == "SIGINT again: exiting now; the in-flight batch is not written"
    assert query(db, "SELECT count(*) FROM raw_data") == [(30,)]
