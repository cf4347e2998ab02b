"""The DuckDB file: opening it (one writer or many readers), transactions, Arrow appends.

A Store may be shared by threads (the API server's request handlers and its Kafka consumer):
they take turns through ``lock``, which a transaction holds until it ends, so no statement of
another thread lands inside it. ``cursor()`` gives a thread its own connection to the same
open database, which reads committed data without waiting for the writer.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from engine import interrupts
from engine.errors import Remedy, StoreError, StoreLockedError
from engine.store import raw_codec
from engine.store.connect import connect, quiet
from engine.store.ddl import quote
from engine.store.disk_full import DISK_FULL, write_failure
from engine.store.layout import check_layout, ensure_layout
from engine.store.long_values import LongValues
from engine.store.overrides import Overrides
from engine.store.paths import check_path, database_path, remove_unused
from engine.store.row_groups import RowGroups, in_row_groups
from engine.store.writeback import background_sync

# A file run: DuckDB on every core (its default), appending whole row groups (see
# ``row_groups``), with a small cache: the buffer pool would only hold blocks just written.
BULK_LOAD = {"memory_limit": "128MB"}
# A database shared with readers (the API server): an upload keeps to one thread, leaving the
# others to the readers, and does not shrink the memory limit, which is theirs too.
SHARED_BULK_LOAD = {"threads": "1"}
# Memory DuckDB keeps for its 256 KiB blocks instead of returning it to the system when a
# block has been written out: without it, every block an append fills is a fresh allocation
# (page faults and zeroing) -- measured on a 10M-row run: 1.04M page faults and 3.2 s of
# system time without, 0.58M and 1.9 s with; the run 10-15% faster. Taken as it is used (not
# at open), then held for as long as the database is open.
BLOCK_ALLOCATOR = "128MB"
# The read commands' cap. Sorts and joins spill past it, but an errors export needs some
# single allocations of tens of MB (its lists of errors): at 256 MB one of 333k invalid rows
# ran out of memory.
READ_MEMORY = "512MB"


def private_spill(beside: Path) -> str:
    """The spill directory of this process's reading connections, next to ``beside``.

    DuckDB lets a connection with external access off read and write its spill directory;
    its default (``<db>.tmp``) is shared by every process on the database and may hold
    anything, so readers spill into a directory named for this process (one name for all
    its readers: DuckDB refuses a second connection to a file with other settings), which
    DuckDB makes only when a query spills and removes when the database closes. One a
    killed reader left (``kill -9`` while spilling) is removed here, by the next reader."""
    _remove_orphans(beside)
    return f"{beside}.read-{os.getpid()}-{_PROCESS_TOKEN}.tmp"


_PROCESS_TOKEN = secrets.token_hex(8)
_ORPHAN = re.compile(r"\.read-(\d+)-[0-9a-f]{16}\.tmp")


def _remove_orphans(beside: Path) -> None:
    """Spill directories of readers of ``beside`` whose process is gone."""
    with contextlib.suppress(OSError):
        for found in beside.parent.glob(f"{glob.escape(beside.name)}.read-*.tmp"):
            match = _ORPHAN.fullmatch(found.name[len(beside.name) :])
            if match is None or int(match[1]) == os.getpid():
                continue
            try:
                os.kill(int(match[1]), 0)
            except ProcessLookupError:
                shutil.rmtree(found, ignore_errors=True)
            except OSError:  # alive, someone else's
                continue


LOCK_PID = re.compile(r"Conflicting lock is held in .*?\(PID (\d+)\)")


class Changes:
    """A count of the changes made through a database's writing connection, shared by its
    cursors: what a reader read is still current while the count has not moved.

    Counted when they become visible to readers: a statement outside a transaction once it
    has run, a transaction once its commit has returned (DuckDB may checkpoint inside the
    commit, and reads wait for that: a server can answer from what it has meanwhile).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def bump(self) -> None:
        with self._lock:
            self.count += 1


def _open(
    path: Path, read_only: bool, config: dict[str, Any], *, created: bool
) -> duckdb.DuckDBPyConnection:
    """``created``: whether this open makes the file (removed again if the open fails)."""
    try:
        return connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        if created:  # a file DuckDB began and could not write is nobody's database
            remove_unused(path)
        if DISK_FULL in str(exc):
            raise write_failure(path, exc) from exc
        found = LOCK_PID.search(str(exc))
        if isinstance(exc, duckdb.IOException) and (found or "Could not set lock" in str(exc)):
            raise StoreLockedError(path, int(found.group(1)) if found else None) from exc
        raise StoreError(path, f"cannot open the database: {exc}") from exc


def _check_codec(con: duckdb.DuckDBPyConnection, path: Path, wanted: str) -> None:
    found = raw_codec.stored_codec(con)
    if found != wanted:
        raise StoreError(
            path,
            f"the database stores raw text {found}, not {wanted}",
            hint=Remedy(
                f"rewrite it with compact {{}} {wanted}, or leave out the option", "raw_compression"
            ),
        )


class Store:
    """One DuckDB connection. Writers create the shared tables; readers never write."""

    lock: threading.RLock
    created = False  # whether this open made the database file (``refuse_if_new``)

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        memory_limit: str = "256MB",
        bulk_settings: Mapping[str, str] = BULK_LOAD,
        raw_compression: str | None = None,
        create: bool = True,
    ) -> None:
        """``raw_compression``: how a new file compresses the raw text (``raw_codec``); for
        an existing file, it must be the file's (None: whatever the file has). ``create``:
        False for commands that work on what is stored (a mistyped path is an error, not a
        new empty database)."""
        self.path = database_path(path)
        self.read_only = read_only
        self.bulk_settings = dict(bulk_settings)
        check_path(self.path, may_create=create and not read_only)
        # Readers are capped too: DuckDB's default (80% of the machine's memory) let an
        # export's buffer pool grow with the table (1.4 GB for 1.1M error rows).
        config: dict[str, Any] = {"memory_limit": READ_MEMORY if read_only else memory_limit}
        if read_only:
            config["temp_directory"] = private_spill(self.path)
        else:
            config["block_allocator_memory"] = BLOCK_ALLOCATOR
        self.created = not read_only and not self.path.exists()
        self.con = _open(self.path, read_only, config, created=self.created)
        interrupts.register(self.con)  # a signal ends its query (``engine.interrupts``)
        self.lock = threading.RLock()
        self.changes = Changes()
        self._counts_changes = not read_only  # cursors (readers) do not
        self._in_transaction = False
        self._long = LongValues()  # a transaction's long values (``long_values``)
        self.overrides = Overrides(config)
        # error_rules ids by (fingerprint, a validator's rules), for this connection's writes
        # (``engine.store.rules``): forgotten when a transaction rolls back.
        self.rule_ids: dict[tuple[str, tuple[Any, ...]], tuple[int, ...]] = {}
        self._row_groups: RowGroups | None = None  # while a bulk load appends
        try:
            if read_only:
                check_layout(self.con, self.path)
            else:
                with self.writing():
                    ensure_layout(
                        self.con, self.path, raw_compression or raw_codec.DEFAULT, create=create
                    )
                if raw_compression is not None:
                    _check_codec(self.con, self.path, raw_compression)
        except BaseException:
            interrupts.unregister(self.con)
            self.con.close()
            raise

    def refuse_if_new(self) -> None:
        """For work on what is stored (replay, prune, delete a run): refuse a database this
        open made that holds no run yet, a mistyped path (the commands open with
        ``create=False``; ``Store(path)`` creates), rather than report nothing done."""
        if self.created and not self.rows("SELECT 1 FROM ingestion_runs LIMIT 1"):
            raise StoreError(
                self.path,
                "no such database file (this Store's open created it)",
                hint="check the path; open it with Store(path, create=False)",
            )

    @classmethod
    def over(cls, con: duckdb.DuckDBPyConnection, path: str | Path) -> Store:
        """A reader's Store over a connection made elsewhere: the lake's reader builds an
        in-memory database whose views read Delta tables (``engine.lake.reader``)."""
        store = object.__new__(cls)
        store.con = con
        interrupts.register(con)
        store.path = Path(path)
        store.read_only = True
        store.bulk_settings = {}
        store.lock = threading.RLock()
        store.changes = Changes()
        store._counts_changes = False
        store._in_transaction = False
        store.overrides = Overrides({})
        store.rule_ids = {}
        store._row_groups = None
        return store

    def cursor(self) -> Store:
        """Another connection to this open database, for another thread of this process.

        It has its own transactions: it sees what is committed, never waits for ``lock``,
        and is closed with ``close()`` (or when this Store closes).
        """
        other = object.__new__(Store)
        other.path = self.path
        other.read_only = self.read_only
        other.bulk_settings = self.bulk_settings
        other.overrides = self.overrides
        other.changes = self.changes
        other._counts_changes = False
        other._in_transaction = False
        other.rule_ids = {}
        other._row_groups = None
        with self.lock:
            other.con = quiet(self.con.cursor())
        other.lock = threading.RLock()
        return other

    def close(self) -> None:
        interrupts.unregister(self.con)
        with self.writing():  # closing checkpoints: it writes
            self.con.close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Writes whose DuckDB failure (a full disk, an I/O error, a database DuckDB gave up
        on) is a runtime failure: a StoreWriteError naming the file, not a traceback."""
        try:
            yield
        except duckdb.Error as exc:
            raise write_failure(self.path, exc) from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all (other threads wait for it)."""
        with self.lock:
            self.con.begin()
            self._in_transaction = True
            self._long = LongValues()
            try:
                try:
                    yield
                    self.flush_held()
                except BaseException:
                    self.rule_ids.clear()
                    if self._row_groups is not None:
                        self._row_groups.clear()
                    # A signal that lands while ``with`` enters or leaves this block leaves it
                    # to the garbage collector, which may run it once the connection is closed
                    # (closing rolled the transaction back): a traceback was printed.
                    with suppress(duckdb.ConnectionException):
                        self.con.rollback()
                    raise
                self.con.commit()
            finally:
                self._in_transaction = False
                self._long.close(self)
            self._changed()

    def _changed(self) -> None:
        if self._counts_changes and not self._in_transaction:
            self.changes.bump()

    def overriding(self, settings: Mapping[str, str]) -> AbstractContextManager[None]:
        """Database-wide DuckDB settings while a session runs (see ``Overrides``)."""
        return self.overrides.applied(self, settings)

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Settings for a file run (``bulk_settings``), whose appends inside a transaction go
        to DuckDB in whole row groups, on all its threads (``row_groups``); the file synced
        to disk in the background (see ``writeback``)."""
        with self.overriding(self.bulk_settings), background_sync(self.path):
            threads = int(self.rows("SELECT current_setting('threads')")[0][0])
            self._row_groups = RowGroups(threads)
            try:
                yield
            finally:
                self._row_groups = None

    def execute(self, query: str, parameters: list[Any] | None = None) -> None:
        with self.lock:
            self.con.execute(query, parameters or [])
            self._changed()

    def rows(self, query: str, parameters: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.lock:
            found = self.con.execute(query, parameters or []).fetchall()
            self._changed()
            return found

    def frame(self, query: str, parameters: list[Any] | None = None) -> pl.DataFrame:
        """A query result as a Polars frame (DuckDB 2: ``.pl()`` lives on relations)."""
        with self.lock:
            if parameters:
                table = self.con.execute(query, parameters).to_arrow_table()
            else:
                table = self.con.sql(query).to_arrow_table()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def frame_over(self, name: str, data: pl.DataFrame, query: str) -> pl.DataFrame:
        """Run ``query`` with ``data`` visible as table ``name`` (without registering it)."""
        arrow = data.to_arrow(compat_level=pl.CompatLevel.newest())
        with self.lock:
            relation = self.con.from_arrow(arrow).query(name, query)
            assert relation is not None
            table = relation.to_arrow_table()
        result = pl.from_arrow(table)
        assert isinstance(result, pl.DataFrame)
        return result

    def append(
        self,
        table: str,
        frame: pl.DataFrame,
        *,
        run_id: int | None = None,
        replace: Mapping[str, str] | None = None,
    ) -> None:
        """Append a batch as one Arrow scan; columns matched by name (a column the frame
        lacks gets its default, NULL). ``run_id``, when given, is added by DuckDB as a
        constant column, and ``replace`` computes columns in SQL from the frame's own (no
        work for the caller's thread). In a bulk load's transaction, rows beyond the last
        whole row groups wait for the next append or the commit (``row_groups``)."""
        if frame.height == 0:
            return
        if self._row_groups is None or not self._in_transaction:
            self._insert(table, frame, run_id, replace)
            return
        for part in self._row_groups.take(table, frame, run_id, replace or {}):
            self._insert(table, in_row_groups(part.frame), part.run_id, dict(part.replace))

    def flush_held(self, table: str | None = None) -> None:
        """Append the rows a bulk load holds back (of one table, or all): before reading
        the table in the same transaction, and before the commit."""
        if self._row_groups is None:
            return
        for name, part in self._row_groups.rest(table):
            self._insert(name, in_row_groups(part.frame), part.run_id, dict(part.replace))

    def _insert(
        self,
        table: str,
        frame: pl.DataFrame,
        run_id: int | None,
        replace: Mapping[str, str] | None,
    ) -> None:
        # DuckDB reads the frame's Arrow C stream (a record batch per chunk) by a replacement
        # scan of the local name: no pyarrow on the way (importing pyarrow.dataset, which
        # DuckDB uses to scan pyarrow tables, costs a tenth of a second at start-up), and
        # nothing registered (con.register() of a frame kept memory alive after unregister).
        # The name is no table's: a table called like the local name would be read instead.
        __ingest_rows__ = frame.__arrow_c_stream__()  # noqa: F841 - read by DuckDB
        constant = "" if run_id is None else f"{int(run_id)}::BIGINT AS run_id, "
        replaced = ", ".join(f"{sql} AS {quote(name)}" for name, sql in (replace or {}).items())
        columns = f"* REPLACE ({replaced})" if replaced else "*"
        with self.lock:
            if self._in_transaction:
                self._long.add(self, frame)
            self.con.execute(
                f"INSERT INTO {quote(table)} BY NAME SELECT {constant}{columns} FROM __ingest_rows__"
            )
            self._changed()

    def table_columns(self, table: str) -> dict[str, str]:
        """The table's columns and types; ``table`` in any case, as DuckDB's names are."""
        rows = self.rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE lower(table_name) = lower(?) ORDER BY ordinal_position",
            [table],
        )
        return {name: kind for name, kind in rows}

    def spelling(self, table: str) -> str:
        """The table as the database spells it (its names ignore case), or ``table``."""
        rows = self.rows(
            "SELECT table_name FROM information_schema.tables "
            "WHERE lower(table_name) = lower(?) ORDER BY table_name LIMIT 1",
            [table],
        )
        return str(rows[0][0]) if rows else table
