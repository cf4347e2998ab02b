"""The test broker's start: its port is chosen free, then bound by Tansu a moment later."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from engine.streaming import local_broker
from engine.streaming.local_broker import LocalBroker


def test_a_port_taken_before_the_broker_binds_it_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may take the free port first (a shared machine): Tansu exited at start
    and every Kafka test of the session failed with it. It starts again on another port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        chosen = iter([busy])
        free = local_broker.free_port
        monkeypatch.setattr(local_broker, "free_port", lambda: next(chosen, None) or free())
        broker = LocalBroker(tmp_path / "tansu.log")
        assert broker.port == busy
        with broker:
            assert broker.port != busy
            assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
            admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
            assert admin.list_topics(timeout=10).brokers != {}
