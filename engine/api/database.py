"""The server's single DuckDB connection: one writer at a time, readers on their own cursors.

DuckDB lets one process open a file for writing, so the server opens it once. Writers (an
ingest request, a Kafka micro-batch) take turns through the Store's lock: a file run holds
it for its whole transaction, a micro-batch for its own. Readers (summary, runs, exports)
never take it: each gets a fresh cursor, another connection to the same open database that
sees what is committed, so a long ingest does not hold up a report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.api.errors import BusyError
from engine.store.store import Store


class Database:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Reader cursors are made from this one, never from the writer's connection (making
        # a cursor touches its parent, which a running ingest may be using on another thread).
        self._readers = store.cursor()
        self._readers.execute("SET TimeZone = 'UTC'")
        self.writer: str | None = None  # what holds the writer, for the busy message

    @contextmanager
    def reader(self) -> Iterator[Store]:
        """A cursor for one request: committed data, timestamps in UTC, closed afterwards."""
        store = self._readers.cursor()
        try:
            store.execute("SET TimeZone = 'UTC'")
            yield store
        finally:
            store.close()

    @contextmanager
    def writing(self, what: str, *, timeout_s: float) -> Iterator[Store]:
        """The writer, for ``what``; a ``BusyError`` if it stays taken for ``timeout_s``."""
        if not self.store.lock.acquire(timeout=timeout_s):
            holder = self.writer or "a Kafka micro-batch"
            raise BusyError(
                f"the database is busy ({holder}) and stayed busy for {timeout_s:g} s",
                hint="retry when it is done",
            )
        self.writer = what
        try:
            yield self.store
        finally:
            self.writer = None
            self.store.lock.release()

    def close(self) -> None:
        self._readers.close()
        self.store.close()
