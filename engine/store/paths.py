"""What is at a database's path before DuckDB opens it, and the path DuckDB will open."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from engine.errors import Remedy, StoreError


def database_path(path: str | os.PathLike[str]) -> Path:
    """The file DuckDB opens for ``path``: it reads ``~/`` as the home directory and a
    ``file:`` URI as its path, where Python's Path does not, so every command (and the
    export's check that ``-o`` is not the database) opens, checks and names that file (a
    ``summary --db '~/x.duckdb'`` said no such file; ``export -o ~/x.duckdb --db '~/x.duckdb'``
    overwrote the database). What DuckDB would read as a database kept in memory, and
    ``~user`` (which DuckDB reads as the caller's home), are refused."""
    text = str(path)
    if text.startswith("file:"):  # as DuckDB reads it: no percent-decoding, the host dropped
        text = text[5:]
        if text.startswith("//"):
            text = "/" + text[2:].partition("/")[2]
    if text.startswith(":memory:"):
        raise StoreError(Path(text), "an in-memory database keeps nothing", hint="give --db a file")
    if text.startswith("~") and text != "~" and not text.startswith("~/"):
        raise StoreError(
            Path(text),
            "a ~user path is not read (DuckDB reads ~ only as your own home directory)",
            hint="give the path in full",
        )
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
    must be a DuckDB database (``_check_is_database``); anything else there (a FIFO, on
    which DuckDB would wait forever; a device) is refused."""
    try:
        found: os.stat_result | None = path.stat()
    except FileNotFoundError:
        found = None
    except OSError as exc:  # a name too long, a path through a file, a symlink loop
        raise StoreError(path, f"cannot use this path: {exc.strerror}") from exc
    if found is None:
        if not may_create:
            raise StoreError(
                path,
                "no such database file",
                hint=Remedy("run an ingestion first or pass {}", "db"),
            )
    elif stat.S_ISREG(found.st_mode):
        if found.st_size:
            _check_is_database(path)
        elif not may_create:
            raise StoreError(path, "an empty file, not a DuckDB database")
        else:
            remove_unused(path)
    elif not stat.S_ISDIR(found.st_mode):  # a directory: DuckDB says so
        raise StoreError(path, "not a regular file (a FIFO, a device or a socket)")
