"""`cli.py consume` as a child process whose log lines are read as they come."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT
from tests.streaming.conftest import FAST_GROUP

BATCH = re.compile(r"^batch (\d+): ([\d,]+) records, .* lag ([\d,]+|unknown)")
PARTITION = re.compile(r"(\S+?)\[(\d+)\]")


class ConsumerProcess:
    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group: str,
        db: Path,
        *options: str,
        kafka_config: dict[str, str] = FAST_GROUP,
    ) -> None:
        argv = [
            sys.executable,
            "cli.py",
            "consume",
            "--bootstrap-servers",
            bootstrap_servers,
            "--topic",
            topic,
            "--group",
            group,
            "--db",
            str(db),
            *options,
        ]
        for key, value in kafka_config.items():
            argv += ["--kafka-config", f"{key}={value}"]
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._read, args=(self.process.stdout, self.lines), daemon=True
            ),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.errors), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.process.pid

    def batches(self) -> list[tuple[int, int, int | None]]:
        """(number, records, lag) per batch line so far."""
        found = []
        for line in list(self.lines):
            match = BATCH.match(line)
            if match:
                lag = None if match[3] == "unknown" else int(match[3].replace(",", ""))
                found.append((int(match[1]), int(match[2].replace(",", "")), lag))
        return found

    def records(self) -> int:
        return sum(records for _, records, _ in self.batches())

    def owned(self) -> set[int]:
        """Partitions owned now, from the assigned/revoked/lost lines."""
        owned: set[int] = set()
        for line in list(self.lines):
            if line.startswith("assigned: "):
                owned |= {int(p) for _, p in PARTITION.findall(line)}
            elif line.startswith(("revoked: ", "lost: ")):
                owned -= {int(p) for _, p in PARTITION.findall(line)}
        return owned

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None and not condition():
                self.finish(5)
                raise AssertionError(f"consumer exited while waiting for {what}: {self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.output()}")
            time.sleep(0.02)

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def finish(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def output(self) -> str:
        return "\n".join(["stdout:", *self.lines, "stderr:", *self.errors])
