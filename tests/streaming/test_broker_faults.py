"""--give-up-after against a broker killed mid-run and one that stalls, each a broker of its
own (an independent attack: after a kill -9, messages librdkafka had fetched before made it
say "reachable again" at once, and the consumer then never gave up; a stalled broker, its
connections open, was never reported at all, and librdkafka's timeout lines reached stderr).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.streaming.local_broker import LocalBroker
from tests.conftest import ROOT
from tests.streaming.conftest import Kafka, Record
from tests.streaming.processes import ConsumerProcess

GAVE_UP = "error: kafka: the brokers at {} stayed unreachable for 4 s ("


def _records(n: int) -> list[Record]:
    note = "n" * 200
    return [
        Record(json.dumps({"external_id": f"T{i}", "amount": 1.5, "note": note}).encode())
        for i in range(n)
    ]


def _consumer(broker: LocalBroker, db: Path, *config: str) -> ConsumerProcess:
    kafka = Kafka(broker)
    topic = kafka.topic()
    kafka.send(topic, _records(30_000))
    options = ["--give-up-after", "4", "--max-records", "500", "--max-wait-ms", "100"]
    for item in config:
        options += ["--kafka-config", item]
    consumer = ConsumerProcess(broker.bootstrap_servers, topic, kafka.group(), db, *options)
    consumer.wait_for(lambda: len(consumer.batches()) >= 2, 60, "two batches")
    return consumer


def test_a_killed_broker_is_given_up_on(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "tansu.log").start()
    try:
        consumer = _consumer(broker, tmp_path / "k.duckdb")
        assert broker._process is not None
        os.kill(broker._process.pid, signal.SIGKILL)  # while librdkafka holds fetched messages
        killed = time.monotonic()
        assert consumer.finish(60) == 1, consumer.output()
    finally:
        broker.stop()
    assert time.monotonic() - killed < 30
    assert consumer.errors[-1].startswith(GAVE_UP.format(broker.bootstrap_servers)), (
        consumer.output()
    )
    assert not [line for line in consumer.errors if "reachable again" in line], consumer.output()


def test_a_stalled_broker_is_reported_and_given_up_on(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "tansu.log").start()
    try:
        consumer = _consumer(broker, tmp_path / "s.duckdb", "socket.timeout.ms=3000")
        assert broker._process is not None
        os.kill(broker._process.pid, signal.SIGSTOP)  # connections open, nothing answered
        assert consumer.finish(90) == 1, consumer.output()
    finally:
        if broker._process is not None:
            os.kill(broker._process.pid, signal.SIGCONT)
        broker.stop()
    down = f"warning: kafka: the brokers at {broker.bootstrap_servers} are unreachable ("
    assert [line for line in consumer.errors if line.startswith(down)], consumer.output()
    assert consumer.errors[-1].startswith(GAVE_UP.format(broker.bootstrap_servers)), (
        consumer.output()
    )
    leaked = [line for line in consumer.errors if "REQTMOUT" in line or "SESSTMOUT" in line]
    assert leaked == [], consumer.output()


def test_a_name_that_does_not_resolve_is_said_once(tmp_path: Path) -> None:
    """librdkafka retries an unresolvable name and said so on every try (195 lines in the
    10 s before the consumer stopped; independent attack)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "consume", "--bootstrap-servers",
         "no-such-host.invalid:9092", "--topic", "t", "--group", "g", "--db",
         str(tmp_path / "n.duckdb")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith(
        "warning: kafka: the brokers at no-such-host.invalid:9092 are unreachable ("
    )
    assert "Failed to resolve" in lines[0]
    assert lines[1] == (
        "error: kafka: cannot reach the brokers at no-such-host.invalid:9092 (Failed to get "
        "metadata: Local: Broker transport failure) (check --bootstrap-servers and that the "
        "cluster is up)"
    )
