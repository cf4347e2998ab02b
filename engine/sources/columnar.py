"""Parquet and Arrow IPC files, read in record batches (never whole) by pyarrow.

Their rows are validated like JSON records: each row's lineage is its JSON form, and the
run's content is those rows as NDJSON text (``engine.sources.frames``), so the same rows in
another file layout (row groups, compression) are recognised as the same content.

Parquet keeps its index at the end of the file, so it is read with seeks: from a file, an
S3 object or an HTTP server answering ranged requests, not from a pipe. Arrow IPC is read as
a stream whichever of its two layouts the file has: the file layout is the stream layout
between an 8-byte magic and a footer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import polars as pl

from engine.errors import Remedy, SourceError
from engine.sources.frames import FRAME_ROWS, Chunk, row_too_long, to_polars
from engine.sources.inputs import Input

ARROW_FILE_MAGIC = b"ARROW1\x00\x00"
PARQUET_MAGIC = b"PAR1"
# About the most uncompressed bytes one Parquet batch holds, by the row group's own account:
# a row group of long rows is read in batches of fewer rows (down to one), not whole (6 rows
# of 50 MB strings: 830 MiB). Its account is of the bytes stored: a dictionary's value
# repeated in many rows counts once, hence the margin.
BATCH_BYTES = 16 << 20
# A row's cells take more memory than they are stored in: a Polars string is a 16-byte view
# and Arrow's a 4-byte offset, so 100,000 rows of 300 one-letter columns (73 KB stored, as
# one batch) took 150 MB as Arrow and 470 MB more as Polars before their first batch was
# validated (1.42 GB peak). A row counts at least this much a column.
CELL_BYTES = 24


def rows_for(stored_per_row: int, columns: int, rows: int) -> int:
    """The rows of a batch of about ``BATCH_BYTES`` (at most ``rows``, at least one)."""
    per_row = max(1, stored_per_row, CELL_BYTES * columns)
    return max(1, min(rows, BATCH_BYTES // per_row))


class _Frames:
    """Arrow record batches as Polars frames, each row's strings and bytes measured first:
    a row holding more than ``max_record_bytes`` of them has a longer JSON text (quotes and
    escapes only add to it), refused before that text is built."""

    def __init__(self, name: str, max_record_bytes: int | None) -> None:
        self.name = name
        self.limit = max_record_bytes
        self.next_row = 1

    def __call__(self, batch: Any) -> pl.DataFrame:
        if self.limit is not None:
            self._measure(batch)
        self.next_row += batch.num_rows
        return to_polars(batch, self.name)

    def _measure(self, batch: Any) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        def text(kind: Any) -> bool:
            return bool(
                pa.types.is_string(kind)
                or pa.types.is_large_string(kind)
                or pa.types.is_binary(kind)
                or pa.types.is_large_binary(kind)
            )

        # A row holds at most all of its batch's bytes: a batch holding no more than the
        # limit needs no row measured (a dictionary column: all of its dictionary's).
        held = [c.dictionary if pa.types.is_dictionary(c.type) else c for c in batch.columns]
        if sum(values.nbytes for values in held if text(values.type)) <= (self.limit or 0):
            return
        total = np.zeros(batch.num_rows, dtype=np.int64)
        for column in batch.columns:
            if pa.types.is_dictionary(column.type) and text(column.type.value_type):
                # A dictionary's values, each as long as the rows that use it make it.
                lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
            elif text(column.type):
                lengths = pc.binary_length(column)
            else:
                continue
            total += pc.fill_null(lengths, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        over = np.flatnonzero(total > self.limit)
        if len(over):
            raise row_too_long(self.name, self.next_row + int(over[0]), self.limit or 0)


def parquet_chunks(
    source: Input, rows: int = FRAME_ROWS, max_record_bytes: int | None = None
) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source.random_access is None:
        if _over_http(source):
            raise SourceError(
                source.name,
                "a Parquet file is read with seeks (its index is at its end), and this server "
                "does not answer ranged requests (no 'Accept-Ranges: bytes' or no length)",
                hint="serve it from a server that does, or download it and give its path",
            )
        raise SourceError(
            source.name,
            "a Parquet file is read with seeks (its index is at its end), which a pipe or "
            "stdin cannot give",
            hint="give the file's path, or an s3:// or http(s):// URL",
        )
    try:
        handle = source.random_access()
        parquet = pq.ParquetFile(handle)
        frames = _Frames(source.name, max_record_bytes)
        for index in range(parquet.metadata.num_row_groups):
            group = parquet.metadata.row_group(index)
            per_row = group.total_byte_size // max(1, group.num_rows)
            size = rows_for(per_row, group.num_columns, rows)
            for batch in parquet.iter_batches(batch_size=size, row_groups=[index]):
                yield frames(batch)
    except SourceError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(source.name, f"not a readable Parquet file ({_reason(exc)})") from exc


def arrow_chunks(source: Input, max_record_bytes: int | None = None) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    head = source.head(len(ARROW_FILE_MAGIC))
    file_layout, parquet = head == ARROW_FILE_MAGIC, head.startswith(b"PAR1")
    try:
        frames = _Frames(source.name, max_record_bytes)
        if file_layout and source.random_access is not None:
            # By its footer: a writer may lay the messages out in ways a stream reader
            # does not take (Polars' write_ipc does).
            opened = ipc.open_file(source.random_access())
            for index in range(opened.num_record_batches):
                yield from _sliced(opened.get_batch(index), frames)
            return
        if file_layout:
            source.read(len(ARROW_FILE_MAGIC))  # the stream layout follows
        reader = ipc.open_stream(pa.PythonFile(_Readable(source), mode="r"))
        for batch in reader:
            yield from _sliced(batch, frames)
    except SourceError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if file_layout and source.random_access is None:
            over_http = _over_http(source)
            raise SourceError(
                source.name,
                f"not readable as an Arrow IPC stream ({_reason(exc)}); an Arrow file laid "
                "out as some writers do (Polars' write_ipc) is read by its footer, at its end, "
                + (
                    "and this server does not answer ranged requests"
                    if over_http
                    else "which a pipe or stdin cannot give"
                ),
                hint="serve it from a server that does, or download it and give its path"
                if over_http
                else "give the file's path, or write it as an Arrow stream",
            ) from exc
        raise SourceError(
            source.name,
            f"not a readable Arrow IPC file ({_reason(exc)})",
            hint=Remedy("it is Parquet: pass {}", "format", ("parquet",)) if parquet else None,
        ) from exc


def _sliced(batch: Any, frames: _Frames) -> Iterator[pl.DataFrame]:
    """An Arrow record batch as frames of about ``BATCH_BYTES`` (``rows_for``): the batch is
    read whole, but becomes Polars a slice at a time."""
    height = batch.num_rows
    size = rows_for(batch.nbytes // max(1, height), batch.num_columns, max(1, height))
    for start in range(0, max(1, height), size):
        yield frames(batch.slice(start, size) if size < height else batch)


class _Readable:
    """An Input as the file object pyarrow reads."""

    closed = False

    def __init__(self, source: Input) -> None:
        self.source = source

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.source.read(1 << 20), b""))
        return self.source.read(n)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def _over_http(source: Input) -> bool:
    """An input read from an HTTP server (one without ranged requests, where it lacks seeks)."""
    return source.name.startswith(("http://", "https://"))
