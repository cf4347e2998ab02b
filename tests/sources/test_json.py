"""NDJSON and JSON-array reading: kinds of values, malformed records, block-size independence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.batch import LINE, MALFORMED, RAW, ROW, Kind, kind_column
from engine.errors import SourceError
from engine.sources.json import JsonSource
from engine.sources.json_values import JsonValues, token_column

Write = Callable[[str, str | bytes], Path]


def read(
    path: Path, *, array: bool, keys: tuple[str, ...] = ("a", "b"), block_size: int = 1 << 20
) -> pl.DataFrame:
    source = JsonSource(
        path,
        keys=keys,
        want_all_keys=True,
        array=array,
        block_size=block_size,
        max_record_bytes=1 << 16,
    )
    frames = [batch.frame for batch in source.batches()]
    return pl.concat(frames)


NDJSON = (
    '{"a": 1, "b": "x\\"y"}\n'
    "\n"
    '{"a": "2", "c": 3}\n'
    "nope\n"
    "[1,2]\n"
    '{"a": NaN}\n'
    '{"a": null, "b": {"d": [1]}}\n'
    '{"a": 1e3, "b": true}\n'
    '{"a": -7, "b": [1, "two"]}\n'
)


@pytest.mark.parametrize("block_size", [5, 1 << 20])
def test_ndjson_values_keep_their_json_kind(write: Write, block_size: int) -> None:
    frame = read(write("t.ndjson", NDJSON), array=False, block_size=block_size)
    got = frame.select(
        ROW, LINE, MALFORMED, "a", kind_column("a"), token_column("a"), "b", kind_column("b")
    ).rows()
    assert got == [
        (1, 1, None, "1", Kind.INT, "1", 'x"y', Kind.STR),
        (2, 3, None, "2", Kind.STR, '"2"', None, Kind.ABSENT),
        (3, 4, "json_invalid", None, Kind.ABSENT, None, None, Kind.ABSENT),
        (4, 5, "model_type", None, Kind.ABSENT, None, None, Kind.ABSENT),
        (5, 6, None, "NaN", Kind.FLOAT, "NaN", None, Kind.ABSENT),
        (6, 7, None, None, Kind.NULL, "null", '{"d":[1]}', Kind.OBJECT),
        (7, 8, None, "1000.0", Kind.FLOAT, "1000.0", "true", Kind.BOOL),
        (8, 9, None, "-7", Kind.INT, "-7", '[1,"two"]', Kind.ARRAY),
    ]
    assert frame["__keys"].to_list()[:2] == [["a", "b"], ["a", "c"]]


ARRAY = (
    ' [ {"a": 1, "b": "x\\\\\\"],y"},\n'
    ' {"a": [1,2], "b": "}"},\n'
    ' {"a": \n  3},\n'
    ' 5, "str", {"bad": },\n'
    ' {"a": 4}\n'
    "] \n"
)


@pytest.mark.parametrize("block_size", [7, 1 << 20])
def test_json_array_elements(write: Write, block_size: int) -> None:
    frame = read(write("t.json", ARRAY), array=True, block_size=block_size)
    assert frame.select(ROW, LINE, RAW, MALFORMED, "a", "b").rows() == [
        (1, 1, '{"a": 1, "b": "x\\\\\\"],y"}', None, "1", 'x\\"],y'),
        (2, 2, '{"a": [1,2], "b": "}"}', None, "[1,2]", "}"),
        (3, 3, '{"a": \n  3}', None, "3", None),
        (4, 5, "5", "model_type", None, None),
        (5, 5, '"str"', "model_type", None, None),
        (6, 5, '{"bad": }', "json_invalid", None, None),
        (7, 6, '{"a": 4}', None, "4", None),
    ]


@pytest.mark.parametrize("block_size", [1, 3, 7, 1 << 20])
def test_ndjson_lines_end_at_lf_crlf_or_a_lone_cr(write: Write, block_size: int) -> None:
    """As Python's ``open()`` reads text lines: an NDJSON file from an old Mac is one record
    per line, not one unparseable record (JSON's own whitespace may hold a ``\\r``, but a
    record is one line)."""
    content = b'{"a": 1}\r{"a": 2}\n{"a": 3}\r\n\r{"a": 4}\r'
    frame = read(write("m.ndjson", content), array=False, block_size=block_size)
    assert frame.select(ROW, LINE, RAW, MALFORMED, "a").rows() == [
        (1, 1, '{"a": 1}', None, "1"),
        (2, 2, '{"a": 2}', None, "2"),
        (3, 3, '{"a": 3}', None, "3"),
        (4, 5, '{"a": 4}', None, "4"),
    ]


def test_json_array_lines_count_lone_crs(write: Write) -> None:
    frame = read(write("m.json", b'[{"a": 1},\r{"a": 2},\r\n\r {"a": 3}]'), array=True)
    assert frame.select(ROW, LINE, "a").rows() == [(1, 1, "1"), (2, 2, "2"), (3, 4, "3")]


@pytest.mark.parametrize("block_size", [1, 4, 1 << 20])
@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (
            '[{"a": 1},,{"a": 2}]',
            [(1, '{"a": 1}', None), (2, "", "json_invalid"), (3, '{"a": 2}', None)],
        ),
        ('[ ,{"a": 1}]', [(1, "", "json_invalid"), (2, '{"a": 1}', None)]),
        (
            '[{"a": 1},\n{"a": 2},\n]\n',
            [(1, '{"a": 1}', None), (2, '{"a": 2}', None), (3, "", "json_invalid")],
        ),
        ('[\n\n{"a": 1}\n\n,\n\n{"a": 2}\n\n]\n\n', [(1, '{"a": 1}', None), (2, '{"a": 2}', None)]),
    ],
)
def test_json_array_missing_elements_are_invalid_rows(
    write: Write, block_size: int, content: str, rows: list[tuple[int, str, str | None]]
) -> None:
    """Where Python's json expects a value and finds none (``[,``, ``,,``, ``,]``), that is a
    ``json_invalid`` row, never silently skipped; blank lines between elements are neither
    rows nor counted (they are JSON whitespace)."""
    try:
        json.loads(content)
        python_accepts = True
    except json.JSONDecodeError:
        python_accepts = False
    assert python_accepts is not any(malformed for *_, malformed in rows)
    source = JsonSource(
        write("m.json", content),
        keys=("a",),
        want_all_keys=False,
        array=True,
        block_size=block_size,
        max_record_bytes=1 << 16,
    )
    frame = pl.concat([batch.frame for batch in source.batches()])
    assert frame.select(ROW, RAW, MALFORMED).rows() == rows
    assert source.blank_lines == 0


@pytest.mark.parametrize(
    ("content", "line"),
    [('[{"a": 1}', 1), ('[{"a": 1},\n{"a": 2},\n\n', 2), ('[\n{"a":\n 1}\n  \n', 3), ("[", 1)],
)
def test_json_array_not_closed_stops_the_run(write: Write, content: str, line: int) -> None:
    """A file that ends inside the array was cut short: Python's json refuses it, so does
    the run, naming the last line that holds text."""
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    source = JsonSource(
        write("cut.json", content),
        keys=("a",),
        want_all_keys=False,
        array=True,
        block_size=3,
        max_record_bytes=1 << 16,
    )
    with pytest.raises(SourceError) as raised:
        list(source.batches())
    assert str(raised.value) == (
        f"{source.name}, line {line}: the JSON array is not closed: the file ends before its"
        " ']' (cut short?)"
    )


def test_json_array_with_no_elements(write: Write) -> None:
    source = JsonSource(
        write("e.json", "[ ]\n"),
        keys=("a",),
        want_all_keys=False,
        array=True,
        block_size=1024,
        max_record_bytes=1024,
    )
    assert list(source.batches()) == []


@pytest.mark.parametrize(
    ("name", "content", "array", "problem"),
    [
        (
            "a.json",
            '{"a": 1}\n',
            True,
            ", line 1: not a JSON array: the file does not start with '[' (use format='ndjson' "
            "for one object per line)",
        ),
        (
            "b.ndjson",
            '[{"a": 1}]\n',
            False,
            ", line 1: looks like a JSON array, not NDJSON (one object per line) (use "
            "format='json')",
        ),
        ("c.ndjson", "", False, ": file is empty"),
    ],
)
def test_wrong_format_stops_with_one_line(
    write: Write, name: str, content: str, array: bool, problem: str
) -> None:
    path = write(name, content)
    with pytest.raises(SourceError) as raised:
        read(path, array=array)
    assert str(raised.value) == f"{path}{problem}"


@pytest.mark.parametrize("array", [True, False])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_a_utf16_or_utf32_file_stops_with_one_line(
    write: Write, array: bool, encoding: str
) -> None:
    """Read as UTF-8, each of its lines would be garbage (an invalid row per line break byte,
    not per record): the file stops at once, saying what it is."""
    text = '[{"a": 1}]\n' if array else '{"a": 1}\n{"a": 2}\n'
    body = text.encode(encoding)
    if encoding.endswith("-be"):  # the codecs with an explicit order write no mark
        body = "\ufeff".encode(encoding) + body
    if encoding == "utf-16":  # and after a UTF-8 mark (a file converted twice)
        body = b"\xef\xbb\xbf" + body
    path = write("wide.json" if array else "wide.ndjson", body)
    with pytest.raises(SourceError) as raised:
        read(path, array=array)
    family = encoding.removesuffix("-be")
    assert str(raised.value) == (
        f"{path}, line 1: the file starts with a {family.upper()} byte order mark; JSON is "
        f"read as UTF-8 (convert it to UTF-8 first, e.g. iconv -f {family} -t utf-8)"
    )


# Values may hold lone surrogates (an escaped "\\ud800" is a string to json.loads; the token
# keeps it escaped, since UTF-8 cannot hold it); a record holding one can only be written
# with ensure_ascii=True. Keys are a model's field names or aliases, which hold none.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
VALUE_TEXT = st.text(max_size=8)
# Two kinds of key are left out: "__..." names the engine's own columns, and Polars reads a
# name like "^a$" (or "*") as a pattern (the CSV reader refuses both in a header, the schema compiler
# in a field name or alias).
KEYS = st.one_of(
    st.sampled_from(["a", "b", "", "_", "~", "/", "a/b~1", '"', "\\", "é", "😀"]),
    TEXT.filter(
        lambda key: (
            not key.startswith("__")
            and key != "*"
            and not (key.startswith("^") and key.endswith("$"))
        )
    ),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | VALUE_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)


def _has_surrogate(value: object) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(value, ensure_ascii=False))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(st.dictionaries(KEYS, json_values, max_size=5), min_size=1, max_size=20),
    ascii_only=st.lists(st.booleans(), min_size=20, max_size=20),
    indent=st.sampled_from([None, 1, "\t"]),
    block=st.integers(16, 400),
)
def test_array_and_ndjson_agree_with_json_module(
    tmp_path: Path,
    records: list[dict[str, object]],
    ascii_only: list[bool],
    indent: int | str | None,
    block: int,
) -> None:
    """Records written by ``json.dumps`` (raw UTF-8 or ``\\u`` escapes, any keys, nested values)
    read back key by key: each value's JSON text is what ``json.loads`` reads, and each
    record's key list is its own."""
    ascii_only = [a or _has_surrogate(r) for r, a in zip(records, ascii_only, strict=False)]
    texts = [json.dumps(r, ensure_ascii=a) for r, a in zip(records, ascii_only, strict=False)]
    ndjson = tmp_path / "r.ndjson"
    ndjson.write_bytes("".join(t + "\n" for t in texts).encode("utf-8"))
    array = tmp_path / "r.json"
    elements = [
        json.dumps(r, ensure_ascii=a, indent=indent)
        for r, a in zip(records, ascii_only, strict=False)
    ]
    array.write_bytes(("[\n" + ",\n".join(elements) + "\n]").encode("utf-8"))
    keys = (*dict.fromkeys(k for r in records for k in r), "absent")
    for frame in (
        read(ndjson, array=False, keys=keys, block_size=block),
        read(array, array=True, keys=keys, block_size=block),
    ):
        assert frame.height == len(records)
        assert frame[MALFORMED].null_count() == len(records)
        assert frame["__keys"].to_list() == [list(r) for r in records]
        for key in keys:
            tokens = frame.get_column(token_column(key)).to_list()
            found = [json.loads(t) if t is not None else "<absent>" for t in tokens]
            assert found == [r.get(key, "<absent>") for r in records], key


TRICKY = [
    '{"a": 1, "b": "x"}',
    "",
    "   ",
    "nope",
    '{"a": 1,}',
    '{"a": 1, "a": 2}',
    '{"a": nan, "b": Infinity}',
    '{"a": NaN}',
    '{"a": "\\ud800"}',
    '{"\\u0061": 5, "a": 6}',
    '{"a": 1} x',
    "[1, 2]",
    '"s"',
    "[" * 300 + "]" * 300,
    '{"a": ' + "9" * 5000 + "}",
    '{"a": {"b": [1, {"c": null}]}, "b": false}',
]


@pytest.mark.parametrize("want_all_keys", [True, False])
@pytest.mark.parametrize("keys", [("a", "b"), ()])
@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.sampled_from(TRICKY) | st.text(max_size=12), min_size=1, max_size=12))
def test_both_ways_of_telling_json_apart_agree(
    texts: list[str], keys: tuple[str, ...], want_all_keys: bool
) -> None:
    """A reader parses with ``try`` while its batches are clean and checks with
    ``json_valid`` first after a batch held non-JSON text: both give the same frame."""
    records = pl.Series(texts, dtype=pl.String)
    clean = JsonValues(keys, want_all_keys=want_all_keys)
    checked = JsonValues(keys, want_all_keys=want_all_keys)
    try:
        checked.frame(pl.Series(["not json"]))  # the next batch is checked
        assert not checked._clean
        assert clean._clean
        assert_frame_equal(clean.frame(records), checked.frame(records))
    finally:
        clean.close()
        checked.close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    long_at=st.integers(0, 11),
    indent=st.sampled_from([None, 1, 4, "\t"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    separator=st.sampled_from([",", ",\n", "\n,", ",\n\n  "]),
    block=st.integers(7, 3000),
)
def test_a_too_long_element_is_named_at_the_line_its_row_would_have(
    tmp_path: Path,
    sizes: list[int],
    long_at: int,
    indent: int | str | None,
    newline: str,
    separator: str,
    block: int,
) -> None:
    """Whatever the layout (one line, pretty-printed, line ends of each kind) and wherever
    the blocks fall, an element over the limit stops the file naming the line its row's
    lineage names with a larger limit, and says it spans lines exactly when its text does."""
    long_at %= len(sizes)
    records = [
        {"a": i, "b": "x" * (2000 if i == long_at else size)} for i, size in enumerate(sizes)
    ]
    elements = [json.dumps(r, indent=indent) for r in records]
    text = ("[" + newline + separator.join(elements) + newline + "]").replace("\n", newline)
    path = tmp_path / "long.json"
    path.write_bytes(text.encode())
    assert json.loads(text) == records

    def source(limit: int) -> JsonSource:
        keys = ("a", "b")
        return JsonSource(
            path,
            keys=keys,
            want_all_keys=False,
            array=True,
            block_size=block,
            max_record_bytes=limit,
        )

    rows = pl.concat([batch.frame for batch in source(1 << 16).batches()])
    line, raw = rows.row(long_at, named=True)[LINE], rows.row(long_at, named=True)[RAW]
    with pytest.raises(SourceError) as raised:
        list(source(1000).batches())
    what = (
        "runs on across lines for more than 1,000 bytes (a quote or bracket that never closes, "
        "or an element longer than that)"
        if "\n" in raw or "\r" in raw
        else "is longer than 1,000 bytes"
    )
    assert str(raised.value) == (
        f"{path}, line {line}: an element of the JSON array {what} "
        "(raise max_record_bytes if the file is right)"
    )


@pytest.mark.parametrize("after", ["\n]", "\n,\n{}]", "\r\n  ]"])
def test_an_element_over_the_limit_before_its_comma_is_read_is_one_line_long(
    write: Write, after: str
) -> None:
    """The block ends after the element and the line end that follows it, before the comma
    or bracket that ends it: the line end is whitespace, not the element spanning lines."""
    element = json.dumps({"a": 1, "b": "x" * 1500})
    path = write("late.json", "[\n" + element + after)
    ahead = len("[\n" + element) + len(after) - len(after.lstrip())  # up to the boundary
    source = JsonSource(
        path, keys=("a",), want_all_keys=False, array=True, block_size=ahead, max_record_bytes=1000
    )
    with pytest.raises(SourceError) as raised:
        list(source.batches())
    assert str(raised.value) == (
        f"{path}, line 2: an element of the JSON array is longer than 1,000 bytes "
        "(raise max_record_bytes if the file is right)"
    )


SPREAD = (
    ", line {line}: a JSON object spread over several lines (pretty-printed), not NDJSON (one "
    "object per line) (write one object per line, or put the objects in a JSON array and use "
    "format='json')"
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), min_size=1),
        min_size=1,
        max_size=3,
    ),
    indent=st.sampled_from([1, 2, 4, "\t"]),
    blank=st.sampled_from(["", "\n", "\n \n", "\r\n"]),
)
def test_a_pretty_printed_object_is_not_read_as_ndjson(
    write: Write, records: list[dict[str, object]], indent: int | str, blank: str
) -> None:
    """Read line by line, each of its lines was an invalid row: it stops in one line, at the
    line where the object starts (json.dumps with an indent writes one key per line)."""
    text = blank + "\n".join(json.dumps(r, indent=indent) for r in records) + "\n"
    path = write("pretty.json", text)
    with pytest.raises(SourceError) as raised:
        read(path, array=False)
    line = 1 + blank.count("\n")
    assert str(raised.value) == f"{path}" + SPREAD.format(line=line)


def test_an_object_opened_on_its_first_line_and_spread_is_refused(write: Write) -> None:
    path = write("kr.ndjson", '{ "a": 1,\n  "b": 2 }\n')
    with pytest.raises(SourceError) as raised:
        read(path, array=False)
    assert str(raised.value) == f"{path}" + SPREAD.format(line=1)


@pytest.mark.parametrize(
    "content",
    [
        '{"a": 1\n{"a": 2}\n',  # a broken first record, then records: NDJSON
        '{"a": 1',  # one line
        "{\n",  # one line
        '{"a": 1}\n{"a": 2}\n',
        '{\n{"a": 2}\n',
    ],
)
def test_ndjson_whose_first_record_is_broken_is_still_read(write: Write, content: str) -> None:
    path = write("broken.ndjson", content)
    frame = read(path, array=False)
    expected = [json.loads(line) if line.endswith("}") else None for line in content.splitlines()]
    assert frame.height == len(expected)
    assert frame[MALFORMED].to_list() == [None if e else "json_invalid" for e in expected]


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        ('{"a": "x\ry", "b": 1}\n{"a": 2}\n', 3),  # a CR in a string cuts the first record
        ('{"a": 1\n"a string"\n', 2),  # a broken record, then a value that is no object
        ('{"a": ' * 1200 + "1" + "}" * 1200 + '\n"x"\n', 2),  # deeper than Python
        ('{"a": 1}\n  {"a": 2}\n', 2),
        ('{"a": 1}\n"b"\n', 2),
    ],
)
def test_records_that_only_look_spread_are_read(write: Write, content: str, rows: int) -> None:
    """A second attack found these refused as pretty-printed objects."""
    path = write("looks.ndjson", content)
    assert read(path, array=False).height == rows


def test_a_spread_object_is_named_at_its_line_whatever_the_line_ends(write: Write) -> None:
    for blank in ("\r\r", "\r\n\r\n", "\n\r\n"):
        path = write("late.ndjson", blank + '{\r  "a": 1\r}\r')
        with pytest.raises(SourceError) as raised:
            read(path, array=False)
        assert str(raised.value) == f"{path}" + SPREAD.format(line=3), repr(blank)
