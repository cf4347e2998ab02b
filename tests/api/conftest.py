"""A real server: ``cli.py serve`` in a subprocess on 127.0.0.1, and HTTP clients for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.streaming.local_broker import free_port
from tests.conftest import ROOT

START_TIMEOUT_S = 60.0
VOLATILE = ("duration_s", "rows_per_s", "started_at")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    db: Path
    workdir: Path
    log: Path

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def rss_bytes(self) -> int:
        """The server process's resident memory right now (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal the server and wait for it to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the server did not stop; log:\n{self.log_text()}") from None
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(workdir: Path, *options: str) -> Server:
    """Start ``cli.py serve`` with ``options`` on a free port; wait until it answers. A port
    another process took meanwhile (a shared machine) is refused at start: tried again."""
    for attempt in range(3):
        try:
            return _start_server(workdir, *options)
        except PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class PortTaken(AssertionError):
    pass


def _start_server(workdir: Path, *options: str) -> Server:
    port = free_port()
    db = workdir / "api.duckdb"
    log = workdir / "server.log"
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "serve",
        "--db",
        str(db),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *options,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    server = Server(f"http://127.0.0.1:{port}", process, db, workdir, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            if f"cannot listen on 127.0.0.1:{port} (Address already in use)" in server.log_text():
                raise PortTaken(port)
            raise AssertionError(f"the server exited at start; log:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.url}/api/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop(signal.SIGKILL)
            raise AssertionError(f"the server did not answer; log:\n{server.log_text()}")
        time.sleep(0.1)


ServerFactory = Callable[..., Server]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start servers for a test module (``servers("--data-dir", d)``); all stopped after it."""
    started: list[Server] = []

    def start(*options: str, workdir: Path | None = None) -> Server:
        server = start_server(workdir or tmp_path_factory.mktemp("server"), *options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def stable(value: Any) -> Any:
    """A response body with its timing fields replaced by their type (checked >= 0 or ISO)."""
    if isinstance(value, list):
        return [stable(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in VOLATILE and item is not None:
            if key == "started_at":
                assert isinstance(item, str) and item.endswith("Z"), item
                out[key] = "<timestamp>"
            else:
                assert isinstance(item, float) and item >= 0, (key, item)
                out[key] = "<seconds>" if key == "duration_s" else "<rate>"
        else:
            out[key] = stable(item)
    return out
