"""Opening the DuckDB file for the read commands, and DuckDB errors as one-line messages."""

from __future__ import annotations

from pathlib import Path

import duckdb

from engine.store.ddl import RUNS
from engine.store.store import Store


def open_reader(path: str | Path) -> Store:
    """A read-only Store (fails with StoreLockedError while a writer holds the file).

    Timestamps are rendered in UTC whatever the machine's zone: the stored instants are UTC,
    and exports must not change with the laptop they were made on.
    """
    store = Store(path, read_only=True)
    store.execute("SET TimeZone = 'UTC'")
    return store


def duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's message on one line, without the ``LINE 1: ... ^`` diagram."""
    parts: list[str] = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break
        if line.strip():
            parts.append(line.strip())
    return " ".join(parts)


def typed_tables(store: Store) -> list[str]:
    """The typed tables that runs wrote to and that exist, in order of first use."""
    rows = store.rows(f"SELECT target_table FROM {RUNS} GROUP BY target_table ORDER BY min(run_id)")
    return [str(row[0]) for row in rows if table_exists(store, str(row[0]))]


def table_exists(store: Store, table: str) -> bool:
    return bool(store.table_columns(table))
