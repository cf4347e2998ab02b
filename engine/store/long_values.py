"""Room in DuckDB's memory for the long values a transaction appends.

DuckDB keeps the string values longer than about 55 KB that a transaction appends in memory,
pinned, until it commits, whatever its spill directory. 1,000 valid rows with 100 KB ids
(100 MB) failed a file run's commit at the run's 128 MB limit ("failed to pin block of size
256.0 KiB (122.0 MiB/122.0 MiB used)"); at 128 MB, 300 MB of 10 KB or 50 KB values
committed and 300 MB of 60 KB values did not (DuckDB alone, measured 2026-12-06). So a
transaction counts the bytes of the values of ``LONG`` bytes or more as it appends them and
raises DuckDB's memory limit ahead of them, to ``ROOM`` plus twice their bytes (300 MB of
100 KB values committed at 600 MB, not at 256 MB); the limit goes back when the
transaction ends. A transaction without such values leaves the limit alone. Its memory then
grows with one transaction's long values: DuckDB needs them there.

Long lists count too, ``ITEM`` bytes an item: an ``orders`` CSV (which forbids extra keys)
with 2,000 extra columns filled made rows of 2,000 errors, whose lists DuckDB appends in
64 MiB pieces; the run failed with DuckDB out of memory at its 128 MB (an independent attack,
2026-12-06). It now completes, in 48 s at 3.6 GB.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import duckdb
import polars as pl

if TYPE_CHECKING:
    from engine.store.store import Store

LONG = 32 << 10  # bytes: below DuckDB's threshold, which lies between 50 and 60 KB
ROOM = 256 << 20  # the writer's own limit, kept for everything else
STEP = 1.25  # asks ahead, so that the limit is not set again for every append
WIDE = 256  # lists of this many items or more count ITEM bytes an item
ITEM = 32


def long_bytes(frame: pl.DataFrame) -> int:
    """The bytes of a frame's strings (and strings in lists) of ``LONG`` bytes or more, and
    ``ITEM`` bytes for each item of its lists of ``WIDE`` items or more."""
    total = 0
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        if isinstance(dtype, pl.List):
            sizes = column.list.len()
            total += int(sizes.filter(sizes >= WIDE).sum() or 0) * ITEM
        if dtype == pl.List(pl.String):
            column = column.explode()
        elif dtype != pl.String:
            continue
        lengths = column.str.len_bytes()
        total += int(lengths.filter(lengths >= LONG).sum() or 0)
    return total


class LongValues:
    """One transaction's long values and the memory limit raised for them.

    The limit is set on the transaction's own connection, under the store's lock it holds,
    not through ``Overrides``: those take their lock before the store's (a session starting
    in the API server beside a Kafka consumer), and this runs inside a transaction, which
    holds the store's lock first. Only a file run's bulk load sets the memory limit
    otherwise, before its transaction begins."""

    def __init__(self) -> None:
        self.bytes = 0
        self.granted = 0
        self._raised = False

    def add(self, store: Store, frame: pl.DataFrame) -> None:
        """Count the frame's long values (before it is appended) and make room for them;
        called with the store's lock held."""
        found = long_bytes(frame)
        if not found:
            return
        self.bytes += found
        needed = ROOM + 2 * self.bytes
        if needed > self.granted:
            self._raised = True
            self.granted = int(needed * STEP)
            store.execute(f"SET memory_limit = '{self.granted}B'")

    def close(self, store: Store) -> None:
        """The limit as the store's settings have it (``Overrides.value``: a file run's, or
        the store's own); called with the store's lock held, also after a failed commit: a
        database DuckDB gave up on refuses the SET too, and its error must not take the place
        of the one that says what failed."""
        before = store.overrides.value("memory_limit")
        if self._raised and before is not None:
            self._raised = False
            with contextlib.suppress(duckdb.Error):
                store.execute(f"SET memory_limit = '{before}'")
