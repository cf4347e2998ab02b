"""Each JSON value token's kind and text, read from the tokens' Arrow bytes.

A token's kind follows from its first byte (``"`` a string, ``n`` null, ``t``/``f`` a bool,
``{`` an object, ``[`` an array; anything else a number: an int when it is only digits after
an optional ``-``, else a float). NumPy reads those bytes straight from the Arrow buffers, one
vectorized pass per key, and the text column is built only with the operations the kinds
found in the batch need: a key whose values are all numbers keeps its tokens as they are, one
whose values are all strings only loses the quotes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

from engine.batch import Kind

NUMBER = 255  # first bytes of no other kind: an int or a float, told apart by the digits
KIND_OF_FIRST = np.full(256, NUMBER, dtype=np.uint8)
KIND_OF_FIRST[ord('"')] = Kind.STR
KIND_OF_FIRST[ord("n")] = Kind.NULL
KIND_OF_FIRST[[ord("t"), ord("f")]] = Kind.BOOL
KIND_OF_FIRST[ord("{")] = Kind.OBJECT
KIND_OF_FIRST[ord("[")] = Kind.ARRAY
ZERO = ord("0")
MINUS = ord("-")

Offsets = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]


def string_buffers(array: pa.Array | pa.ChunkedArray) -> tuple[Offsets, Bytes]:
    """A string array's byte offsets (one more than its length) and bytes, copying only
    what Arrow must to lay the strings out contiguously."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type):
        width: type[np.integer] = np.int32
    else:
        if not pa.types.is_large_string(array.type):
            array = array.cast(pa.large_string())
        width = np.int64
    offsets = np.frombuffer(array.buffers()[1], dtype=width)
    offsets = offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)
    data = array.buffers()[2]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return offsets, buf


def first_bytes(starts: Offsets, ends: Offsets, buf: Bytes) -> Bytes:
    """The first byte of each string ``buf[starts[i]:ends[i]]``, 0 for an empty one."""
    if not len(buf):
        return np.zeros(len(starts), dtype=np.uint8)
    first: Bytes = np.where(
        ends > starts, buf[np.minimum(starts, len(buf) - 1)], np.uint8(0)
    ).astype(np.uint8)
    return first


def token_kinds(tokens: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """The Kind of each JSON token (ABSENT for a null), exactly as the first byte and, for
    numbers, ``^-?[0-9]+$`` tell."""
    offsets, buf = string_buffers(tokens)
    starts, ends = offsets[:-1], offsets[1:]
    first = first_bytes(starts, ends, buf)
    kinds = KIND_OF_FIRST[first]
    numeric = kinds == NUMBER
    if numeric.any():
        other = ((buf - np.uint8(ZERO)) > 9).view(np.uint8)  # not an ASCII digit
        width = np.int32 if len(buf) < 2**31 else np.int64
        others = np.concatenate(([0], np.cumsum(other, dtype=width)))
        not_digits = others[ends] - others[starts]
        minus = first == MINUS  # 0 for an empty token
        whole = (ends - starts - minus >= 1) & (not_digits == minus)
        kinds[numeric] = np.where(whole[numeric], Kind.INT, Kind.FLOAT)
    if tokens.null_count:
        kinds[np.asarray(tokens.is_null(), dtype=np.bool_)] = Kind.ABSENT
    return kinds


def token_text(token: pl.Expr, kind: pl.Expr, counts: npt.NDArray[np.int64]) -> pl.Expr:
    """A key's text from its tokens: a string without its quotes, null for a JSON null, any
    other value's token as it is. ``counts`` are the batch's rows of each Kind."""
    unquoted = token.str.slice(1).str.head(-1)
    if not counts[Kind.STR] and not counts[Kind.NULL]:
        return token
    if counts[Kind.STR] + counts[Kind.ABSENT] == counts.sum():
        return unquoted
    return (
        pl.when(kind == Kind.STR)
        .then(unquoted)
        .when(kind == Kind.NULL)
        .then(pl.lit(None, pl.String))
        .otherwise(token)
    )
