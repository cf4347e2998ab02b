"""CSV reading: RFC 4180 quoting, malformed lines as rows, independence from block size."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.errors import SourceError
from engine.sources.blocks import Records
from engine.sources.csv import CsvSource

Write = Callable[[str, str | bytes], Path]


def read(
    path: Path, block_size: int = 1 << 20, max_record_bytes: int = 1 << 20
) -> tuple[CsvSource, pl.DataFrame]:
    source = CsvSource(path, block_size=block_size, max_record_bytes=max_record_bytes)
    frames = [batch.frame for batch in source.batches()]
    return source, pl.concat(frames) if frames else pl.DataFrame()


MESSY = (
    b"\xef\xbb\xbfa,b,c\r\n"
    b"1,2,3\r\n"
    b'"x,y","he said ""hi""",z\r\n'
    b"4,5\r\n"
    b"6,7,8,9\r\n"
    b"\r\n"
    b'"multi\nline",ok,3\n'
    b'"bad,1,2\n'
    b"10,11,12\n"
    b'q"x,1,2\n'
    b'"ab"c,1,2\n'
    b"lat\xe9in,1,2\n"
    b",,\n"
    b"last,no,newline"
)

EXPECTED_MESSY = [
    # row, line, raw, malformed type, a, b, c
    (1, 2, "1,2,3", None, "1", "2", "3"),
    (2, 3, '"x,y","he said ""hi""",z', None, "x,y", 'he said "hi"', "z"),
    (3, 4, "4,5", "csv_too_few_fields", None, None, None),
    (4, 5, "6,7,8,9", "csv_too_many_fields", None, None, None),
    (5, 7, '"multi\nline",ok,3', None, "multi\nline", "ok", "3"),
    (6, 9, '"bad,1,2', "csv_unterminated_quote", None, None, None),
    (7, 10, "10,11,12", None, "10", "11", "12"),
    (8, 11, 'q"x,1,2', None, 'q"x', "1", "2"),
    (9, 12, '"ab"c,1,2', "csv_stray_quote", None, None, None),
    (10, 13, "lat\\xe9in,1,2", "invalid_utf8", None, None, None),
    (11, 14, ",,", None, None, None, None),
    (12, 15, "last,no,newline", None, "last", "no", "newline"),
]


@pytest.mark.parametrize("block_size", [7, 64, 1 << 20])
def test_messy_file_every_line_accounted_for(write: Write, block_size: int) -> None:
    source, frame = read(write("messy.csv", MESSY), block_size=block_size, max_record_bytes=64)
    assert source.keys == ("a", "b", "c")
    assert source.blank_lines == 1
    got = frame.select(ROW, LINE, RAW, MALFORMED, "a", "b", "c").rows()
    assert got == EXPECTED_MESSY


def test_malformed_messages(write: Write) -> None:
    _, frame = read(write("messy.csv", MESSY))
    messages = dict(frame.select(LINE, MALFORMED_MSG).drop_nulls().rows())
    assert messages == {
        4: "Expected 3 fields, found 2",
        5: "Expected 3 fields, found 4",
        9: "Unterminated quoted field: a field opens a quote that the line never closes",
        12: "Malformed quoting: a quoted field is followed by text before the next separator",
        13: "Invalid UTF-8: byte 0xe9 at position 3 of the line",
    }


def test_unterminated_quote_does_not_swallow_the_file(write: Write) -> None:
    lines = ["id,name", '1,"open'] + [f"{i},row{i}" for i in range(2, 200)]
    _, frame = read(write("u.csv", "\n".join(lines) + "\n"), block_size=256, max_record_bytes=512)
    assert frame.height == 199
    assert frame.filter(pl.col(MALFORMED).is_not_null()).select(LINE, MALFORMED).rows() == [
        (2, "csv_unterminated_quote")
    ]
    assert frame["name"].drop_nulls().to_list() == [f"row{i}" for i in range(2, 200)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "file is empty"),
        (b"\n\nid\n", "the first line is empty; expected a header row"),
        (b"a,a\n1,2\n", "duplicate column 'a' in the header row"),
        (b'"a,b\n', "cannot read the header row: Unterminated quoted field"),
        (b"\xff\xfeab\n", "header is not valid UTF-8"),
        (
            b"id,__raw\n1,2\n",
            "column '__raw' in the header row: names starting with '__' are reserved for the "
            "engine's own columns (lineage, rule results); rename it",
        ),
    ],
)
def test_unreadable_files_stop_with_one_line(write: Write, content: bytes, problem: str) -> None:
    path = write("bad.csv", content)
    with pytest.raises(SourceError) as raised:
        read(path)
    assert str(raised.value).startswith(f"{path}")
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


def test_header_only_file_has_no_rows(write: Write) -> None:
    source, frame = read(write("h.csv", "a,b\n"))
    assert source.keys == ("a", "b")
    assert frame.height == 0


# Property tests here write files under pytest's tmp_path (a function-scoped fixture).
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
cells = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=12)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=40),
    block=st.integers(8, 300),
)
def test_well_formed_csv_matches_python_csv_module(
    tmp_path: Path, rows: list[list[str]], block: int
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    path = tmp_path / "p.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    expected = [r for r in csv.reader(io.StringIO(buffer.getvalue()))][1:]
    expected = [r for r in expected if r != []]
    _, frame = read(path, block_size=block, max_record_bytes=4096)
    assert frame.filter(pl.col(MALFORMED).is_not_null()).height == 0
    got = [[c if c is not None else "" for c in row] for row in frame.select("a", "b", "c").rows()]
    assert got == expected


PLAIN_CELL = st.text(
    alphabet=st.characters(exclude_characters=',"\r\n', codec="utf-8"),
    max_size=6,
)


def read_both(path: Path, block_size: int) -> tuple[pl.DataFrame, pl.DataFrame, list[bool]]:
    """The file read as usual (recording whether each block took the plain path), and read
    with the plain path switched off."""
    plain = CsvSource._read_plain
    used: list[bool] = []

    def spy(self: CsvSource, records: Records) -> pl.DataFrame | None:
        cells = plain(self, records)
        used.append(cells is not None)
        return cells

    with patch.object(CsvSource, "_read_plain", spy):
        _, fast = read(path, block_size=block_size, max_record_bytes=4096)
    with patch.object(CsvSource, "_read_plain", lambda self, records: None):
        _, general = read(path, block_size=block_size, max_record_bytes=4096)
    return fast, general, used


@FUZZ
@given(
    rows=st.lists(st.lists(PLAIN_CELL, min_size=1, max_size=5), min_size=1, max_size=30),
    block=st.integers(8, 400),
)
def test_plain_blocks_read_by_polars_equal_the_general_path(
    tmp_path: Path, rows: list[list[str]], block: int
) -> None:
    path = tmp_path / "plain.csv"
    path.write_text("a,b,c\n" + "".join(",".join(row) + "\n" for row in rows), encoding="utf-8")
    fast, general, used = read_both(path, block)
    assert fast.equals(general)
    if all(len(row) == 3 for row in rows):
        assert all(used)


def test_ragged_lines_in_a_plain_block_leave_the_plain_path(write: Write) -> None:
    # 2 + 1 + 3 commas: the total of a well-formed block, yet two records are malformed.
    path = write("ragged.csv", b"a,b,c\n1, 2 ,\n4,5\n6,7,8,9\n")
    fast, general, used = read_both(path, 1 << 20)
    assert used == [False]
    assert fast.equals(general)
    assert fast.select(ROW, LINE, MALFORMED, MALFORMED_MSG, "a", "b", "c").rows() == [
        (1, 2, None, None, "1", " 2 ", None),
        (2, 3, "csv_too_few_fields", "Expected 3 fields, found 2", None, None, None),
        (3, 4, "csv_too_many_fields", "Expected 3 fields, found 4", None, None, None),
    ]


@pytest.mark.parametrize("end", ["\n", ""])
def test_a_plain_block_is_read_by_polars(write: Write, end: str) -> None:
    path = write("plain.csv", f"a,b,c\n1, 2 ,\n,,\nü,1e3,x{end}".encode())
    fast, general, used = read_both(path, 1 << 20)
    # The last line, when unterminated, is cut only at the end of the file: a second block.
    assert used == ([True] if end else [True, True])
    assert fast.equals(general)
    assert fast.select(ROW, LINE, RAW, MALFORMED, "a", "b", "c").rows() == [
        (1, 2, "1, 2 ,", None, "1", " 2 ", None),
        (2, 3, ",,", None, None, None, None),
        (3, 4, "ü,1e3,x", None, "ü", "1e3", "x"),
    ]


@pytest.mark.parametrize("end", ["\n", ""])
def test_a_bom_opening_a_record_stays_in_its_cell(write: Write, end: str) -> None:
    """Polars' CSV reader drops a BOM at the start of its buffer: such blocks take the general
    path, which keeps it (a cell that is only a BOM is not empty)."""
    path = write("bom.csv", f"a,b\n\ufeffx,y\n\ufeff,q{end}".encode())
    fast, general, _ = read_both(path, 1 << 20)
    assert fast.equals(general)
    assert fast.select("a", "b").rows() == [("\ufeffx", "y"), ("\ufeff", "q")]


def test_bad_utf8_before_a_multiline_record_split_back_into_lines(write: Write) -> None:
    """The lines of a failed multi-line record are checked for UTF-8 from their own start,
    not from the block's (an invalid byte in an earlier record once crashed the run)."""
    _, frame = read(write("bad.csv", b'a,b\n\xff,1\n"x\ny"z,2\n'))
    assert frame.select(ROW, LINE, RAW, MALFORMED, "a", "b").rows() == [
        (1, 2, "\\xff,1", "invalid_utf8", None, None),
        (2, 3, '"x', "csv_unterminated_quote", None, None),
        (3, 4, 'y"z,2', None, 'y"z', "2"),
    ]
