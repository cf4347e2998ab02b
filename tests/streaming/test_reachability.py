"""A consumer whose brokers go away: one line when they do, one when they are back, and
``--give-up-after`` to stop (exit code 1, one line) instead of waiting forever.

librdkafka used to log each failed reconnection (about 15 ``Connection refused`` lines a
second, for as long as the broker was gone). The broker here is Tansu behind a TCP proxy
that the test can close (connections refused, as when a broker stops) and open again with
the broker's state intact; and, for the CLI, a Tansu that is simply stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.schemas import load_schema
from engine.store.store import Store
from engine.streaming.consumer import ConsumerSession
from engine.streaming.events import BatchWritten, BrokersBack, BrokersDown, Event
from engine.streaming.local_broker import LocalBroker, free_port
from engine.streaming.shutdown import StopRequest
from tests.conftest import ROOT, query
from tests.streaming.conftest import FAST_GROUP, Kafka, Record

# The last failure librdkafka gave when it found every broker down: the connection cut (a
# FIN, or a reset when the proxy closes a socket with unread bytes in it; or, when the
# group coordinator's request was being written as it closed, a broken pipe), or a
# reconnection refused.
FAILURE = (
    r"(Disconnected: connection closed by peer: receive 0 after POLLIN"
    r"|Disconnected: connection reset by peer"
    r"|GroupCoordinator: {0}: Send failed: Broken pipe"
    r"|Connect to ipv4#{0} failed: Connection refused)"
)
RECORD = b'{"external_id": "A", "amount": 5, "currency": "USD", "source_channel": "x", "timestamp": "2024-01-01T00:00:00Z"}'


class Proxy:
    """Forwards 127.0.0.1:``port`` to the broker; ``close`` refuses and cuts connections."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target = port, target
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[LocalBroker, Proxy]]:
    port = free_port()
    broker = LocalBroker(tmp_path / "tansu.log", advertised_port=port)
    proxy = Proxy(port, broker.port)
    proxy.open()
    with broker:
        yield broker, proxy
    proxy.close()


def test_one_line_down_one_line_back(proxied: tuple[LocalBroker, Proxy], tmp_path: Path) -> None:
    broker, proxy = proxied
    kafka = Kafka(broker)
    topic, group = kafka.topic(1), kafka.group()
    kafka.send(topic, [Record(RECORD)], partitions=1)
    events: list[Event] = []
    stop = StopRequest()
    logged: list[str] = []

    def on_event(event: Event) -> None:
        events.append(event)
        if isinstance(event, BatchWritten) and event.number == 1:
            proxy.close()  # the brokers go away after the first batch
            threading.Timer(6.0, proxy.open).start()  # ...and come back
        if isinstance(event, BrokersBack):
            kafka.send(topic, [Record(RECORD)], partitions=1)
        if isinstance(event, BatchWritten) and event.number == 2:
            stop.set("test done")

    settings = kafka.settings(topic, group, kafka_config=FAST_GROUP, max_wait_ms=100)
    with Store(tmp_path / "k.duckdb") as store:

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                logged.append(record.getMessage())

        handler = Collect()
        logging.getLogger("engine.streaming.kafka").addHandler(handler)
        try:
            summary = ConsumerSession(
                store, load_schema("transactions"), settings, on_event=on_event, stop=stop
            ).run()
        finally:
            logging.getLogger("engine.streaming.kafka").removeHandler(handler)
    down = [e for e in events if isinstance(e, BrokersDown)]
    back = [e for e in events if isinstance(e, BrokersBack)]
    assert len(down) == 1 and len(back) == 1, events
    assert re.fullmatch(
        rf"warning: kafka: the brokers at {broker.bootstrap_servers} are unreachable "
        rf"\({FAILURE.format(re.escape(broker.bootstrap_servers))}\); retrying",
        str(down[0]),
    ), down
    assert str(back[0]).startswith(
        f"kafka: the brokers at {broker.bootstrap_servers} are reachable again (after "
    )
    assert summary.tally.rows == 2
    assert not [line for line in logged if "Connection refused" in line], logged


def test_consume_gives_up_with_one_line(tmp_path: Path) -> None:
    """The CLI against a Tansu that is stopped mid-run: two lines, exit code 1."""
    broker = LocalBroker(tmp_path / "tansu.log").start()
    try:
        own = Kafka(broker)
        topic, group = own.topic(1), own.group()
        own.send(topic, [Record(RECORD)], partitions=1)
        db = tmp_path / "k.duckdb"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "cli.py"),
                "consume",
                "--bootstrap-servers",
                broker.bootstrap_servers,
                "--topic",
                topic,
                "--group",
                group,
                "--db",
                str(db),
                "--max-wait-ms",
                "100",
                "--give-up-after",
                "4",
                "--kafka-config",
                "session.timeout.ms=6000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while not process.stdout.readline().startswith("batch 1:"):
            assert time.monotonic() < deadline and process.poll() is None
    finally:
        broker.stop()
    out, err = process.communicate(timeout=120)
    servers = broker.bootstrap_servers
    reason = f"Connect to ipv4#{servers} failed: Connection refused"
    assert process.returncode == 1, err
    lines = err.splitlines()
    assert re.fullmatch(
        rf"warning: kafka: the brokers at {servers} are unreachable "
        rf"\({FAILURE.format(re.escape(servers))}\); retrying, giving up after 4 s",
        lines[0],
    ), lines
    assert lines[1:] == [
        f"error: kafka: the brokers at {servers} stayed unreachable for 4 s ({reason}); gave "
        "up (the batches written so far are kept; start the consumer again once the brokers "
        "are back)",
    ]
    # Closing after giving up revokes the partition (its in-flight messages dropped), unless
    # the group session timed out first: the partition is lost (one line on stdout either way).
    assert out in (
        "",
        f"lost: {topic}[0] (their in-flight messages were dropped, not written)\n",
        f"revoked: {topic}[0] (the consumer failed: in-flight messages dropped, not written)\n",
    )
    (run,) = query(db, "SELECT status, rows_total, message FROM ingestion_runs")
    assert run[:2] == ("failed", 1)
    assert run[2] == (
        f"BrokersUnreachableError: kafka: the brokers at {servers} stayed unreachable for 4 s "
        f"({reason}); gave up (the batches written so far are kept; start the consumer again "
        "once the brokers are back); its committed micro-batches are kept"
    )
