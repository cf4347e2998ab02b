"""A database write that failed: one line naming the database and the cause, and, after a
full disk, the space the failed transaction took given back to the file system."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from engine.errors import StoreWriteError
from engine.store.connect import connect

DISK_FULL = "No space left on device"
DISK_FULL_PROBLEM = "cannot write the database: the disk is full"


def give_back_space(path: Path) -> None:
    """After a write failed on a full disk: the blocks the failed transaction took are free,
    but stay in the file until a checkpoint on a fresh connection writes something, so the
    run the error message suggests ("free some space ... and run again") failed once more
    on the space they held. A trivial change and a checkpoint truncate them."""
    with contextlib.suppress(duckdb.Error, OSError):
        con = connect(str(path))
        try:
            con.execute("CREATE TABLE __give_back_space (x INTEGER)")
            con.execute("DROP TABLE __give_back_space")
            con.execute("CHECKPOINT")
        finally:
            con.close()


@contextmanager
def giving_back_space(path: Path | None) -> Iterator[None]:
    """Around a Store's whole use (opened inside): once it is closed after a full disk,
    ``give_back_space``."""
    try:
        yield
    except StoreWriteError as exc:
        if path is not None and DISK_FULL_PROBLEM in exc.problem:
            give_back_space(path)
        raise


def write_failure(path: Path, exc: duckdb.Error) -> StoreWriteError:
    """A DuckDB error met while writing, as one line naming the database and the cause."""
    text = str(exc)
    if DISK_FULL in text:
        return StoreWriteError(
            path,
            DISK_FULL_PROBLEM,
            hint="free some space on its disk and run again; what was committed before is intact",
        )
    cause = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return StoreWriteError(path, f"cannot write the database ({cause})")


def as_write_failure(path: Path, exc: BaseException) -> BaseException:
    """``exc``, or for a DuckDB error met while writing (a full disk...) the one line a file
    run gives (``write_failure``)."""
    return write_failure(path, exc) if isinstance(exc, duckdb.Error) else exc
