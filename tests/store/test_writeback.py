"""The background sync that keeps a long run's commit from waiting on the disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from unittest.mock import patch

import pytest

from engine.store import writeback


def test_the_file_is_synced_in_the_background_until_the_block_ends(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    path.write_bytes(b"x")
    synced: list[int] = []
    called = threading.Event()

    def fake_sync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        called.set()

    with patch.object(writeback, "_sync", fake_sync):
        with writeback.background_sync(path, every_s=0.01):
            assert called.wait(timeout=10)
        count = len(synced)
        assert set(synced) == {path.stat().st_ino}
        assert not [t for t in threading.enumerate() if t.name == "db-sync"]
        assert len(synced) == count  # stopped with the block


def test_no_file_no_thread(tmp_path: Path) -> None:
    with writeback.background_sync(tmp_path / "missing.duckdb", every_s=0.01):
        assert not [t for t in threading.enumerate() if t.name == "db-sync"]


def test_the_block_error_propagates_and_the_thread_stops(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    path.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="boom"), writeback.background_sync(path):
        raise RuntimeError("boom")
    assert not [t for t in threading.enumerate() if t.name == "db-sync"]
