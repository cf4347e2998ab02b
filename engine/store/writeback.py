"""Getting a growing database file onto the disk while a long transaction appends to it.

DuckDB writes a big transaction's row groups into the file as they fill, but the kernel keeps
them as dirty pages (gigabytes, on a machine with plenty of memory) until DuckDB's fsync at
commit, which then waits for all of them: 0.6 s of a 10M-row run's commit, with both cores
idle. A background thread syncs the file every half second meanwhile, so the commit finds
little left to write (measured 0.2 s). The thread only waits on the disk; durability is
still the commit's fsync.

It syncs DuckDB's own descriptor for the file (found in /proc/self/fd) and never opens the
file itself: closing any descriptor of a file drops the process's POSIX locks on it, and
DuckDB's lock is what keeps a second process from opening the database for writing.
Without /proc (not Linux) nothing is synced here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SYNC_EVERY_S = 0.5
FDS = Path("/proc/self/fd")
_sync = getattr(os, "fdatasync", os.fsync)


def open_descriptor(path: Path) -> int | None:
    """A descriptor this process already has open on ``path`` (Linux), or None."""
    target = os.path.realpath(path)
    try:
        entries = list(FDS.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            if os.readlink(entry) == target:
                return int(entry.name)
        except (OSError, ValueError):  # closed meanwhile, or not a descriptor number
            continue
    return None


@contextmanager
def background_sync(path: Path, every_s: float = SYNC_EVERY_S) -> Iterator[None]:
    """Sync ``path`` to disk every ``every_s`` seconds until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_s):
            fd = open_descriptor(path)  # looked up each time: never a stale number
            if fd is None:
                continue
            try:
                _sync(fd)
            except OSError:
                continue

    thread = threading.Thread(target=run, name="db-sync", daemon=True)
    try:
        thread.start()
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
