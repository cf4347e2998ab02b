"""What is at a database's path before DuckDB opens it, and the path DuckDB will open."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from engine.errors import Remedy, StoreError


def database_path(path: str | Path) -> Path:
    """The file DuckDB opens for ``path``: it reads ``~`` as the home directory and a
    ``file:`` URI as its path, where Python's Path does not, so the checks before opening
    and the messages name that file (a ``summary --db '~/x.duckdb'`` said no such file)."""
    text = str(path)
    if text.startswith("file:"):  # as DuckDB reads it: no percent-decoding, the host dropped
        text = text[5:]
        if text.startswith("//"):
            text = "/" + text[2:].partition("/")[2]
    return Path(text).expanduser()


MAGIC = b"DUCK"  # at byte 8 of every DuckDB database file


def is_duckdb_file(path: Path) -> bool:
    """Whether ``path`` is a file that starts as a DuckDB database does."""
    try:
        with path.open("rb") as fh:
            return fh.read(12)[8:12] == MAGIC
    except OSError:
        return False


def _check_is_database(path: Path) -> None:
    """Refuse an existing file that is not a DuckDB database: DuckDB opens a CSV, Parquet or
    JSON file as an in-memory database holding a view of it, where a run would "complete"
    and keep nothing. An empty or unreadable file is left to DuckDB, which says why."""
    try:
        with path.open("rb") as fh:
            head = fh.read(12)
    except OSError:
        return
    if head and head[8:12] != MAGIC:
        raise StoreError(
            path,
            "not a DuckDB database file (a CSV, Parquet or JSON file there would be opened "
            "as a view of its data in memory, and nothing written would be kept)",
            hint=Remedy("{} names the database; give a data file as the input", "db"),
        )


def remove_unused(path: Path) -> None:
    """Remove an empty database file no process holds: one DuckDB is creating right now is
    locked (``fcntl``, as DuckDB locks its files), and left alone."""
    with contextlib.suppress(OSError), path.open("rb+") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fh.fileno()).st_size == 0:
            path.unlink()


def check_path(path: Path, *, may_create: bool) -> None:
    """What is at ``path`` before DuckDB opens it. Nothing: a new database, if ``may_create``
    (else a mistyped path, not a new empty database). An empty file: what a creation that
    failed (a full disk) leaves, taken as nothing when no process holds it. Any other file
    must be a DuckDB database (``_check_is_database``)."""
    if not path.exists():
        if not may_create:
            raise StoreError(
                path,
                "no such database file",
                hint=Remedy("run an ingestion first or pass {}", "db"),
            )
    elif path.is_file() and path.stat().st_size == 0:
        if not may_create:
            raise StoreError(path, "an empty file, not a DuckDB database")
        remove_unused(path)
    elif path.is_file():
        _check_is_database(path)
