"""A frame's key columns read from its column types equal those parsed from its JSON texts.

``frame_values`` is a shortcut: for columns of a fixed JSON kind it builds the text, kind
and token of every requested key without parsing the rows' JSON forms, and parses the
others (floats, nested values...) from a JSON object of their tokens alone. The oracle is
the path it skips: ``JsonValues.frame`` over the rows' whole texts (itself checked against
Python's ``json``). Frames, column names and requested keys are generated.
"""

from __future__ import annotations

import json
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from polars.testing.parametric import dataframes
from pydantic import BaseModel

from engine.batch import Kind
from engine.sources.frame_values import frame_values
from engine.sources.frames import FrameEncoder
from engine.sources.json_forms import column_tokens, object_text
from engine.sources.json_values import JsonValues
from engine.validation.compiler import compile_schema
from engine.validation.fallback import json_input

DTYPES: list[pl.DataType | type[pl.DataType]] = [
    pl.String,
    pl.Int8,
    pl.Int64,
    pl.UInt64,
    pl.Boolean,
    pl.Null,
    pl.Date,
    pl.Datetime("us"),
    pl.Datetime("ns", "Europe/Paris"),
    pl.Time,
    pl.Decimal(12, 3),
    pl.Categorical,
    # Parsed from their tokens:
    pl.Float64,
    pl.Float32,
    pl.List(pl.Int64),
    pl.Struct({"a": pl.String, "b": pl.Float64}),
    pl.Binary,
    pl.Duration("ms"),
]


class Empty(BaseModel):
    pass


# Column names JSON must escape or that look like patterns, and plain ones.
NAMES = st.lists(
    st.one_of(
        st.sampled_from(["a", "^a$", "*", 'q"t', "b\\s", "tab\t", "é", "😀", "", " a "]),
        st.text(max_size=6),
    ),
    unique=True,
)


def parsed(
    frame: pl.DataFrame, keys: tuple[str, ...], want_all_keys: bool, *, whole: bool = True
) -> pl.DataFrame:
    """What ``JsonValues`` reads from the frame's rows as JSON texts (or from its one column
    of texts when not ``whole``)."""
    values = JsonValues(keys, want_all_keys=want_all_keys)
    try:
        return values.frame(object_text(frame) if whole else frame.to_series())
    finally:
        values.close()


def decoded(frame: pl.DataFrame) -> pl.DataFrame:
    """Tokens, and the texts of floats, objects and arrays (their tokens), as the JSON values
    they write. Their text is not one thing even on the JSON path: DuckDB writes ``1e+20``
    as ``100000000000000000000.0`` and ``\\u001f`` as ``\\u001F``, Python's ``json`` (which
    reads a record that DuckDB might read otherwise, and the frame's tokens) does not."""
    kinds = [c for c in frame.columns if c.startswith("__kind:")]
    out = frame
    for kind in kinds:
        key = kind.removeprefix("__kind:")
        token, text = frame[f"__json:{key}"].to_list(), frame.get_column(key).to_list()
        written = [None if t is None else repr(json.loads(t)) for t in token]
        plain = [
            repr(json.loads(x)) if k in (Kind.FLOAT, Kind.OBJECT, Kind.ARRAY) else x
            for k, x in zip(frame[kind].to_list(), text, strict=True)
        ]
        out = out.with_columns(
            pl.Series(f"__json:{key}", written, pl.String), pl.Series(key, plain, pl.String)
        )
    return out


def parse(keys: tuple[str, ...], texts: pl.Series) -> pl.DataFrame:
    return parsed(texts.to_frame(), keys, False, whole=False)


def floats(numbers: pl.Series) -> pl.Series:
    encoder = FrameEncoder(compile_schema(Empty, typed=True))
    try:
        return encoder._floats(numbers)
    finally:
        encoder.close()


def compare(frame: pl.DataFrame, keys: tuple[str, ...], want_all_keys: bool) -> None:
    tokens = column_tokens(frame)
    found = frame_values(
        frame, tokens, keys, want_all_keys=want_all_keys, parse=parse, floats=floats
    )
    expected = parsed(frame, keys, want_all_keys)
    # The columns the model does not read: their inputs as Pydantic's errors give them.
    extras = [name for name in frame.columns if want_all_keys and name not in keys]
    for name in extras:
        want = [json_input(value) for value in frame.get_column(name).to_list()]
        assert found.get_column(f"__json:{name}").to_list() == want, name
    found = found.drop(f"__json:{name}" for name in extras)
    assert_frame_equal(decoded(found), decoded(expected))
    assert object_text(frame, tokens).equals(object_text(frame))


@settings(max_examples=150, deadline=None)
@given(
    frame=dataframes(allowed_dtypes=DTYPES, max_cols=5, max_size=30, allow_null=True),
    names=NAMES,
    extra_keys=st.lists(st.text(max_size=4), max_size=2),
    data=st.data(),
    want_all_keys=st.booleans(),
)
def test_generated_frames_read_as_their_json_texts(
    frame: pl.DataFrame,
    names: list[str],
    extra_keys: list[str],
    data: st.DataObject,
    want_all_keys: bool,
) -> None:
    if frame.width == 0:
        return
    if len(names) >= frame.width:
        frame = frame.rename(dict(zip(frame.columns, names, strict=False)))
    chosen = data.draw(st.lists(st.sampled_from(frame.columns), unique=True))
    keys = tuple(dict.fromkeys([*chosen, *extra_keys]))
    compare(frame, keys, want_all_keys)


def test_values_json_writes_with_escapes_and_every_kind() -> None:
    frame = pl.DataFrame(
        {
            "s": ['a"b', "back\\slash", "line\nbreak", "\x00\x1f", "é😀", "", None],
            "i": [0, -1, 2**62, None, 7, -(2**63), 1],
            "b": [True, False, None, True, False, True, None],
            "n": [None] * 7,
            "d": [Decimal("1.500"), None, Decimal("-0.001"), Decimal(0), None, None, None],
        },
        schema_overrides={"d": pl.Decimal(10, 3)},
    ).with_columns(pl.col("s").cast(pl.Categorical).alias("c"))
    compare(frame, ("s", "i", "b", "n", "d", "c", "missing"), True)
    compare(frame, ("s", "missing"), False)
    found = frame_values(
        frame, column_tokens(frame), ("s", "i"), want_all_keys=False, parse=parse, floats=floats
    )
    assert found["__kind:s"].to_list() == [2, 2, 2, 2, 2, 2, 1]
    assert found["__json:s"].to_list()[:4] == [
        '"a\\"b"',
        '"back\\\\slash"',
        '"line\\nbreak"',
        '"\\u0000\\u001f"',
    ]
    assert found["__kind:i"].to_list() == [3, 3, 3, 1, 3, 3, 3]


def test_only_columns_of_no_fixed_kind_are_parsed_from_their_own_tokens() -> None:
    frame = pl.DataFrame(
        {"s": ["x"], "f": [1e20], "l": [[1, 2]], "i": [3], "unread": [0.5]},
    )
    calls: list[tuple[tuple[str, ...], list[str]]] = []

    def spy(keys: tuple[str, ...], texts: pl.Series) -> pl.DataFrame:
        calls.append((keys, texts.to_list()))
        return parse(keys, texts)

    keys = ("s", "f", "l", "i", "absent")
    found = frame_values(
        frame, column_tokens(frame), keys, want_all_keys=False, parse=spy, floats=floats
    )
    assert calls == [(("l",), ['{"l":[1,2]}'])]
    assert found.row(0) == (
        None,
        None,
        None,
        False,
        "x",
        2,
        '"x"',
        "100000000000000000000.0",
        4,
        "100000000000000000000.0",
        "[1,2]",
        7,
        "[1,2]",
        "3",
        3,
        "3",
        None,
        0,
        None,
    )
    calls.clear()
    frame_values(
        frame.select("s", "i"),
        column_tokens(frame.select("s", "i")),
        keys,
        want_all_keys=False,
        parse=spy,
        floats=floats,
    )
    assert calls == []


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.floats()), min_size=1, max_size=40),
    narrow=st.lists(st.one_of(st.none(), st.floats(width=32)), min_size=40, max_size=40),
)
def test_floats_read_as_duckdb_reads_their_tokens_exactly(
    values: list[float | None], narrow: list[float | None]
) -> None:
    """A float's text and token are DuckDB's, character for character (a record of plain
    keys and numbers has nothing Python's json would read otherwise)."""
    frame = pl.DataFrame(
        {
            "a": pl.Series(values, dtype=pl.Float64),
            "b": pl.Series(narrow[: len(values)], dtype=pl.Float32),
        }
    )
    keys = ("a", "b")
    found = frame_values(
        frame, column_tokens(frame), keys, want_all_keys=False, parse=parse, floats=floats
    )
    assert_frame_equal(found, parsed(frame, keys, False))
