"""Records DuckDB accepted but Python's ``json.loads`` might read differently.

DuckDB's reader (yyjson) accepts a trailing comma before ``}`` or ``]`` and keeps the first of
duplicate keys; Python refuses the first and keeps the last of the second. Finding such
records must cost next to nothing on the records that have neither, which is nearly all:

- trailing commas: in the usual batch every ``}``/``]`` ends a record, so only the byte before
  each record's last one needs a look (per row, not per byte); otherwise every closing
  bracket is checked, still vectorized;
- duplicate keys: DuckDB counts a record's keys (duplicates included); a record with more
  keys than it has distinct requested ones is looked at more closely;
- keys written with ``\\u`` escapes, which could spell a requested key twice;
- ``nan``, ``inf``, ``-NaN``, ``INFINITY``...: DuckDB takes them in any case, Python's json
  only as ``NaN``, ``Infinity`` and ``-Infinity`` (a record with more loose spellings than
  exact ones is looked at);
- what Python's json cannot read at all: nesting deeper than its recursion allows, and
  integers of more than 4,300 digits (``int`` refuses to convert them).

False alarms only cost a Python parse of the record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

WHITESPACE = np.zeros(256, dtype=np.bool_)
WHITESPACE[[9, 10, 13, 32]] = True
CLOSERS = (ord("}"), ord("]"))
COMMA = ord(",")
ESCAPED_KEY = r'\\u[0-9a-fA-F]{4}(?:[^"\\]|\\.)*"[ \t\r\n]*:'
LOOSE_LITERAL = r"[:,\[][ \t\r\n]*[+-]?(?i:nan|inf)"
PYTHON_LITERAL = r"[:,\[][ \t\r\n]*(?:NaN|-?Infinity)"
DEEP = 200  # opening brackets in a record beyond which Python's json may give up
INT_DIGITS = 4300  # sys.get_int_max_str_digits(): longer ints do not convert

Mask = npt.NDArray[np.bool_]


def key_pattern(keys: Sequence[str]) -> str | None:
    """A regex matching any requested key written as a key (``"name":``)."""
    if not keys:
        return None
    names = "|".join(re.escape(json.dumps(k, ensure_ascii=False)) for k in keys)
    return f"(?:{names})[ \\t\\r\\n]*:"


def _buffers(records: pl.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """The records' byte offsets and bytes, without copying."""
    array = records.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = array.cast(pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    offsets = offsets[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets, buf


def _skip_back(
    buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64], floor: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """From each position, step back over whitespace (not below ``floor``)."""
    at = at.copy()
    moving = (at >= floor) & WHITESPACE[buf[np.maximum(at, 0)]]
    while moving.any():
        at[moving] -= 1
        moving &= (at >= floor) & WHITESPACE[buf[np.maximum(at, 0)]]
    return at


def trailing_commas(n: int, offsets: npt.NDArray[np.int64], buf: npt.NDArray[np.uint8]) -> Mask:
    """Rows (of ``n``, as Arrow offsets and bytes) with a comma before a closing bracket,
    whitespace between allowed."""
    starts, ends = offsets[:-1], offsets[1:]
    if n == 0 or len(buf) == 0:
        return np.zeros(n, dtype=np.bool_)
    body = buf[offsets[0] : offsets[-1]]
    closers = int(np.count_nonzero(body == CLOSERS[0])) + int(np.count_nonzero(body == CLOSERS[1]))
    last = _skip_back(buf, ends - 1, starts)
    has_end = (last >= starts) & np.isin(buf[np.maximum(last, 0)], CLOSERS)
    if closers == int(has_end.sum()):  # every closing bracket ends its record
        before = _skip_back(buf, last - 1, starts)
        found: Mask = has_end & (before >= starts) & (buf[np.maximum(before, 0)] == COMMA)
        return found
    positions = np.flatnonzero(np.isin(body, CLOSERS)) + offsets[0]
    row = np.searchsorted(offsets, positions, side="right") - 1
    before = _skip_back(buf, positions - 1, starts[row])
    bad = (before >= starts[row]) & (buf[np.maximum(before, 0)] == COMMA)
    mask = np.zeros(n, dtype=np.bool_)
    mask[row[bad]] = True
    return mask


def doubtful(
    records: pl.Series,
    key_counts: pl.Series | None,
    present: pl.Series | None,
    keys_regex: str | None,
) -> Mask:
    """Rows to give Python's verdict: ``records`` are the texts DuckDB accepted (null where it
    did not), ``key_counts`` how many keys DuckDB saw in each, ``present`` how many distinct
    requested keys it found."""
    offsets, buf = _buffers(records.fill_null(""))
    mask = trailing_commas(len(records), offsets, buf)
    if np.count_nonzero(buf[offsets[0] : offsets[-1]] == ord("\\")):
        escaped = records.str.contains("\\u", literal=True).fill_null(False)
        rows = np.flatnonzero(escaped.to_numpy())
        if len(rows):
            keyish = records.gather(rows).str.contains(ESCAPED_KEY).fill_null(False)
            mask[rows[keyish.to_numpy()]] = True
    mask |= _python_cannot_read(records)
    if key_counts is not None and present is not None and keys_regex is not None:
        # More keys than distinct requested ones: other keys, or a requested one twice.
        more = (key_counts.fill_null(0) > present).to_numpy()
        rows = np.flatnonzero(more)
        if len(rows):
            written = records.gather(rows).str.count_matches(keys_regex).to_numpy()
            mask[rows[written > present.gather(rows).to_numpy()]] = True
    return mask


def _python_cannot_read(records: pl.Series) -> Mask:
    """Records Python's json reads differently or not at all: loose NaN/Infinity spellings,
    deep nesting, ints too long to convert (false alarms only cost a Python parse).

    Each test runs only on the rows that can fail it: a spelling is counted only where one
    is found, brackets only in records longer than ``DEEP`` bytes, digits only in records
    longer than ``INT_DIGITS``: the usual batch has none of them and pays one scan.
    """
    mask = np.zeros(len(records), dtype=np.bool_)
    rows = np.flatnonzero(records.str.contains(LOOSE_LITERAL).fill_null(False).to_numpy())
    if len(rows):
        some = records.gather(rows)
        loose = some.str.count_matches(LOOSE_LITERAL).fill_null(0)
        exact = some.str.count_matches(PYTHON_LITERAL).fill_null(0)
        mask[rows[(loose > exact).to_numpy()]] = True
    length = records.str.len_bytes().fill_null(0).to_numpy()
    rows = np.flatnonzero(length > DEEP)
    if len(rows):
        some = records.gather(rows)
        openers = some.str.count_matches("[", literal=True).fill_null(0) + some.str.count_matches(
            "{", literal=True
        ).fill_null(0)
        mask[rows[(openers > DEEP).to_numpy()]] = True
    rows = np.flatnonzero(length > INT_DIGITS)
    if len(rows):
        runs = (
            records.gather(rows).str.extract_all("[0-9]+").list.eval(pl.element().str.len_bytes())
        )
        mask[rows[(runs.list.max().fill_null(0) > INT_DIGITS).to_numpy()]] = True
    return mask
