"""Appending in whole row groups, so that DuckDB writes a run's rows on every core.

An INSERT from an Arrow table runs on DuckDB's threads: each takes the next record batch and
writes what it gathered as row groups of ``ROW_GROUP`` rows. A record batch that is not a
whole row group leaves a partial one, which DuckDB merges with its neighbours and writes
again (1.7x the CPU, measured with 300,000-row appends) or keeps as a small row group. So a
file run hands DuckDB only whole row groups, ``threads`` of them or more per INSERT (one per
thread): each table's rows are held back until they make such a multiple, and what is left
when the run ends is appended, in order, just before its commit.

Held rows are bounded by bytes too (``HELD_BYTES`` per table): rows of 2,000 characters
made a held unit of 245,760 rows about 500 MB a table, and a 400 MB file of them peaked at
1.2 GB (an independent attack). Past that, the rows are appended as they are: DuckDB's extra
merging costs little beside the bytes such rows carry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import polars as pl

ROW_GROUP = 122_880  # DuckDB's row group size (DEFAULT_ROW_GROUP_SIZE)
HELD_BYTES = 64 << 20


@dataclass(frozen=True)
class Pending:
    """Rows of one table waiting for a whole number of row groups, and how to append them."""

    frame: pl.DataFrame
    run_id: int | None
    replace: tuple[tuple[str, str], ...]


class RowGroups:
    """Holds back each table's rows beyond the last whole ``unit`` (a multiple of
    ``ROW_GROUP``), per transaction."""

    def __init__(self, threads: int) -> None:
        self.unit = ROW_GROUP * max(1, threads)
        self.pending: dict[str, Pending] = {}

    def take(
        self, table: str, frame: pl.DataFrame, run_id: int | None, replace: Mapping[str, str]
    ) -> Iterator[Pending]:
        """What to append now: the whole units, after the held rows they continue (rows held
        under other settings go first, on their own)."""
        how = tuple(replace.items())
        held = self.pending.pop(table, None)
        if held is not None and (held.run_id, held.replace) != (run_id, how):
            yield held
            held = None
        # Batches may differ in which columns they carry (those given only on some rows).
        rows = pl.concat([held.frame, frame], how="diagonal_relaxed") if held else frame
        whole = rows.height // self.unit * self.unit
        if rows.slice(whole).estimated_size() > HELD_BYTES:
            whole = rows.height
        if whole < rows.height:
            self.pending[table] = Pending(rows.slice(whole), run_id, how)
        if whole:
            yield Pending(rows.slice(0, whole), run_id, how)

    def rest(self, table: str | None = None) -> list[tuple[str, Pending]]:
        """The held rows (of one table, or of all), no longer held."""
        names = list(self.pending) if table is None else [table]
        return [(name, self.pending.pop(name)) for name in names if name in self.pending]

    def clear(self) -> None:
        self.pending.clear()


def in_row_groups(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in chunks of one row group each: its Arrow stream hands DuckDB one record
    batch per row group (DuckDB's unit of parallel work). Each row group is made one chunk
    on its own: only one that spans two of the frame's chunks is copied (rechunking the whole
    frame first copied every string of it: about a fifth of a run's page faults)."""
    if frame.height <= ROW_GROUP:
        return frame.rechunk()
    slices = [
        frame.slice(start, ROW_GROUP).rechunk() for start in range(0, frame.height, ROW_GROUP)
    ]
    return pl.concat(slices, rechunk=False)
