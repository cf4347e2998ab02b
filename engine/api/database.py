"""The server's DuckDB database: one writer at a time, a few readers at once, and recovery.

DuckDB lets one process open a file for writing, so the server opens it once. Writers (an
ingest request, a Kafka micro-batch) take turns through the Store's lock: a file run holds
it for its whole transaction, a micro-batch for its own. Readers (summary, runs, exports,
health) never take it: each gets a fresh cursor, another connection to the same open
database that sees what is committed, so a long ingest does not hold up a report.

Readers share the database's memory with the writer, so at most ``readers`` of them run at
once (on two cores more would only share the CPU and add to the memory in use; the others
wait their turn), and a reader that still runs out of DuckDB's memory waits and tries again
rather than failing the request.

DuckDB invalidates a database after some failures (a checkpoint that cannot write, an out of
memory during a commit): every statement then fails until it is reopened. The first request
that meets such an error reopens it (``recover``): it waits for the readers and the writer
to let go, closes every connection, opens the file again (DuckDB replays what was
committed), marks the runs left running as failed, and the server carries on; ``/health``
says what happened. A database that cannot be reopened (the disk is still full) answers 503
until it can, retried at most once a second.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import duckdb

from engine.api.errors import BusyError, UnavailableError
from engine.errors import EngineError, StoreWriteError
from engine.store.runs import mark_interrupted
from engine.store.store import Store

LOG = logging.getLogger("engine.api")
T = TypeVar("T")

READERS = 4
OUT_OF_MEMORY_RETRIES = 6  # waits of 0.05 s doubling: about 3 s in all
REOPEN_INTERVAL_S = 1.0
LOCK_WAIT_S = 30.0
INVALIDATED = "database has been invalidated"


@dataclass(frozen=True)
class Reopened:
    at: datetime
    reason: str
    runs_failed: int  # runs left running, marked failed (Kafka sessions: interrupted)


def invalidated(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.FatalException) or INVALIDATED in str(exc)


def one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines)[:500] or type(exc).__name__


class Database:
    def __init__(self, opener: Callable[[], Store], *, readers: int = READERS) -> None:
        self._opener = opener
        self._slots = readers
        self._permits = threading.BoundedSemaphore(readers)
        # The health probe's own lane: it never waits behind long reads (exports).
        self._probe = threading.BoundedSemaphore(1)
        self._reopen_lock = threading.Lock()
        self._last_attempt = 0.0
        self.generation = 0
        self.writer: str | None = None  # what holds the writer, for the busy message
        self.reopened: Reopened | None = None
        self.unavailable: str | None = None  # why the database cannot be used right now
        self._cause = ""  # the failure that made it unavailable
        self.store: Store | None = None
        self._readers: Store | None = None
        self._attach(opener())

    def _attach(self, store: Store) -> None:
        # Reader cursors are made from this one, never from the writer's connection (making
        # a cursor touches its parent, which a running ingest may be using on another thread).
        readers = store.cursor()
        readers.execute("SET TimeZone = 'UTC'")
        self.store, self._readers = store, readers

    def changes(self) -> tuple[int, int]:
        """Where the database is: (reopenings, changes made since opened); a reader that
        saw the same pair saw the current committed state."""
        store = self.store
        return (self.generation, -1 if store is None else store.changes.count)

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def reader(self, *, probe: bool = False) -> Iterator[Store]:
        """A cursor for one request: committed data, timestamps in UTC, closed afterwards.
        ``probe``: a short check of the database, in a lane of its own."""
        with self._permit(self._probe if probe else self._permits):
            parent = self._available()[1]
            store = parent.cursor()
            try:
                store.execute("SET TimeZone = 'UTC'")
                yield store
            finally:
                store.close()

    def read(self, work: Callable[[Store], T], *, probe: bool = False) -> T:
        """``work`` on a reader cursor; again after a wait if DuckDB ran out of memory, and
        again on the reopened database if it had been invalidated. ``probe``: see ``reader``."""
        delay = 0.05
        attempt = 0
        while True:
            generation = self.generation
            try:
                with self.reader(probe=probe) as store:
                    return work(store)
            except duckdb.OutOfMemoryException as exc:
                attempt += 1
                if attempt > OUT_OF_MEMORY_RETRIES:
                    raise UnavailableError(
                        f"the database is out of memory ({one_line(exc)})",
                        hint="retry in a moment",
                    ) from exc
                LOG.warning("a read ran out of DuckDB's memory; trying again (%d)", attempt)
                time.sleep(delay)
                delay *= 2
            except duckdb.Error as exc:
                if not invalidated(exc) or attempt > OUT_OF_MEMORY_RETRIES:
                    raise
                attempt += 1
                self.recover(generation, exc)  # no-op when already reopened

    @contextmanager
    def _permit(self, permits: threading.BoundedSemaphore) -> Iterator[None]:
        permits.acquire()
        try:
            yield
        finally:
            permits.release()

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def writing(
        self, what: str, *, timeout_s: float, since: float | None = None
    ) -> Iterator[Store]:
        """The writer, for ``what``; a ``BusyError`` if it stays taken for ``timeout_s``
        (counted from ``since``, a ``time.monotonic()`` reading, when given)."""
        deadline = (time.monotonic() if since is None else since) + timeout_s
        while True:
            store = self._available()[0]
            if not store.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                holder = self.writer or "a Kafka micro-batch"
                raise BusyError(
                    f"the database is busy ({holder}) and stayed busy for {timeout_s:g} s",
                    hint="retry when it is done",
                )
            if store is self.store:
                break
            store.lock.release()  # reopened while waiting: take the new database's lock
        generation = self.generation
        self.writer = what
        failure: BaseException | None = None
        try:
            yield store
        except (duckdb.Error, StoreWriteError) as exc:
            # The engine says a failed write in one line (StoreWriteError); what DuckDB made
            # of it is its cause (a commit's checkpoint on a full disk invalidates the file).
            cause = exc.__cause__ if isinstance(exc, StoreWriteError) else exc
            if cause is None or not (
                invalidated(cause) or isinstance(cause, duckdb.OutOfMemoryException)
            ):
                raise
            failure = cause
        finally:
            self.writer = None
            store.lock.release()
        if failure is None:
            return
        if isinstance(failure, duckdb.OutOfMemoryException):
            raise UnavailableError(
                f"the database ran out of memory while {what} ({one_line(failure)}); "
                "the run was rolled back",
                hint="retry in a moment",
            ) from failure
        self.recover(generation, failure)
        raise UnavailableError(
            f"the database failed while {what} ({one_line(failure)}); the server reopens it",
            hint="see /api/v1/runs for whether the run was kept, and /api/v1/health",
        ) from failure

    # -- recovery --------------------------------------------------------------------------

    def _available(self) -> tuple[Store, Store]:
        """The writer's Store and the readers' parent, reopening a lost database if due."""
        store, readers = self.store, self._readers
        if store is not None and readers is not None:
            return store, readers
        with self._reopen_lock:
            if self.store is None and time.monotonic() - self._last_attempt >= REOPEN_INTERVAL_S:
                self._reopen(self._cause or "the database was closed")
            store, readers = self.store, self._readers
            if store is None or readers is None:
                raise UnavailableError(
                    f"the database cannot be used ({self.unavailable})",
                    hint="the server tries to reopen it on the next request",
                )
            return store, readers

    def recover(self, generation: int, cause: BaseException) -> None:
        """Reopen the database after DuckDB invalidated it (once per failure: a caller that
        saw an older generation finds it done)."""
        with self._reopen_lock:
            if self.generation != generation or self.store is None:
                return
            reason = one_line(cause)
            LOG.error("the database failed (%s); reopening it", reason)
            for _ in range(self._slots):  # every reader has let go
                self._permits.acquire()
            self._probe.acquire()
            old = self.store
            locked = old.lock.acquire(timeout=LOCK_WAIT_S)  # and the writer
            try:
                self._close()
                self.generation += 1
                self._reopen(reason)
            finally:
                if locked:
                    old.lock.release()
                for _ in range(self._slots):
                    self._permits.release()
                self._probe.release()

    def _reopen(self, reason: str) -> None:
        self._last_attempt = time.monotonic()
        self._cause = reason
        # DuckDB hands out the open instance of a file while anything still refers to it (a
        # relation kept alive by an exception's traceback, say): let those go first.
        gc.collect()
        try:
            store = self._opener()
            try:
                failed = mark_interrupted(
                    store, cause=f"the database failed under the server ({reason}) and was reopened"
                )
                self._attach(store)
            except BaseException:
                store.close()
                raise
        except (EngineError, duckdb.Error) as exc:
            problem = one_line(exc)
            again = "with the same error" if problem == reason else f"({problem})"
            self.unavailable = f"{reason}; reopening it failed {again}"
            LOG.error("the database cannot be reopened: %s", self.unavailable)
            return
        self.unavailable = None
        self.reopened = Reopened(datetime.now(UTC), reason, failed)
        LOG.warning("the database was reopened; %d run(s) left running marked failed", failed)

    def _close(self) -> None:
        for connection in (self._readers, self.store):
            if connection is None:
                continue
            try:
                connection.close()
            except (duckdb.Error, RuntimeError) as exc:
                LOG.warning("closing the failed database: %s", one_line(exc))
        self.store, self._readers = None, None

    def close(self) -> None:
        with self._reopen_lock:
            self._close()
