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
from engine.sources.frames import FRAME_ROWS, Chunk, to_polars
from engine.sources.inputs import Input

ARROW_FILE_MAGIC = b"ARROW1\x00\x00"
PARQUET_MAGIC = b"PAR1"


def _frame(batch: Any, name: str) -> pl.DataFrame:
    return to_polars(batch, name)


def parquet_chunks(source: Input, rows: int = FRAME_ROWS) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if source.random_access is None:
        raise SourceError(
            source.name,
            "a Parquet file is read with seeks (its index is at its end), which a pipe or "
            "stdin cannot give",
            hint="give the file's path, or an s3:// or http(s):// URL",
        )
    try:
        handle = source.random_access()
        parquet = pq.ParquetFile(handle)
        for batch in parquet.iter_batches(batch_size=rows):
            yield _frame(batch, source.name)
    except SourceError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(source.name, f"not a readable Parquet file ({_reason(exc)})") from exc


def arrow_chunks(source: Input) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    if source.head(len(ARROW_FILE_MAGIC)) == ARROW_FILE_MAGIC:
        source.read(len(ARROW_FILE_MAGIC))  # the stream layout follows
    try:
        reader = ipc.open_stream(pa.PythonFile(_Readable(source), mode="r"))
        for batch in reader:
            yield _frame(batch, source.name)
    except SourceError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(
            source.name,
            f"not a readable Arrow IPC file ({_reason(exc)})",
            hint=Remedy("if it is Parquet, pass {}", "format", ("parquet",)),
        ) from exc


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
