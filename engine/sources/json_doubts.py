"""Records DuckDB accepted but Python's ``json.loads`` might read differently.

DuckDB's reader (yyjson) accepts a trailing comma before ``}`` or ``]`` and keeps the first of
duplicate keys; Python refuses the first and keeps the last of the second. Finding such
records must cost next to nothing on the records that have neither, which is nearly all:

- trailing commas: in the usual batch every ``}``/``]`` ends a record, so only the byte before
  each record's last one needs a look (per row, not per byte); otherwise every closing
  bracket is checked, still vectorized;
- duplicate keys: a record with more keys (duplicates included) than it has distinct
  requested ones is looked at more closely. The keys are bounded from the bytes first (the
  colons after a quote or a space, one count for the whole batch when it suffices); DuckDB
  counts them (``json_keys``) only in records over that bound;
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

WHITESPACE = np.zeros(256, dtype=np.bool_)
WHITESPACE[[9, 10, 13, 32]] = True
CLOSERS = (ord("}"), ord("]"))
COMMA = ord(",")
COLON = ord(":")
QUOTE = ord('"')
SPACE = ord(" ")  # JSON's whitespace, and the control bytes, are at most this
QUOTE_COLON = COLON << 8 | QUOTE  # '":' as a little-endian 16-bit number
SPACED_COLON = r"[ \t\r\n]:"
ESCAPED_KEY = r'\\u[0-9a-fA-F]{4}(?:[^"\\]|\\.)*"[ \t\r\n]*:'
LOOSE_LITERAL = r"[:,\[][ \t\r\n]*[+-]?(?i:nan|inf)"
PYTHON_LITERAL = r"[:,\[][ \t\r\n]*(?:NaN|-?Infinity)"
DEEP = 200  # opening brackets in a record beyond which Python's json may give up
INT_DIGITS = 4300  # sys.get_int_max_str_digits(): longer ints do not convert

Mask = npt.NDArray[np.bool_]
Offsets = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]


def key_pattern(keys: Sequence[str]) -> str | None:
    """A regex matching any requested key written as a key (``"name":``)."""
    if not keys:
        return None
    names = "|".join(re.escape(json.dumps(k, ensure_ascii=False)) for k in keys)
    return f"(?:{names})[ \\t\\r\\n]*:"


def skip_spaces(offsets: Offsets, buf: Bytes) -> Offsets:
    """Where each row's first byte that is not JSON whitespace is (its end if none is)."""
    at = offsets[:-1].copy()
    ends = offsets[1:]
    if not len(buf):
        return at
    limit = len(buf) - 1
    moving = (at < ends) & WHITESPACE[buf[np.minimum(at, limit)]]
    while moving.any():
        at[moving] += 1
        moving &= (at < ends) & WHITESPACE[buf[np.minimum(at, limit)]]
    return at


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


def more_keys(
    records: pl.Series,
    offsets: Offsets,
    buf: Bytes,
    accepted: Mask,
    present: npt.NDArray[np.int64],
) -> npt.NDArray[np.intp]:
    """The accepted rows that may hold more keys (at top level, duplicates included) than
    the ``present`` requested ones: those with more colons right after a quote or a space
    (at any depth, in strings too) than that. Every key is followed by such a colon, so no
    other row can; usually no row does, which one count over the batch tells."""
    body = buf[offsets[0] : offsets[-1]]
    if len(body) < 2:
        return np.zeros(0, dtype=np.intp)
    if accepted.all() and not records.str.contains(SPACED_COLON).any():
        # Every key's colon follows its quote: count the batch's '":' pairs, two bytes read
        # as one 16-bit number, at even and at odd positions.
        pairs = 0
        for start in (0, 1):
            words = body[start : start + (len(body) - start) // 2 * 2].view("<u2")
            pairs += int(np.count_nonzero(words == QUOTE_COLON))
        if pairs <= present.sum():
            return np.zeros(0, dtype=np.intp)  # no row has more than its present keys
    before = body[:-1]
    colons = (body[1:] == COLON) & ((before == QUOTE) | (before <= SPACE))
    if accepted.all() and np.count_nonzero(colons) <= present.sum():
        return np.zeros(0, dtype=np.intp)  # no row has more than its present keys
    at = np.flatnonzero(colons) + (offsets[0] + 1)
    counts = np.diff(np.searchsorted(at, offsets))  # colons from each row's start on
    rows: npt.NDArray[np.intp] = np.flatnonzero(accepted & (counts > present))
    return rows


def doubtful(
    records: pl.Series,
    offsets: Offsets,
    buf: Bytes,
    accepted: Mask,
    key_counts: npt.NDArray[np.int64] | None,
    present: npt.NDArray[np.int64] | None,
    keys_regex: str | None,
) -> Mask:
    """Rows DuckDB ``accepted`` to give Python's verdict: ``offsets`` and ``buf`` are the
    ``records``' bytes, ``key_counts`` how many keys each record may hold (duplicates
    included), ``present`` how many distinct requested keys DuckDB found."""
    mask = trailing_commas(len(records), offsets, buf)
    if np.count_nonzero(buf[offsets[0] : offsets[-1]] == ord("\\")):
        escaped = records.str.contains("\\u", literal=True).fill_null(False)
        rows = np.flatnonzero(escaped.to_numpy())
        if len(rows):
            keyish = records.gather(rows).str.contains(ESCAPED_KEY).fill_null(False)
            mask[rows[keyish.to_numpy()]] = True
    mask |= _python_cannot_read(records, np.diff(offsets))
    if key_counts is not None and present is not None and keys_regex is not None:
        # More keys than distinct requested ones: other keys, or a requested one twice.
        rows = np.flatnonzero(accepted & (key_counts > present))
        if len(rows):
            written = records.gather(rows).str.count_matches(keys_regex).to_numpy()
            mask[rows[written > present[rows]]] = True
    found: Mask = mask & accepted
    return found


def _python_cannot_read(records: pl.Series, length: npt.NDArray[np.int64]) -> Mask:
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
