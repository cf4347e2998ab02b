"""NDJSON files (one JSON object per line) and JSON-array files (``[{...}, {...}]``).

Both are cut into records here and share :class:`JsonValues` for the values. A JSON array is
split on top-level commas found with vectorized quote/escape/depth tracking, so even a
multi-gigabyte array is read block by block.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW, RawBatch
from engine.errors import Remedy, SourceError
from engine.sources.blocks import BOM, Offsets, Records, line_ends, wide_bom
from engine.sources.inputs import HashingReader, Input
from engine.sources.json_values import JsonValues
from engine.sources.records import (
    MAX_RECORDS,
    BoundaryFinder,
    Cutter,
    RecordTooLarge,
    decode_records,
    iter_records,
    line_boundaries,
    only_blank_lines,
)

OPEN = np.zeros(256, dtype=np.int8)
OPEN[[ord("{"), ord("[")]] = 1
OPEN[[ord("}"), ord("]")]] = -1


def array_boundaries(data: bytes, buf: np.ndarray, newlines: Offsets) -> Offsets:
    """Top-level commas (depth 1, outside strings) and the array's closing bracket.

    A buffer always starts just after a boundary, so it starts outside any string at depth 1.
    """
    quotes = np.flatnonzero(buf == 34)
    if len(quotes):
        backslashes = np.flatnonzero(buf == 92)
        if len(backslashes):
            quotes = quotes[~_escaped(quotes, backslashes)]
    structural = np.flatnonzero((OPEN[buf] != 0) | (buf == 44))
    if len(quotes):
        structural = structural[(np.searchsorted(quotes, structural) & 1) == 0]
    delta = OPEN[buf[structural]].astype(np.int64)
    depth = 1 + np.cumsum(delta)
    is_comma = buf[structural] == 44
    ends: Offsets = structural[(is_comma & (depth == 1)) | ((delta < 0) & (depth == 0))].astype(
        np.int64
    )
    return ends


def _escaped(quotes: np.ndarray, backslashes: np.ndarray) -> np.ndarray:
    """True for quotes preceded by an odd-length run of backslashes."""
    breaks = np.flatnonzero(np.diff(backslashes) != 1)
    run_starts = backslashes[np.concatenate(([0], breaks + 1))]
    run_ends = backslashes[np.concatenate((breaks, [len(backslashes) - 1]))]
    run = np.searchsorted(run_ends, quotes - 1)
    run = np.minimum(run, len(run_ends) - 1)
    touches = run_ends[run] == quotes - 1
    length = run_ends[run] - run_starts[run] + 1
    odd: np.ndarray = touches & (length % 2 == 1)
    return odd


def json_batch(frame: pl.DataFrame, values: JsonValues, first_row: int) -> RawBatch:
    """JSON record texts with their lineage as a RawBatch: shared by files and Kafka.

    ``frame`` holds ``RAW`` (null only for a record with no text at all), its lineage columns
    and ``MALFORMED``/``MALFORMED_MSG`` for records already known to be broken before any JSON
    is parsed (invalid UTF-8, a Kafka message without a value); that verdict wins over the
    parser's. Rows are numbered from ``first_row``.
    """
    parsed = values.frame(frame[RAW].fill_null(""))
    broken = frame[MALFORMED].is_not_null()
    if broken.any():  # the usual batch has no such record: nothing to overlay
        known = frame.select(pl.col(MALFORMED, MALFORMED_MSG).cast(pl.String))
        parsed = parsed.with_columns(
            parsed[MALFORMED].zip_with(~broken, known[MALFORMED]),
            parsed[MALFORMED_MSG].zip_with(~broken, known[MALFORMED_MSG]),
        )
    rows = pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64, eager=True)
    frame = pl.concat(
        [frame.drop(MALFORMED, MALFORMED_MSG), parsed, rows.alias(ROW).to_frame()],
        how="horizontal",
    )
    return RawBatch(frame, values.keys, typed=True)


class JsonSource:
    """NDJSON (``array=False``) or JSON array (``array=True``), from a file or a stream, as RawBatches."""

    def __init__(
        self,
        source: Path | Input,
        *,
        keys: tuple[str, ...],
        want_all_keys: bool,
        array: bool,
        block_size: int,
        max_record_bytes: int,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.format = "json" if array else "ndjson"
        self.max_records = max_records
        self.array = array
        self.keys = keys
        self.reader = HashingReader(source, block_size)
        self.name = self.reader.name
        self.max_record_bytes = max_record_bytes
        self.blank_lines = 0
        self._values = JsonValues(keys, want_all_keys=want_all_keys)
        self._next_row = 1
        # JSON arrays: the byte that ended the previous element ("," "]" or none yet), and
        # whether the array's closing bracket was seen.
        self._previous_end = ""
        self._closed = False
        self._last_line = 1

    def batches(self) -> Iterator[RawBatch]:
        finder: BoundaryFinder = array_boundaries if self.array else line_boundaries
        cutter = Cutter(
            finder, self.max_record_bytes, elements=self.array, max_records=self.max_records
        )
        seen_any = False
        try:
            for records in iter_records(cutter, self._blocks()):
                seen_any = True
                if not self.array and only_blank_lines(records):
                    self.blank_lines += len(records)
                    continue
                batch = self._batch(records)
                if batch.height:
                    yield batch
        except RecordTooLarge as exc:
            raise SourceError(self.name, exc.what, line=exc.line, hint=exc.remedy()) from exc
        finally:
            self._values.close()
        if not seen_any:
            raise SourceError(self.name, "file is empty")
        if self.array and not self._closed:
            raise SourceError(
                self.name,
                "the JSON array is not closed: the file ends before its ']' (cut short?)",
                line=self._last_line,
            )

    def _blocks(self) -> Iterator[bytes]:
        first = True
        for block in self.reader.blocks():
            if first:
                block = self._check_start(block)
                first = False
            yield block

    def _check_start(self, block: bytes) -> bytes:
        # A UTF-16 or UTF-32 mark, alone or after a UTF-8 one (a file converted twice):
        wide = wide_bom(block.removeprefix(BOM))
        if wide is not None:  # every line would be garbage: its records are not UTF-8 lines
            raise SourceError(
                self.name,
                f"the file starts with a {wide.upper()} byte order mark; JSON is read as UTF-8",
                line=1,
                hint=f"convert it to UTF-8 first, e.g. iconv -f {wide} -t utf-8",
            )
        if block.startswith(BOM):
            block = block[len(BOM) :]
        head = block.lstrip(JSON_SPACE)
        if not head:
            return block
        if self.array:
            if head[:1] != b"[":
                raise SourceError(
                    self.name,
                    "not a JSON array: the file does not start with '['",
                    line=1,
                    hint=Remedy("use {} for one object per line", "format", ("ndjson",)),
                )
            # Replace the opening bracket by a space: offsets and line numbers stay right.
            at = len(block) - len(head)
            return block[:at] + b" " + block[at + 1 :]
        if head[:1] == b"[" and not _one_value(head):
            raise SourceError(
                self.name,
                "looks like a JSON array, not NDJSON (one object per line)",
                line=1,
                hint=Remedy("use {}", "format", ("json",)),
            )
        if head[:1] == b"{" and _spread_object(head):
            raise SourceError(
                self.name,
                "a JSON object spread over several lines (pretty-printed), not NDJSON "
                "(one object per line)",
                line=1 + len(LINE_END.findall(block[: len(block) - len(head)].decode("latin-1"))),
                hint=Remedy(
                    "write one object per line, or put the objects in a JSON array and use {}",
                    "format",
                    ("json",),
                ),
            )
        return block

    def _batch(self, records: Records) -> RawBatch:
        text, utf8_errors = decode_records(records, lines=not self.array)
        lines = records.lines
        if self.array:
            text, lines, blank = self._trim_elements(records, text)
        frame = pl.DataFrame({LINE: lines, RAW: text, MALFORMED_MSG: utf8_errors})
        if not self.array:
            blank = frame[RAW] == ""
            self.blank_lines += int(blank.sum())
        frame = frame.filter(~blank).with_columns(
            pl.when(pl.col(MALFORMED_MSG).is_not_null())
            .then(pl.lit("invalid_utf8"))
            .alias(MALFORMED)
        )
        batch = json_batch(frame, self._values, self._next_row)
        self._next_row += batch.height
        return batch

    def _trim_elements(
        self, records: Records, text: pl.Series
    ) -> tuple[pl.Series, Offsets, pl.Series]:
        """Drop each element's boundary (comma or closing bracket) and blanks; find its line;
        and which elements are no element at all (``[]``, text after the closing bracket).

        An empty element where Python's ``json`` expects a value (``[,``, ``,,``, a trailing
        ``,]``) is kept as a row: it is ``json_invalid``, as ``json.loads`` refuses the file."""
        terminated = np.ones(len(records), dtype=np.bool_)
        terminated[-1] = records.last_terminated
        ends = pl.select(
            pl.when(pl.Series(terminated)).then(text.str.extract(r"([,\]}])$")).otherwise(None)
        ).to_series()
        body = pl.select(
            pl.when(ends.is_not_null()).then(text.str.head(-1)).otherwise(text)
        ).to_series()
        empty = (body.str.strip_chars(SPACE) == "").to_numpy()
        comma = (ends == ",").fill_null(False).to_numpy()
        after_comma = np.concatenate(([self._previous_end == ","], comma[:-1]))
        missing = empty & (comma | after_comma)
        self._check_framing(records, ends, empty)
        self._closed = self._closed or bool((ends == "]").any())
        self._previous_end = ends[-1] or ""
        stripped = body.str.strip_chars_start(SPACE).str.len_bytes()
        lead = (body.str.len_bytes() - stripped).to_numpy()
        buf = np.frombuffer(records.data, dtype=np.uint8)[: records.stop]
        # Only line ends before each element's first byte count, all before ``stop``: a "\r"
        # closing the buffer is counted either way.
        newlines = line_ends(buf, eof=True, cr=records.data.find(b"\r", 0, records.stop) != -1)
        positions = records.starts + lead.astype(np.int64)
        lines = (np.searchsorted(newlines, positions) + records.lines[0]).astype(np.int64)
        trimmed = body.str.strip_chars(SPACE).alias(RAW)
        if len(lines) and not empty[-1]:  # the last line holding text, for "not closed"
            self._last_line = int(lines[-1]) + len(LINE_END.findall(trimmed[-1]))
        return trimmed, lines, pl.Series(empty & ~missing)

    def _check_framing(self, records: Records, ends: pl.Series, empty: np.ndarray) -> None:
        """Stop where the array's brackets no longer frame its elements, as Python's ``json``
        refuses the whole file there: a ``}`` closing the array, or anything after its
        closing ``]`` but whitespace (its elements could no longer be told apart: cut at
        every comma, pieces of records were stored as rows, some of them valid)."""
        closes = (ends == "]").fill_null(False).to_numpy()
        closed_before = np.cumsum(closes) - closes + int(self._closed) > 0
        after = closed_before & (~empty | ends.is_not_null().to_numpy())
        brace = (ends == "}").fill_null(False).to_numpy() & ~after
        if not (brace.any() or after.any()):
            return
        at = int(np.flatnonzero(brace | after)[0])
        stops = np.append(records.starts[1:], records.stop)
        if brace[at]:
            position = int(stops[at]) - 1
        else:  # the first byte after the closing bracket that is not whitespace
            piece = records.data[int(records.starts[at]) : int(stops[at])]
            found = NON_SPACE.search(piece)
            position = int(records.starts[at]) + (found.start() if found else 0)
        buf = np.frombuffer(records.data, dtype=np.uint8)[: records.stop]
        newlines = line_ends(buf, eof=True, cr=records.data.find(b"\r", 0, records.stop) != -1)
        line = int(np.searchsorted(newlines, position)) + int(records.lines[0])
        problem = (
            "a '}' closes the JSON array (a '{' is missing before it, or it is one too many)"
            if brace[at]
            else "text after the JSON array's closing ']' (a '[' is missing, or a ']' is one "
            "too many)"
        )
        raise SourceError(self.name, problem, line=line)


# JSON's whitespace: space, tab, line feed, carriage return (not a form feed, a vertical
# tab, a no-break space or U+2028, which Python's json refuses between values).
SPACE = " \t\n\r"
JSON_SPACE = SPACE.encode()
NON_SPACE = re.compile(rb"[^ \t\n\r]")
LINE_END = re.compile(r"\r\n|\r|\n")


def _spread_object(head: bytes) -> bool:
    """Whether ``head`` (starting with ``{``) is an object spread over lines, as pretty
    printers write it: its first line opens the object and stops after ``{``, ``,`` or ``[``
    (no whole value), and the next line that is not blank goes on with a key or closes it
    (``"key": ...``, ``}``). Anything else is NDJSON, a broken first record an invalid row:
    one cut by a carriage return in a string, one followed by records or other values."""
    ends = [at for at in (head.find(b"\n"), head.find(b"\r")) if at >= 0]
    if not ends:
        return False
    first = head[: min(ends)].rstrip(JSON_SPACE)
    following = NON_SPACE.search(head, min(ends) + 1)
    if following is None or head[following.start() : following.start() + 1] not in (b'"', b"}"):
        return False
    return first == b"{" or first.endswith((b",", b"[", b"{"))


def _one_value(head: bytes) -> bool:
    """Whether the first line is a whole JSON value by itself with more lines after it: an
    NDJSON record (an array is then an invalid row, ``model_type``), not a JSON array spread
    over lines, nor a file holding one array."""
    ends = [at for at in (head.find(b"\n"), head.find(b"\r")) if at >= 0]
    if not ends or NON_SPACE.search(head, min(ends) + 1) is None:
        return False
    try:
        json.loads(head[: min(ends)])
    except (ValueError, RecursionError):
        return False
    return True
