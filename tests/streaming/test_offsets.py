"""Stored offsets (no broker): an UPDATE moves the partitions that have a row, the upsert adds
the others, groups stay apart, each offset keeps its topic's id (NULL when the brokers gave
none, keeping one stored), and a rolled-back batch leaves them as they were."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store.store import Store
from engine.streaming.offsets import load_offsets, save_offsets
from engine.streaming.topic_ids import Stored


def stored(store: Store) -> list[tuple[object, ...]]:
    return store.rows(
        'SELECT group_id, topic, "partition", next_offset, run_id, topic_id FROM kafka_offsets '
        "ORDER BY ALL"
    )


def test_offsets_move_add_and_roll_back(tmp_path: Path) -> None:
    with Store(tmp_path / "o.duckdb") as store:
        with store.transaction():
            save_offsets(store, "g", {("t", 0): 5, ("t", 1): 7}, 1, {"t": "A"})
        with store.transaction():  # one known, one new
            save_offsets(store, "g", {("t", 0): 9, ("t", 2): 3}, 2, {"t": "A", "u": "C"})
        with store.transaction():  # both known, in a topic t created again (id B)
            save_offsets(store, "g", {("t", 0): 11, ("t", 1): 12}, 3, {"t": "B"})
            save_offsets(store, "h", {("t", 0): 1}, 3, {})  # brokers without ids
            save_offsets(store, "g", {("t", 2): 4}, 3, {})  # which keep the id stored
        assert stored(store) == [
            ("g", "t", 0, 11, 3, "B"),
            ("g", "t", 1, 12, 3, "B"),
            ("g", "t", 2, 4, 3, "A"),
            ("h", "t", 0, 1, 3, None),
        ]
        with pytest.raises(RuntimeError), store.transaction():
            save_offsets(store, "g", {("t", 0): 99, ("t", 5): 1}, 4, {"t": "D"})
            raise RuntimeError("the batch failed")
        assert load_offsets(store, "g", [("t", 0), ("t", 1), ("t", 2), ("t", 5)]) == {
            ("t", 0): Stored(11, "B"),
            ("t", 1): Stored(12, "B"),
            ("t", 2): Stored(4, "A"),
        }
        assert load_offsets(store, "h", [("t", 0)]) == {("t", 0): Stored(1, None)}
