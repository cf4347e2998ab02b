"""The JSON path's byte-level shortcuts: token kinds, the extra-keys bound, and that a record
only doubted by them reads as DuckDB read it (same tokens as before the shortcuts)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from engine.batch import MALFORMED, Kind, kind_column
from engine.sources.json_doubts import more_keys, skip_spaces
from engine.sources.json_kinds import string_buffers, token_kinds
from engine.sources.json_values import JsonValues, token_column


def test_token_kinds_follow_first_byte_and_digits() -> None:
    tokens: list[str | None] = [
        "1",
        "-1",
        "-0",
        "-",
        "",
        "1.5",
        "1e5",
        "NaN",
        "-Infinity",
        "12a",
        "\u0663",
    ]
    tokens += ['"x"', "null", "true", "false", "{}", "[]", None]
    kinds = token_kinds(pa.array(tokens, pa.string())).tolist()
    numbers = [Kind.INT] * 3 + [Kind.FLOAT] * 8
    others = [Kind.STR, Kind.NULL, Kind.BOOL, Kind.BOOL, Kind.OBJECT, Kind.ARRAY, Kind.ABSENT]
    assert kinds == numbers + others


def test_token_kinds_of_a_sliced_large_array() -> None:
    array = pa.array(["1.5", None, "22", '"a"'], pa.large_string()).slice(1, 2)
    assert token_kinds(array).tolist() == [Kind.ABSENT, Kind.INT]


def test_skip_spaces_finds_each_first_byte() -> None:
    offsets, buf = string_buffers(pl.Series([" \t{}", "", "  ", "[1]"]).to_arrow())
    assert skip_spaces(offsets, buf).tolist() == [2, 4, 6, 6]


@pytest.mark.parametrize(
    ("texts", "present", "expected"),
    [
        (['{"a":1,"b":"1:2"}', '{"a":2}'], [2, 1], []),  # the batch-wide count suffices
        (['{"a":1,"a":2}', '{"a":2}'], [1, 1], [0]),
        (['{"a":1}', '{"a" :1, "a"\n: 2}'], [1, 1], [1]),  # spaced colons: row by row
        (['{"a":{"b":1}}', '{"a":"x\\":"}'], [1, 1], [0, 1]),  # false alarms only
    ],
)
def test_more_keys_bounds_the_keys_of_each_row(
    texts: list[str], present: list[int], expected: list[int]
) -> None:
    records = pl.Series(texts)
    offsets, buf = string_buffers(records.to_arrow())
    accepted = np.ones(len(texts), dtype=np.bool_)
    rows = more_keys(records, offsets, buf, accepted, np.array(present, dtype=np.int64))
    assert rows.tolist() == expected


def test_more_keys_skips_rejected_rows() -> None:
    records = pl.Series(['{"a":1,"a":2}', '{"a":1,"a":2'])
    offsets, buf = string_buffers(records.to_arrow())
    accepted = np.array([True, False])
    rows = more_keys(records, offsets, buf, accepted, np.array([1, 0], dtype=np.int64))
    assert rows.tolist() == [0]


@pytest.mark.parametrize("want_all_keys", [False, True])
def test_duplicates_and_nested_keys_in_a_clean_batch(want_all_keys: bool) -> None:
    """A duplicate key is Python's (the last wins), spaced or not; a requested key's name
    nested deeper keeps DuckDB's token, as before the byte-level bound."""
    records = pl.Series(
        [
            '{"a": 1, "b": "x"}',
            '{"a": 1, "a": 2}',
            '{"a" : 1, "b": "y", "a"\t: 3}',
            '{"a": {"a": 1, "b": [1, 2]}}',
        ]
    )
    values = JsonValues(("a", "b"), want_all_keys=want_all_keys)
    try:
        frame = values.frame(records)
    finally:
        values.close()
    assert frame[MALFORMED].to_list() == [None] * 4
    assert frame[token_column("a")].to_list() == ["1", "2", "3", '{"a":1,"b":[1,2]}']
    assert frame["a"].to_list() == ["1", "2", "3", '{"a":1,"b":[1,2]}']
    assert frame[kind_column("a")].to_list() == [Kind.INT] * 3 + [Kind.OBJECT]
    assert frame["b"].to_list() == ["x", None, "y", None]
    assert frame[kind_column("b")].to_list() == [Kind.STR, Kind.ABSENT, Kind.STR, Kind.ABSENT]


def test_text_of_mixed_kinds() -> None:
    records = pl.Series(['{"a": "s"}', '{"a": null}', '{"a": 1.5}', '{"a": true}', "[1]", "{}"])
    values = JsonValues(("a",), want_all_keys=False)
    try:
        frame = values.frame(records)
    finally:
        values.close()
    assert frame["a"].to_list() == ["s", None, "1.5", "true", None, None]
    assert frame[kind_column("a")].to_list() == [
        Kind.STR,
        Kind.NULL,
        Kind.FLOAT,
        Kind.BOOL,
        Kind.ABSENT,
        Kind.ABSENT,
    ]
    assert frame[MALFORMED].to_list() == [None, None, None, None, "model_type", None]


def test_a_record_python_reads_writes_nested_values_as_duckdb_does() -> None:
    """An escaped key elsewhere in a record has Python re-read it: its object and array
    values keep the compact text DuckDB gives the same values in any other record."""
    records = pl.Series(
        [
            '{"a": {"b": 1, "c": [1.0, 1e2, "x y"]}}',
            '{"a": {"b": 1, "c": [1.0, 1e2, "x y"]}, "\\u007a": 1}',
        ]
    )
    values = JsonValues(("a",), want_all_keys=False)
    try:
        frame = values.frame(records)
    finally:
        values.close()
    compact = '{"b":1,"c":[1.0,100.0,"x y"]}'
    assert frame[token_column("a")].to_list() == [compact, compact]
    assert frame["a"].to_list() == [compact, compact]
