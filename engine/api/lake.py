"""`serve --lake`: the server's reads and writes go to a lake instead of a DuckDB file.

The same interface as ``Database`` for what the routes use: ``read`` gives each request a
locked-down reader over the lake's committed batches (``engine.lake.reader``), ``writing``
hands an ingest the lake itself (writers need no turn: the lake takes any number at once),
and ``changes`` is the manifest's Delta version, so the summary cache notices what other
writers, on any machine, committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from engine.api.database import READERS, Reopened
from engine.lake.location import Lake
from engine.lake.reader import open_lake_reader
from engine.lake.tables import MANIFEST, MANIFEST_SCHEMA, ensure_table, open_table
from engine.store.store import Store

T = TypeVar("T")


class LakeDatabase:
    def __init__(self, lake: Lake, *, readers: int = READERS) -> None:
        self.lake = lake
        ensure_table(lake, MANIFEST, MANIFEST_SCHEMA)  # an empty lake reads as empty
        self._permits = threading.BoundedSemaphore(readers)
        self._probe = threading.BoundedSemaphore(1)  # the health probe's lane, as Database's
        self.writer: str | None = None  # a lake has no single writer to wait for
        self.reopened: Reopened | None = None
        self.unavailable: str | None = None

    def changes(self) -> tuple[int, int]:
        table = open_table(self.lake, MANIFEST)
        return (0, -1 if table is None else int(table.version()))

    @contextmanager
    def reader(self, *, probe: bool = False) -> Iterator[Store]:
        with self._probe if probe else self._permits, open_lake_reader(self.lake) as store:
            yield store

    def read(self, work: Callable[[Store], T], *, probe: bool = False) -> T:
        with self.reader(probe=probe) as store:
            return work(store)

    @contextmanager
    def writing(self, what: str, *, timeout_s: float, since: float | None = None) -> Iterator[Lake]:
        yield self.lake

    def close(self) -> None:
        """Nothing is held open between requests."""
