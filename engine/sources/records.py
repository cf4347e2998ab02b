"""Cutting a buffer into records, and turning records into a lineage frame.

Shared by the CSV, NDJSON and JSON-array readers: they differ only in where a record ends
(CSV honours quoted newlines, NDJSON does not, JSON arrays split on top-level commas).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.errors import Remedy
from engine.sources.blocks import (
    Offsets,
    Records,
    decode_lossless,
    invalid_utf8_ranges,
    line_ends,
    line_numbers,
)


class RecordTooLarge(Exception):
    """A record that has not ended after ``limit`` bytes; ``across_lines``: it spans lines
    (a quoted CSV cell, a JSON array's element), so it cannot be told from one whose quote
    or bracket never closes. ``line``: where its text starts (a JSON array's element after
    the comma and line ends before it); ``element``: the record is a JSON array's element."""

    def __init__(
        self, line: int, limit: int, *, across_lines: bool = False, element: bool = False
    ) -> None:
        self.line = line
        self.limit = limit
        self.across_lines = across_lines
        self.element = element
        super().__init__(f"line {line} is longer than {limit} bytes")

    def remedy(self, template: str = "raise {} if the file is right") -> Remedy:
        """How to read it anyway, in the front end's words (``--max-record-bytes``)."""
        return Remedy(template, "max_record_bytes")

    @property
    def what(self) -> str:
        """What happened, for a one-line error (the file and line are added by its caller)."""
        if self.element:
            if self.across_lines:
                return (
                    f"an element of the JSON array runs on across lines for more than "
                    f"{self.limit:,} bytes (a quote or bracket that never closes, or an element "
                    "longer than that)"
                )
            return f"an element of the JSON array is longer than {self.limit:,} bytes"
        if self.across_lines:
            return (
                f"a record runs on across lines for more than {self.limit:,} bytes "
                "(a quote or bracket that never closes, or a cell longer than that)"
            )
        return f"a record is longer than {self.limit:,} bytes without a line break"


# (the buffer as bytes and as an array, its line ends) -> offsets of the line ends (or other
# bytes) that end records; returning ``newlines`` itself says every line is a record.
BoundaryFinder = Callable[[bytes, np.ndarray, Offsets], Offsets]
BLANKS = b" \t\r\n"  # JSON's whitespace
# The most records one feed yields: a block of short lines (or of blank ones) is cut into
# pieces of this many records, so that the per-record arrays and strings built from it stay
# bounded whatever the lines' length (16 MiB of newlines would be 16M records otherwise).
MAX_RECORDS = 1 << 19
NON_BLANK = re.compile(b"[^" + re.escape(BLANKS) + b"]")
LF_BYTE, CR_BYTE = 10, 13


def line_boundaries(data: bytes, buf: np.ndarray, newlines: Offsets) -> Offsets:
    """Every line end ends a record (NDJSON)."""
    return newlines


# Bytes that may stand next to a structural quote besides the separator and the quote
# itself: line ends.
LINE_END_BYTES = (10, 13)


def quote_boundaries(quote: bytes, delimiter: bytes = b",") -> BoundaryFinder:
    """Line ends outside quoted fields end a record, as Python's csv module reads them.

    Where every quote is where RFC 4180 puts it (an opening one at the start of a field, a
    closing one before a separator or line end, or doubled), an even number of quotes before
    a line end means it ends a record: vectorized. Otherwise (a quote inside an unquoted
    field is text: ``5'10"``) the csv module's own state machine runs over the quotes,
    separators and line ends of the buffer."""
    code, separator = quote[0], delimiter[0]
    beside = np.zeros(256, dtype=np.bool_)
    beside[[code, separator, *LINE_END_BYTES]] = True

    def boundaries(data: bytes, buf: np.ndarray, newlines: Offsets) -> Offsets:
        if quote not in data:  # memchr: a quarter of the time of scanning with NumPy
            return newlines
        quotes = np.flatnonzero(buf == code)
        if not _rfc_4180_quotes(buf, quotes, beside):
            return _csv_module_boundaries(buf, quotes, np.flatnonzero(buf == separator), newlines)
        parity = np.searchsorted(quotes, newlines) & 1
        found: Offsets = newlines[parity == 0]
        return found

    return boundaries


quoted_boundaries = quote_boundaries(b'"')


def _rfc_4180_quotes(buf: np.ndarray, quotes: Offsets, beside: np.ndarray) -> bool:
    opening, closing = quotes[0::2], quotes[1::2]
    before = opening[opening > 0] - 1
    after = closing[closing < len(buf) - 1] + 1
    return bool(beside[buf[before]].all() and beside[buf[after]].all())


START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED = range(4)


def _csv_module_boundaries(
    buf: np.ndarray, quotes: Offsets, commas: Offsets, newlines: Offsets
) -> Offsets:
    """The line ends that end a record under Python's csv state machine (default dialect,
    ``strict=False``): a quote opens a quoted field only at a field's start; in a quoted
    field a quote followed by anything but a quote, separator or line end carries on as an
    unquoted field. Only quotes, separators and line ends are visited (in Python: this is
    the path of malformed files)."""
    positions = np.concatenate((quotes, commas, newlines))
    kinds = np.concatenate(
        (
            np.full(len(quotes), 0, np.int8),
            np.full(len(commas), 1, np.int8),
            np.full(len(newlines), 2, np.int8),
        )
    )
    order = np.argsort(positions, kind="stable")
    found: list[int] = []
    state, previous = START, -1
    for pos, kind in zip(positions[order].tolist(), kinds[order].tolist(), strict=True):
        if pos != previous + 1 and state in (START, QUOTE_IN_QUOTED):
            state = UNQUOTED  # other characters came first
        previous = pos
        if state == QUOTED:
            if kind == 0:
                state = QUOTE_IN_QUOTED
        elif kind == 0:
            state = QUOTED if state == START else (UNQUOTED if state == UNQUOTED else QUOTED)
        elif kind == 1:
            state = START
        else:
            found.append(pos)
            state = START
    return np.array(found, dtype=np.int64)


@dataclass
class Cutter:
    """Turns a stream of blocks into complete records, carrying partial records over.

    A record that grows past ``max_record_bytes`` without ending stops the reading
    (``RecordTooLarge``): one that spans lines may be a cell that long or a quote that never
    closes, and cutting it anywhere would turn a real record into rows of fragments. (A stray
    quote closed by a later one within the limit is undone by the CSV reader.)
    """

    boundaries: BoundaryFinder
    max_record_bytes: int
    elements: bool = False  # the records are a JSON array's elements (for the wording)
    max_records: int = MAX_RECORDS
    carry: bytes = b""
    next_line: int = 1
    # Pieces of the last buffer held back, each of ``max_records`` records but the last, and
    # whether that buffer ended the input: ``iter_records`` feeds them before the next block.
    pending: list[bytes] = field(default_factory=list)
    pending_eof: bool = False

    def feed(self, block: bytes, *, eof: bool) -> Records | None:
        data = self.carry + block if self.carry else block
        if not data:
            return None
        buf = np.frombuffer(data, dtype=np.uint8)
        newlines = line_ends(buf, eof=eof, cr=b"\r" in data)
        found = self.boundaries(data, buf, newlines)
        one_per_line = found is newlines
        if len(found) > self.max_records:
            data, buf, eof = self._hold_back(data, buf, found, eof)
            newlines = newlines[: int(np.searchsorted(newlines, len(data)))]
            found = newlines if one_per_line else found[: self.max_records]
        ends = found + 1
        terminated = True
        if eof and (len(ends) == 0 or ends[-1] != len(data)):
            ends = np.append(ends, len(data))
            terminated = False
        elif len(ends) == 0:
            # Its text so far, without a last line end (which may end it, or be read back
            # as the end of its last line).
            ending = 2 if data.endswith(b"\r\n") else int(data.endswith((b"\n", b"\r")))
            if len(data) - ending <= self.max_record_bytes:
                self.carry = data
                return None
            raise self._too_large(data, newlines, 0, len(data), ended=False)
        stop = int(ends[-1])
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64)
        before_stop = int(np.searchsorted(newlines, stop))
        if one_per_line or (
            len(ends) - before_stop in (0, 1)
            and np.array_equal(ends[:before_stop] - 1, newlines[:before_stop])
        ):
            # Every line is one record (no quoted newlines, no record ending inside a line):
            # the common case, no searching.
            lines = np.arange(self.next_line, self.next_line + len(starts), dtype=np.int64)
            inside = np.zeros(len(starts), dtype=np.bool_)
        else:
            lines = line_numbers(newlines, starts, self.next_line)
            inner_end = ends - _ends_a_line(newlines, ends - 1)
            inside = np.searchsorted(newlines, inner_end) - np.searchsorted(newlines, starts) > 0
        lengths = _text_lengths(buf, newlines, starts, ends)
        long = np.flatnonzero(lengths > self.max_record_bytes)
        if len(long):  # the limit holds wherever the blocks happened to cut
            first = int(long[0])
            start = int(starts[first])
            raise self._too_large(data, newlines, start, start + int(lengths[first]))
        self.next_line += before_stop
        self.carry = data[stop:]
        return Records(data, starts, stop, lines, inside, terminated)

    def _hold_back(
        self, data: bytes, buf: np.ndarray, found: Offsets, eof: bool
    ) -> tuple[bytes, np.ndarray, bool]:
        """Cut ``data`` after every ``max_records``-th record: the first piece is read now,
        the others are queued (a piece starts at a record's start, so the boundaries found
        in it again are the same)."""
        cuts = [int(at) + 1 for at in found[self.max_records - 1 :: self.max_records]]
        cuts = [at for at in cuts if at < len(data)]
        if not self.pending:
            self.pending_eof = eof
        self.pending[:0] = [data[a:b] for a, b in zip(cuts, [*cuts[1:], len(data)], strict=True)]
        return data[: cuts[0]], buf[: cuts[0]], False

    def _too_large(
        self, data: bytes, newlines: Offsets, start: int, end: int, *, ended: bool = True
    ) -> RecordTooLarge:
        """The error for the record in ``data[start:end]``: named by the line its first
        non-blank byte is on (a JSON array's element starts after the comma and line ends
        before it). It spans lines if a line end lies between its first and last non-blank
        bytes (an element's own: not the comma or bracket ending it); a CSV record not
        ``ended`` yet at a line end is in a quoted cell, which goes on past it."""
        text = NON_BLANK.search(data, start, end)
        first = text.start() if text else start
        if ended or self.elements:
            body = data[first:end]
            if self.elements and ended and body.endswith((b",", b"]")):
                body = body[:-1]  # the boundary that ends an element is not its text
            end = first + len(body.rstrip(BLANKS))
        line = int(line_numbers(newlines, np.array([first], dtype=np.int64), self.next_line)[0])
        across = int(np.searchsorted(newlines, end)) > int(np.searchsorted(newlines, first))
        return RecordTooLarge(
            line, self.max_record_bytes, across_lines=across, element=self.elements
        )


def _text_lengths(buf: np.ndarray, newlines: Offsets, starts: Offsets, ends: Offsets) -> Offsets:
    """Each record's length as stored: without the line terminator (``\n``, ``\r\n`` or
    ``\r``) that ends it."""
    last = ends - 1
    terminated = _ends_a_line(newlines, last, buf)
    crlf = (last > starts) & (buf[last] == ord("\n")) & (buf[np.maximum(last - 1, 0)] == ord("\r"))
    found: Offsets = ends - starts - terminated - (crlf & (terminated == 1))
    return found


def _ends_a_line(newlines: Offsets, positions: Offsets, buf: np.ndarray | None = None) -> Offsets:
    """1 where a position is a line end (the last byte of a terminator), else 0. With the
    buffer: a ``\n`` always ends a line, only a ``\r`` is looked up (a search per record
    was most of the time of reading a block of blank lines)."""
    if not len(newlines):
        return np.zeros(len(positions), dtype=np.int64)
    if buf is not None:
        found: Offsets = (buf[positions] == LF_BYTE).astype(np.int64)
        crs = np.flatnonzero(buf[positions] == CR_BYTE)
        if len(crs):
            found[crs] = _ends_a_line(newlines, positions[crs])
        return found
    at = np.minimum(np.searchsorted(newlines, positions), len(newlines) - 1)
    looked_up: Offsets = (newlines[at] == positions).astype(np.int64)
    return looked_up


def physical_lines(records: Records, index: int) -> Records:
    """Split one (multi-line) record back into its physical lines."""
    start = int(records.starts[index])
    stop = int(records.starts[index + 1]) if index + 1 < len(records) else records.stop
    buf = np.frombuffer(records.data, dtype=np.uint8)[start:stop]
    newlines = line_ends(buf, eof=True)
    ends = newlines + 1
    if len(ends) == 0 or ends[-1] != len(buf):
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1])).astype(np.int64) + start
    lines = records.lines[index] + np.arange(len(starts), dtype=np.int64)
    return Records(records.data, starts, stop, lines, np.zeros(len(starts), dtype=np.bool_))


def only_blank_lines(records: Records) -> bool:
    """Whether every record is an empty line (its bytes are all line ends): such a run of
    blank lines is counted, not turned into strings and frames."""
    start = int(records.starts[0]) if len(records) else records.stop
    if records.stop - start > 2 * len(records):  # a blank record is 2 bytes at most
        return False
    data = records.data
    return data.count(b"\n", start, records.stop) + data.count(b"\r", start, records.stop) == (
        records.stop - start
    )


def decode_records(
    records: Records, encoding: str | None = None, *, lines: bool = True
) -> tuple[pl.Series, pl.Series]:
    """Record texts, plus the invalid-UTF-8 error message per record (null when fine).

    ``encoding``: the records were transcoded from it to UTF-8, keeping the bytes it could
    not decode: those are named as bytes of that encoding, at their character position.
    ``lines=False``: the records are kept whole (``Records.text``)."""
    bad = invalid_utf8_ranges(records.data, records.starts, records.stop)
    if not bad:
        return records.text(lines=lines), pl.repeat(None, len(records), dtype=pl.String, eager=True)
    # Mask the bad records' non-ASCII bytes in a copy so the rest can be read zero-copy,
    # then put back each bad record's text with its undecodable bytes escaped.
    masked = np.frombuffer(records.data, dtype=np.uint8).copy()
    indices = [i for i, _ in bad]
    raws = []
    messages = []
    for index, offset in bad:
        start = int(records.starts[index])
        stop = int(records.starts[index + 1]) if index + 1 < len(records) else records.stop
        raw = records.data[start:stop]
        piece = masked[start:stop]
        piece[piece >= 128] = ord("?")
        raws.append(decode_lossless(raw))
        if encoding is None:
            messages.append(
                f"Invalid UTF-8: byte 0x{raw[offset]:02x} at position {offset} of the line"
            )
        else:
            at = len(raw[:offset].decode("utf-8", "surrogateescape"))
            messages.append(
                f"Invalid {encoding}: byte 0x{raw[offset]:02x} at character {at} of the line"
            )
    clean = Records(
        masked.tobytes(), records.starts, records.stop, records.lines, records.newlines_inside
    )
    text = clean.text(lines=lines).scatter(indices, raws)
    errors = pl.repeat(None, len(records), dtype=pl.String, eager=True).scatter(indices, messages)
    return text, errors


def lineage_frame(records: Records, text: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({LINE: records.lines, RAW: text})


def number_rows(frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
    return frame.with_columns(
        pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias(ROW)
    )


def malformed(error_type: str, message: pl.Expr | str) -> list[pl.Expr]:
    msg = pl.lit(message) if isinstance(message, str) else message
    return [pl.lit(error_type).alias(MALFORMED), msg.alias(MALFORMED_MSG)]


def iter_records(cutter: Cutter, blocks: Iterator[bytes]) -> Iterator[Records]:
    for block in blocks:
        yield from _fed(cutter, block, eof=False)
        while len(cutter.carry) > cutter.max_record_bytes:
            records = cutter.feed(b"", eof=False)
            if records is None:
                break
            yield records
    yield from _fed(cutter, b"", eof=True)


def _fed(cutter: Cutter, block: bytes, *, eof: bool) -> Iterator[Records]:
    """The records of ``block``, then of the pieces the cutter held back from it."""
    records = cutter.feed(block, eof=eof)
    while True:
        if records is not None and len(records):
            yield records
        if not cutter.pending:
            return
        piece = cutter.pending.pop(0)
        records = cutter.feed(piece, eof=cutter.pending_eof and not cutter.pending)
