"""A JSON array whose brackets stop framing its elements stops the run at the line where
they do, in one line, as Python's ``json`` refuses the whole file: a ``}`` that closes the
array, or anything but whitespace after its closing ``]``. Before 2026-12-05 the reader went
on cutting at every comma: pieces of records were stored as rows, some of them valid
(an independent attack: ``[T1}},[{A},{B}]]`` stored B as a valid row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import SourceError
from engine.sources.json import JsonSource
from tests.sources.test_json import Write

BRACE = "a '}' closes the JSON array (a '{' is missing before it, or it is one too many)"
AFTER = "text after the JSON array's closing ']' (a '[' is missing, or a ']' is one too many)"


def elements(path: Path, block_size: int = 1 << 20) -> list[str]:
    source = JsonSource(
        path,
        keys=("a",),
        want_all_keys=False,
        array=True,
        block_size=block_size,
        max_record_bytes=1 << 16,
    )
    return [text for batch in source.batches() for text in batch.frame["__raw"].to_list()]


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        ('[{"a":1},\n{"a":2}},{"a":3}]', 2, BRACE),
        ('[{"a":1}},[{"a":2},{"a":3}]]', 1, BRACE),
        ('[{"a":1}] {"a":2}', 1, AFTER),
        ('[{"a":1}]\n{"a":2}\n', 2, AFTER),
        ('[{"a":1}]\n\n]', 3, AFTER),
        ('[{"a":1}]\n,', 2, AFTER),
        ('[{"a":1},{"a":2}],{"a":3}]', 1, AFTER),
    ],
)
def test_broken_framing_stops_with_one_line(
    write: Write, content: str, line: int, problem: str
) -> None:
    path = write("broken.json", content)
    with pytest.raises(SourceError) as raised:
        elements(path)
    assert str(raised.value) == f"{path}, line {line}: {problem}"


def test_what_still_frames_is_read(write: Write) -> None:
    """Brackets inside strings, a mismatched pair inside one element (its own json_invalid
    row: the framing holds), a trailing comma and trailing whitespace."""
    path = write("ok.json", '[{"a":"}]"},\n {"a":[1}],{"a":2},]  \n\n')
    assert elements(path) == ['{"a":"}]"}', '{"a":[1}]', '{"a":2}', ""]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 99), min_size=2, max_size=40),
    st.data(),
    st.sampled_from(["}", "]", "] x", "]]", "}}"]),
    st.sampled_from([16, 64, 1 << 20]),
)
def test_a_stray_bracket_anywhere_stops_the_run(
    tmp_path_factory: pytest.TempPathFactory,
    values: list[int],
    data: st.DataObject,
    stray: str,
    block_size: int,
) -> None:
    """Wherever the stray bracket falls between elements, and wherever the blocks are cut,
    the run stops on the line where Python's json refuses the file, never a row of a piece."""
    records = [json.dumps({"a": v, "s": "x,]}"}) for v in values]
    at = data.draw(st.integers(0, len(records) - 1))
    lines = [r + ("," if i < len(records) - 1 else "") for i, r in enumerate(records)]
    lines[at] = records[at] + stray + ("," if at < len(records) - 1 else "")
    text = "[\n" + "\n".join(lines) + "\n]\n"
    with pytest.raises(json.JSONDecodeError) as refused:
        json.loads(text)
    path = tmp_path_factory.mktemp("stray") / "x.json"
    path.write_text(text)
    with pytest.raises(SourceError) as raised:
        elements(path, block_size)
    expected = BRACE if stray.startswith("}") else AFTER
    assert str(raised.value) == f"{path}, line {refused.value.lineno}: {expected}"


def test_only_jsons_whitespace_is_whitespace(write: Write) -> None:
    """JSON's whitespace is space, tab, line feed and carriage return: a form feed, a
    vertical tab or a no-break space stays in its element (a json_invalid row, where it was
    trimmed and the element stored valid), and after the array it is text after it
    (Python's json refuses all of them; an independent attack)."""
    path = write("ff.json", '[ {"a":1} ,\r\n\t\x0c{"a":2}\x0b]\n')
    assert elements(path) == ['{"a":1}', '\x0c{"a":2}\x0b']
    path = write("nbsp.json", '[{"a":1}]\u00a0\n')
    with pytest.raises(SourceError) as raised:
        elements(path)
    assert str(raised.value) == f"{path}, line 1: {AFTER}"
