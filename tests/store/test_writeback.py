"""The background sync that keeps a long run's commit from waiting on the disk."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest.mock import patch

import pytest

from engine.pipeline import RunOptions, ingest_file
from engine.store import writeback
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import DATA

OPEN_FOR_WRITING = """
import sys, duckdb
try:
    duckdb.connect(sys.argv[1])
except duckdb.IOException as exc:
    print("locked" if "Could not set lock" in str(exc) else f"other: {exc}")
else:
    print("opened")
"""


def second_writer(path: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", OPEN_FOR_WRITING, str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "db-sync"]


def test_duckdbs_own_descriptor_is_synced_until_the_block_ends(tmp_path: Path) -> None:
    synced: list[str] = []
    called = threading.Event()

    def fake_sync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        called.set()

    with Store(tmp_path / "s.duckdb") as store, patch.object(writeback, "_sync", fake_sync):
        with writeback.background_sync(store.path, every_s=0.01):
            assert called.wait(timeout=10)
        assert not sync_threads()
        count = len(synced)
        time.sleep(0.1)  # ten intervals: a thread still running would have synced again
        assert len(synced) == count
        assert set(synced) == {os.path.realpath(store.path)}


def test_the_database_stays_locked_against_other_processes(tmp_path: Path) -> None:
    """Closing any descriptor of the file would drop DuckDB's lock (POSIX locks)."""
    with Store(tmp_path / "s.duckdb") as store:
        assert second_writer(store.path) == "locked"
        with writeback.background_sync(store.path, every_s=0.01):
            time.sleep(0.1)
        assert second_writer(store.path) == "locked"
        ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        assert second_writer(store.path) == "locked"
    assert second_writer(tmp_path / "s.duckdb") == "opened"


def test_a_file_not_open_here_is_not_synced(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    path.write_bytes(b"x")
    assert writeback.open_descriptor(path) is None
    with open(path, "rb") as fh:
        assert writeback.open_descriptor(path) == fh.fileno()


def test_the_block_error_propagates_and_the_thread_stops(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), writeback.background_sync(tmp_path / "x"):
        raise RuntimeError("boom")
    assert not sync_threads()
