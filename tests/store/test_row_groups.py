"""Rows held back for whole row groups are bounded by bytes too.

A 400 MB file of 2,000-character rows peaked at 1.25 GB: the held unit (245,760 rows a table)
weighed about 500 MB a table (an independent attack; 0.76 GB since). Short rows still reach
DuckDB in whole row groups (tests/store/test_layout.py), and what a run stores does not change.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from engine.pipeline import RunOptions, ingest_file
from engine.store import row_groups
from engine.store.row_groups import ROW_GROUP, RowGroups
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import query


def rows(first: int, count: int, width: int) -> pl.DataFrame:
    return pl.DataFrame({"row_number": range(first, first + count), "raw": ["x" * width] * count})


def test_held_rows_past_held_bytes_are_appended_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(row_groups, "HELD_BYTES", 1 << 20)
    groups = RowGroups(threads=1)
    assert list(groups.take("t", rows(0, 100, 1_000), 1, {})) == []  # 100 KB: held
    out = list(groups.take("t", rows(100, 1_100, 1_000), 1, {}))  # 1.2 MB: all of it
    assert [p.frame["row_number"].to_list() for p in out] == [list(range(1_200))]
    assert groups.rest() == []
    # Short rows: whole row groups only, the rest held.
    out = list(groups.take("u", rows(0, ROW_GROUP + 5, 1), 1, {}))
    assert [p.frame.height for p in out] == [ROW_GROUP]
    assert [(name, p.frame.height) for name, p in groups.rest()] == [("u", 5)]


STORED = (
    "SELECT * EXCLUDE (run_id) FROM processed_data ORDER BY row_number",
    "SELECT * EXCLUDE (run_id) FROM error_details ORDER BY ALL",
    "SELECT * EXCLUDE (run_id) FROM raw_data ORDER BY row_number",
    "SELECT row_number FROM source_rows ORDER BY rowid",
)


def test_a_run_of_long_rows_stores_the_same_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.csv"
    lines = ["external_id,amount,currency,source_channel,timestamp"]
    for i in range(6_000):
        amount = "-1" if i % 7 == 0 else f"{i}.5"
        lines.append(f"{'L' * 500}-{i},{amount},EUR,web,2024-05-01T10:00:00")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stored = []
    for held in (1 << 20, 1 << 40):
        monkeypatch.setattr(row_groups, "HELD_BYTES", held)
        db = tmp_path / f"held-{held}.duckdb"
        with Store(db) as store:
            ingest_file(store, path, Transaction, RunOptions(block_size=256 << 10))
        stored.append([query(db, sql) for sql in STORED])
    assert stored[0] == stored[1]
    assert len(stored[0][0]) == 6_000 - 858 and len(stored[0][1]) == 858
    assert stored[0][3] == [(n,) for n in range(1, 6_001)]


def test_a_frame_in_two_chunks_reaches_duckdb_one_row_group_a_chunk() -> None:
    """Each chunk is one row group, the one spanning the frame's two chunks included (the
    frame is no longer made one chunk first), with the rows in order."""
    first = rows(0, 200_000, 8).rechunk()
    second = rows(200_000, 2 * ROW_GROUP + 50_000, 8).rechunk()
    frame = pl.concat([first, second], rechunk=False)
    assert frame.n_chunks() == 2

    grouped = row_groups.in_row_groups(frame)

    height = 200_000 + 2 * ROW_GROUP + 50_000
    assert grouped.n_chunks() == 5
    for name in ("row_number", "raw"):
        lengths = list(grouped.get_column(name).chunk_lengths())
        assert lengths == [ROW_GROUP] * 4 + [height - 4 * ROW_GROUP]
    assert grouped.equals(frame)
    assert grouped["row_number"].to_list() == list(range(height))
