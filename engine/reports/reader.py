"""Opening the DuckDB file for the read commands, and DuckDB errors as one-line messages."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.errors import ConfigError
from engine.reports.lockdown import lock_down, refusal
from engine.store import store as stores
from engine.store.ddl import RUNS
from engine.store.store import Store


def open_reader(path: str | Path, *, writable: Iterable[Path] = ()) -> Store:
    """A read-only Store that can reach nothing but the database file and ``writable`` (see
    ``lockdown``); fails with StoreLockedError while a writer holds the file.

    Timestamps are rendered in UTC whatever the machine's zone: the stored instants are UTC,
    and exports must not change with the laptop they were made on.
    """
    store = Store(path, read_only=True)
    try:
        lock_down(store, writable)
    except BaseException:
        store.close()
        raise
    return store


def query_error(exc: Exception) -> str:
    """A failed statement on a reader as one line: refused (it reached outside the database
    or changed a setting), or DuckDB's own message."""
    refused = refusal(exc)
    return f"refused: {refused}" if refused else f"failed: {duckdb_message(exc)}"


def out_of_memory(exc: Exception) -> ConfigError:
    """A read past the readers' memory cap (``READ_MEMORY``), as one line: DuckDB's first
    (its advice, ``SET memory_limit``, is for a session a reader cannot change)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
    return ConfigError(
        f"reading the database failed: {first}",
        hint=f"DuckDB's readers are capped at {stores.READ_MEMORY}",
    )


def duckdb_message(exc: Exception) -> str:
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
