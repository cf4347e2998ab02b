"""Reading a file as a stream of byte blocks, and cutting blocks into records.

Memory stays bounded by the block size: a block is cut at the last record boundary and the
remainder is carried into the next block. The content hash is computed on the way, so
idempotency costs no second pass over the file.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

Offsets = npt.NDArray[np.int64]

BOM = b"\xef\xbb\xbf"


class HashingReader:
    """Yields fixed-size blocks of a file and keeps a SHA-256 of everything read."""

    def __init__(self, path: Path, block_size: int) -> None:
        self.path = path
        self.block_size = block_size
        self.bytes_read = 0
        self._hash = hashlib.sha256()

    def blocks(self) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            while True:
                block = fh.read(self.block_size)
                if not block:
                    return
                self._hash.update(block)
                self.bytes_read += len(block)
                yield block

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


def quick_fingerprint(path: Path, size: int = 1 << 20) -> str:
    """Size plus hashes of the first and last MiB: a cheap pre-check before a full hash."""
    total = path.stat().st_size
    digest = hashlib.sha256(str(total).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(size))
        if total > size:
            fh.seek(max(size, total - size))
            digest.update(fh.read(size))
    return digest.hexdigest()


def full_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True)
class Records:
    """Records found in a buffer: byte ranges plus the 1-based line each one starts on.

    ``starts[i]:starts[i+1]`` covers record i *and* its line terminator, so the records can be
    exposed as one Arrow string array without copying; ``text()`` strips the terminators.
    """

    data: bytes
    starts: Offsets
    stop: int
    lines: Offsets
    newlines_inside: npt.NDArray[np.bool_]
    last_terminated: bool = True

    def __len__(self) -> int:
        return len(self.starts)

    def binary(self) -> pa.Array:
        offsets = np.append(self.starts, self.stop).astype(np.int64)
        return pa.Array.from_buffers(
            pa.large_binary(),
            len(self.starts),
            [None, pa.py_buffer(offsets), pa.py_buffer(self.data)],
        )

    def text(self) -> pl.Series:
        """Records as strings without their line terminators (the buffer must be valid UTF-8)."""
        offsets = np.append(self.starts, self.stop).astype(np.int64)
        arr = pa.Array.from_buffers(
            pa.large_string(),
            len(self.starts),
            [None, pa.py_buffer(offsets), pa.py_buffer(self.data)],
        )
        series = pl.Series("text", arr)
        if not len(series):
            return series.cast(pl.String)
        last_terminated = self.stop > 0 and self.data[self.stop - 1] == 10
        if last_terminated and self.data.find(b"\r", 0, self.stop) == -1:
            return series.str.head(-1)  # every record ends with exactly one "\n"
        return series.str.strip_chars_end("\r\n")


def newline_positions(buf: npt.NDArray[np.uint8]) -> Offsets:
    return np.flatnonzero(buf == 10).astype(np.int64)


def line_numbers(newlines: Offsets, starts: Offsets, first_line: int) -> Offsets:
    """1-based line number of each start offset, given the line the buffer begins on."""
    return (np.searchsorted(newlines, starts) + first_line).astype(np.int64)


def invalid_utf8_ranges(data: bytes, starts: Offsets, stop: int) -> list[tuple[int, int]]:
    """Indices of records containing invalid UTF-8, with the first bad byte's offset in the record.

    Decoding the whole buffer at C speed is the fast common case; only on failure do we walk
    from one bad record to the next.
    """
    bad: list[tuple[int, int]] = []
    if data.isascii():  # no allocation, three times faster than decoding: the usual case
        return bad
    # The records may not start at the buffer's start (a multi-line record split back into
    # its lines): bytes before the first one belong to other records.
    pos = int(starts[0]) if len(starts) else stop
    view = memoryview(data)
    while pos < stop:
        try:
            codecs.utf_8_decode(view[pos:stop], "strict", True)
            break
        except UnicodeDecodeError as exc:
            offset = pos + exc.start
            index = int(np.searchsorted(starts, offset, side="right")) - 1
            bad.append((index, offset - int(starts[index])))
            pos = int(starts[index + 1]) if index + 1 < len(starts) else stop
    return bad


def decode_lossless(raw: bytes) -> str:
    """Text for a record that is not valid UTF-8: undecodable bytes shown as \\xNN escapes."""
    return raw.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
