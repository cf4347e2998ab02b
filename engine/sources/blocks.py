"""Byte blocks cut into records: where lines end, the records found, their text.

Memory stays bounded by the block size: a block is cut at the last record boundary and the
remainder is carried into the next block (``engine.sources.records.Cutter``).

A line ends at ``\n``, ``\r\n`` or a lone ``\r``, as Python's ``open()`` and ``csv`` module
read text: files from old Macs (``\r`` only) and mixed endings read as the lines they show.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

Offsets = npt.NDArray[np.int64]

BOM = b"\xef\xbb\xbf"
# Byte order marks of the encodings a UTF-8 reader cannot take (UTF-32's first: UTF-32LE's
# starts with UTF-16LE's).
WIDE_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
LF = 10
CR = 13


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

    def text(self, *, lines: bool = True) -> pl.Series:
        """Records as strings without their line terminators (the buffer must be valid UTF-8);
        ``lines=False``: as they are (a JSON array's elements end with their comma or
        bracket, whatever the buffer's last byte)."""
        offsets = np.append(self.starts, self.stop).astype(np.int64)
        arr = pa.Array.from_buffers(
            pa.large_string(),
            len(self.starts),
            [None, pa.py_buffer(offsets), pa.py_buffer(self.data)],
        )
        series = pl.Series("text", _Stream(arr))
        if not len(series) or not lines:
            return series.cast(pl.String)
        last_terminated = self.stop > 0 and self.data[self.stop - 1] == LF
        if last_terminated and self.data.find(b"\r", 0, self.stop) == -1:
            return series.str.head(-1)  # every record ends with exactly one "\n"
        # A record ends with one terminator at most ("\n", "\r\n" or "\r"): a "\r" or "\n"
        # before it would have ended the record (outside quotes) or be inside its quotes.
        return series.str.strip_chars_end("\r\n")


class _Stream:
    """An Arrow array handed to Polars through the Arrow C stream interface: zero-copy, like
    ``pl.Series(array)``, without Polars importing ``pyarrow.compute`` on the way (a tenth
    of a second of every process's start-up)."""

    def __init__(self, array: pa.Array) -> None:
        self.array = array

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return pa.chunked_array([self.array]).__arrow_c_stream__(requested_schema)


def line_ends(buf: npt.NDArray[np.uint8], *, eof: bool, cr: bool = True) -> Offsets:
    """Offsets of the last byte of each line terminator: a ``\n`` (alone or after a ``\r``) or
    a lone ``\r``. A ``\r`` closing the buffer ends a line only at the end of the input
    (``eof``): otherwise the next block may open with its ``\n``.

    ``cr=False`` says the caller knows there is no ``\r`` (``b"\\r" in data`` is a memchr,
    far quicker than NumPy's compare): the usual LF-only file pays nothing more.
    """
    lf: Offsets = np.flatnonzero(buf == LF).astype(np.int64, copy=False)
    if not cr:
        return lf
    after = lf[1:] if len(lf) and lf[0] == 0 else lf
    if np.count_nonzero(buf == CR) == np.count_nonzero(buf[after - 1] == CR):
        return lf  # CRLF: every \r is followed by its \n (half the time of finding them)
    crs = np.flatnonzero(buf == CR)
    last = len(buf) - 1
    lone = buf[np.minimum(crs + 1, last)] != LF
    lone &= (crs != last) | eof  # at the very end, buf[last] is the \r itself
    if not lone.any():  # only a \r closing the buffer, waiting for the next block
        return lf
    mask = buf == LF
    mask[crs[lone]] = True
    found: Offsets = np.flatnonzero(mask).astype(np.int64, copy=False)
    return found


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


def wide_bom(data: bytes) -> str | None:
    """The encoding (utf-16, utf-32) whose byte order mark ``data`` starts with, if any."""
    for bom, encoding in WIDE_BOMS:
        if data.startswith(bom):
            return encoding
    return None
