"""How many rows a frame source's next batches may hold, and the fingerprint of their lineage.

Text sources read blocks of bytes, held after each batch to the error budget
(``engine.block_budget``). Frames (Parquet, Arrow, rows in memory) come in pieces of rows:
up to 100,000 rows, or a Parquet row group's batch, whatever their errors. An orders Parquet
file of 250,000 rows failing on every field and on 10 extra columns (19 errors a row, 15 KB
compressed) peaked at 2.86 GB (an independent attack). So the pieces are cut: to
``records_for`` the errors a row can make (the model's fields and, when it forbids extras,
a frame's columns it does not read), and after each batch to the block the budget allows,
in rows: the block's bytes over the bytes of lineage a row had in the last batch hashed.
The reader runs ahead of the batches counted, so, as a text source's blocks do, the
batches start at ``FIRST_ROWS`` and double once per batch counted: that file then peaked
at 1.07 GB with its first batches of 50,000 rows, and at about 0.8 GB with the ramp.
A file without errors keeps its pieces once the ramp is over, while they are under the
block size in lineage.

A text source's blocks are never larger than the block size, so the budget that holds them to
about ``INPUT_BYTES_PER_BLOCK`` of error inputs says only "the block size" where the inputs
allow that much. Frames read that as no limit at all: rows missing a field under ten
1,000-character column names (10 KB of lineage a row, two 10 KB inputs) were allowed the
block size, so their batches doubled to 100,000 rows (1 GB of lineage, 2 GB of inputs) and
a Parquet file of 320,000 such rows peaked at 3.9 GB. Batches are now held to the block
size in lineage as text blocks are, and, before a batch has been hashed, a row's lineage is
taken to be at least its keys' (``key_bytes``): the first batches of that file hold 1,662
rows, not 8,192, and it peaks at 0.70-0.73 GB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import polars as pl

from engine.block_budget import records_for
from engine.sources.inputs import Digest, Fingerprint
from engine.sources.json_kinds import string_buffers
from engine.validation.compiler import CompiledSchema

FIRST_ROWS = 1 << 13


class LineageDigest:
    """The fingerprint of rows' JSON texts as NDJSON (one per line), and the rows the next
    batches may hold (``rows``) under the blocks the run allows (``limit_blocks``)."""

    def __init__(self) -> None:
        self._digest = Digest()
        self._block: int | None = None  # the run's block size: the first size told
        self._limit: int | None = None  # bytes of lineage a batch may hold (None: any)
        self._row_bytes = 0.0  # bytes of lineage a row of the last batch hashed had
        self._counted = 0  # batches whose errors were counted (limits told after the first)

    @property
    def bytes_read(self) -> int:
        return self._digest.size

    def limit_blocks(self, size: int) -> None:
        """A run tells its block size before the first batch, then after each batch the
        block its errors allow (called from the validating thread): rows are held to it,
        and never to more than the block size, which is what a text source's blocks are."""
        if self._block is None:
            self._block = size
        else:
            self._counted += 1
        self._limit = min(size, self._block)

    def rows(self, least_row_bytes: int = 0) -> int:
        """The most rows the next batch may hold: ``least_row_bytes``, the fewest bytes of
        lineage a row of the next batch can have, stands in for the last batch's rows until
        one has been hashed."""
        ramp = FIRST_ROWS << min(self._counted, 32)
        limit, per_row = self._limit, self._row_bytes or least_row_bytes
        if limit is None or not per_row:
            return ramp
        return max(1, min(ramp, int(limit / per_row)))

    def update(self, texts: pl.Series) -> None:
        if len(texts):
            # The lines' bytes as Arrow lays them out, one after another: no copy to hash.
            offsets, buf = string_buffers((texts + "\n").to_arrow())
            self._digest.update(buf[offsets[0] : offsets[-1]].data)
            self._row_bytes = int(offsets[-1] - offsets[0]) / len(texts)

    def fingerprint(self) -> Fingerprint:
        return self._digest.fingerprint()


def key_bytes(piece: pl.DataFrame | list[Any]) -> int:
    """The fewest bytes of lineage a row of a frame can have: its keys, quoted, each with a
    colon, a comma (or the opening brace) and a value of one character, then the closing
    brace and the newline (0 for rows given as a list: their keys are not known)."""
    if not isinstance(piece, pl.DataFrame):
        return 0
    return sum(len(name.encode()) + 5 for name in piece.columns) + 2


def most_rows(schema: CompiledSchema, piece: pl.DataFrame | list[Any]) -> int:
    """The most rows of ``piece`` one batch holds: about one error a field and a row, and
    one a column the model does not read when it forbids them (``records_for``)."""
    errors = len(schema.fields)
    if schema.extra == "forbid" and isinstance(piece, pl.DataFrame):
        known = set(schema.input_keys)
        errors += sum(name not in known for name in piece.columns)
    return records_for(errors)


def cut(
    pieces: Iterable[pl.DataFrame | list[Any]], schema: CompiledSchema, digest: LineageDigest
) -> Iterator[pl.DataFrame | list[Any]]:
    """The pieces in batches of at most ``most_rows`` and ``digest.rows()``."""
    for piece in pieces:
        height = piece.height if isinstance(piece, pl.DataFrame) else len(piece)
        most, least_bytes = most_rows(schema, piece), key_bytes(piece)
        start = 0
        while start < height:
            size = min(most, digest.rows(least_bytes))
            if isinstance(piece, pl.DataFrame):
                yield piece.slice(start, size)
            else:
                yield piece[start : start + size]
            start += size
