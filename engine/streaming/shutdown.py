"""Stopping a consumer session: on request, on the first SIGINT/SIGTERM, or at once on the second.

The first signal only sets a flag: the session stops fetching, writes its in-flight batch,
commits and closes. A second signal exits the process on the spot; that is safe because a
batch is one DuckDB transaction (the unwritten batch is fetched again by the next session).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StopRequest:
    """A thread-safe flag with the reason it was set."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install SIGINT/SIGTERM handlers for the duration (main thread only)."""
    stop = StopRequest()

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            os.write(2, f"{name} again: exiting now; the in-flight batch is not written\n".encode())
            os._exit(128 + signum)
        stop.set(f"{name} received")

    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handle) for sig in watched}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
