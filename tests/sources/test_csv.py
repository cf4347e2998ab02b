"""CSV reading: RFC 4180 quoting, malformed lines as rows, independence from block size."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.batch import LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.cli.words import cli_spelling
from engine.errors import SourceError
from engine.sources.blocks import Records
from engine.sources.csv import CsvSource
from engine.sources.dialect import CsvDialect

Write = Callable[[str, str | bytes], Path]
DEFAULT = CsvDialect()


def read(
    path: Path,
    block_size: int = 1 << 20,
    max_record_bytes: int = 1 << 20,
    dialect: CsvDialect = DEFAULT,
) -> tuple[CsvSource, pl.DataFrame]:
    source = CsvSource(
        path, block_size=block_size, max_record_bytes=max_record_bytes, dialect=dialect
    )
    frames = [batch.frame for batch in source.batches()]
    if frames:
        return source, pl.concat(frames)
    # No rows (a header alone, or followed by blank lines only: those yield no batch).
    columns = (LINE, RAW, MALFORMED, MALFORMED_MSG, *source.keys, ROW)
    return source, pl.DataFrame(schema=dict.fromkeys(columns, pl.String))


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


def test_a_stray_quote_closed_by_a_later_one_costs_one_row(write: Write) -> None:
    lines = ["id,name", '1,"open'] + [f"{i},row{i}" for i in range(2, 200)] + ['200,"x"']
    _, frame = read(write("u.csv", "\n".join(lines) + "\n"), block_size=256, max_record_bytes=4096)
    assert frame.height == 200
    assert frame.filter(pl.col(MALFORMED).is_not_null()).select(LINE, MALFORMED).rows() == [
        (2, "csv_unterminated_quote")
    ]
    assert frame["name"].drop_nulls().to_list() == [f"row{i}" for i in range(2, 200)] + ["x"]


def test_a_quote_open_past_the_limit_stops_the_file_naming_its_line(write: Write) -> None:
    """A quoted cell still open after max_record_bytes may be a cell that long or a quote
    that never closes: cutting it anywhere would make rows of fragments of a real record."""
    cell = "abcdefg\n" * 100  # 800 bytes across 100 lines, well quoted
    path = write("big.csv", f'k,s\r\n0,small\r\n1,"{cell}"\r\n2,tail\r\n')
    with pytest.raises(SourceError) as raised:
        read(path, block_size=64, max_record_bytes=512)
    runs_on = (
        "a record runs on across lines for more than 512 bytes (a quote or bracket that never "
        "closes, or a cell longer than that) (raise max_record_bytes if the file is right)"
    )
    assert str(raised.value) == f"{path}, line 3: {runs_on}"
    stray = write("stray.csv", 'k,s\n1,"open\n' + "".join(f"{i},r\n" for i in range(2, 200)))
    with pytest.raises(SourceError) as raised:
        read(stray, block_size=64, max_record_bytes=512)
    assert str(raised.value) == f"{stray}, line 2: {runs_on}"
    # With room for it, the cell is read whole, as Python's csv reads it.
    _, frame = read(path, block_size=64, max_record_bytes=1024)
    with path.open(newline="") as fh:
        expected = [tuple(row) for row in csv.reader(fh)][1:]
    assert frame.select("k", "s").rows() == expected
    assert frame[LINE].to_list() == [2, 3, 104]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", ": file is empty; expected a header row"),
        (b"\n\nid\n", ", line 1: the first line is empty; expected a header row"),
        (b"a,a\n1,2\n", ", line 1: duplicate column 'a' in the header row"),
        (
            b'"a,b\n',
            ", line 1: cannot read the header row: Unterminated quoted field: a field opens a "
            "quote that the line never closes",
        ),
        (
            b"a\xffb\n",
            ", line 1: header is not valid UTF-8 (Invalid UTF-8: byte 0xff at position 1 of the "
            "line)",
        ),
        (
            "a,b\n1,2\n".encode("utf-16"),
            ", line 1: header is not valid UTF-8 (Invalid UTF-8: byte 0xff at position 0 of the "
            "line); it starts with a UTF-16 byte order mark (use encoding='utf-16')",
        ),
        (
            "a,b\n1,2\n".encode("utf-32"),
            ", line 1: header is not valid UTF-8 (Invalid UTF-8: byte 0xff at position 0 of the "
            "line); it starts with a UTF-32 byte order mark (use encoding='utf-32')",
        ),
        (
            b"id,^.*$\n1,2\n",
            ", line 1: column '^.*$' in the header row: '*', and a name that starts with '^' "
            "and ends with '$', are read as patterns by Polars, which the engine runs on; rename it",
        ),
        (
            b"a,*\n1,x\n2,\n",
            ", line 1: column '*' in the header row: '*', and a name that starts with '^' "
            "and ends with '$', are read as patterns by Polars, which the engine runs on; rename it",
        ),
        (
            b"id,__raw\n1,2\n",
            ", line 1: column '__raw' in the header row: names starting with '__' are "
            "reserved for the engine's own columns (lineage, rule results); rename it",
        ),
    ],
)
def test_unreadable_files_stop_with_one_line(write: Write, content: bytes, problem: str) -> None:
    path = write("bad.csv", content)
    with pytest.raises(SourceError) as raised:
        read(path)
    assert str(raised.value) == f"{path}{problem}"


def test_header_only_file_has_no_rows(write: Write) -> None:
    source, frame = read(write("h.csv", "a,b\n"))
    assert source.keys == ("a", "b")
    assert frame.height == 0


HEADER = "external_id,amount,currency,source_channel,timestamp"


def transactions(count: int) -> list[str]:
    return [f"T{i},{i}.5,USD,C1,2024-01-01T00:00:{i % 60:02d}" for i in range(1, count + 1)]


@pytest.mark.parametrize("count", [1, 2, 40])
def test_lone_cr_line_endings_are_lines(write: Write, count: int) -> None:
    """Old Mac files (``\\r`` only): once read as one line, i.e. a header and no rows (silent
    loss) or a header with repeated names ("duplicate column 'USD'")."""
    lines = transactions(count)
    source, frame = read(write("mac.csv", "\r".join([HEADER, *lines]) + "\r"))
    assert source.keys == tuple(HEADER.split(","))
    assert frame.select(ROW, LINE, RAW, MALFORMED).rows() == [
        (i, i + 1, line, None) for i, line in enumerate(lines, start=1)
    ]
    assert frame["currency"].to_list() == ["USD"] * count


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 8, 13, 1 << 20])
def test_mixed_line_endings_in_one_file(write: Write, block_size: int) -> None:
    """Each line ends its own way; a ``\\r\\n`` cut between two blocks is one line end, a
    ``\\r`` then a ``\\n`` line is two; quoted ones stay in their cell."""
    content = b'a,b\r1,2\n3,4\r\n\r\n"x\ry","p\r\nq"\r5,6\r\r7,8'
    source, frame = read(write("mixed.csv", content), block_size=block_size)
    assert source.blank_lines == 2
    assert frame.select(ROW, LINE, RAW, MALFORMED, "a", "b").rows() == [
        (1, 2, "1,2", None, "1", "2"),
        (2, 3, "3,4", None, "3", "4"),
        (3, 5, '"x\ry","p\r\nq"', None, "x\ry", "p\r\nq"),
        (4, 8, "5,6", None, "5", "6"),
        (5, 10, "7,8", None, "7", "8"),
    ]


# Property tests here write files under pytest's tmp_path (a function-scoped fixture).
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TERMINATORS = ("\n", "\r\n", "\r")
# Cells mixing what CSV must quote (separators, quotes, every line ending) with any text.
SPECIAL = st.text(
    alphabet=st.sampled_from([",", '"', "\r", "\n", " ", "a", "é", "\x00"]), max_size=8
)
ANY_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)
CELL = st.one_of(SPECIAL, ANY_TEXT)
LINE_END = re.compile("\r\n|\r|\n")
PATTERN = re.compile(r"^\^.*\$\Z|\*\Z", re.DOTALL)  # refused in a header (test_unreadable_files...)


@st.composite
def tables(
    draw: st.DrawFn,
    cell: st.SearchStrategy[str] = CELL,
    delimiter: str = ",",
    quote: str = '"',
) -> tuple[str, list[tuple[int, str]], int]:
    """A CSV text written by Python's csv module, each line with its own terminator: a header
    of 1-6 unique names, then rows of that width, ragged rows and blank lines (``[]``), some
    rows quoting every cell. Returns the text, each row's (offset, text without terminator),
    and the number of blank lines."""
    width = draw(st.integers(1, 6))
    names = draw(
        st.lists(
            cell.filter(lambda n: n != "" and not n.startswith("__") and not PATTERN.match(n)),
            min_size=width,
            max_size=width,
            unique=True,
        )
    )
    rows = draw(
        st.lists(
            st.one_of(
                st.lists(cell, min_size=width, max_size=width),
                st.lists(cell, min_size=1, max_size=width + 2),
                st.just([]),
            ),
            max_size=25,
        )
    )
    text, records, blank = "", [], 0
    for number, row in enumerate([names, *rows]):
        # A lone "\r" then a blank line ended by "\n" would read as one "\r\n".
        ends = TERMINATORS[1:] if not row and text.endswith("\r") else TERMINATORS
        buffer = io.StringIO()
        if draw(st.booleans()) and row:
            csv.writer(
                buffer,
                lineterminator="\r\n",
                quoting=csv.QUOTE_ALL,
                delimiter=delimiter,
                quotechar=quote,
            ).writerow(row)
        else:
            csv.writer(
                buffer, lineterminator="\r\n", delimiter=delimiter, quotechar=quote
            ).writerow(row)
        line = buffer.getvalue().removesuffix("\r\n")
        if number:
            if row:
                records.append((len(text), line))
            else:
                blank += 1
        last = number == len(rows)
        text += line + ("" if last and row and draw(st.booleans()) else draw(st.sampled_from(ends)))
    return text, records, blank


@FUZZ
@given(table=tables(), block=st.integers(1, 300))
def test_csv_matches_python_csv_module(
    tmp_path: Path, table: tuple[str, list[tuple[int, str]], int], block: int
) -> None:
    """Every line ending (``\\n``, ``\\r\\n``, a lone ``\\r``, mixed), quoted separators, quotes and
    line breaks, any text, ragged rows and blank lines, cut into blocks anywhere (a ``\\r\\n``
    across two blocks too): the rows, cells, raw texts and line numbers Python's csv reads."""
    compare_with_python_csv(tmp_path, table, block, CsvDialect())


DELIMITERS = (",", ";", "\t", "|", ":", " ")
QUOTES = ('"', "'", "`")
ENCODINGS = ("utf-8", "latin-1", "cp1252", "utf-16")


@st.composite
def dialect_tables(
    draw: st.DrawFn,
) -> tuple[CsvDialect, tuple[str, list[tuple[int, str]], int]]:
    """A dialect (delimiter, quote character, encoding) and a table written in it, its cells
    made of what it must quote and of any text the encoding can hold."""
    encoding = draw(st.sampled_from(ENCODINGS))
    delimiter = draw(st.sampled_from(DELIMITERS))
    quote = draw(st.sampled_from(QUOTES))
    codec = "utf-8" if encoding == "utf-16" else encoding
    special = st.text(
        alphabet=st.sampled_from([delimiter, quote, ",", '"', "\r", "\n", " ", "a", "é"]),
        max_size=8,
    )
    text = st.text(alphabet=st.characters(codec=codec, exclude_categories=["Cs"]), max_size=10)
    table = draw(tables(st.one_of(special, text), delimiter, quote))
    return CsvDialect(delimiter, quote, encoding), table


@FUZZ
@given(case=dialect_tables(), block=st.integers(1, 300))
def test_dialects_match_python_csv_module(
    tmp_path: Path,
    case: tuple[CsvDialect, tuple[str, list[tuple[int, str]], int]],
    block: int,
) -> None:
    """Delimiters, quote characters and encodings (Latin-1, Windows-1252, UTF-16, decoded to
    UTF-8: lineage and cells in UTF-8): what Python's csv module reads from the same bytes
    opened with that encoding."""
    dialect, table = case
    compare_with_python_csv(tmp_path, table, block, dialect)


def compare_with_python_csv(
    tmp_path: Path, table: tuple[str, list[tuple[int, str]], int], block: int, dialect: CsvDialect
) -> None:
    text, records, blank = table
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(dialect.encoding))
    with path.open(encoding=dialect.encoding, newline="") as fh:
        parsed = list(csv.reader(fh, delimiter=dialect.delimiter, quotechar=dialect.quote))
    header, rows = parsed[0], [row for row in parsed[1:] if row]
    source, frame = read(path, block_size=block, max_record_bytes=4096, dialect=dialect)
    assert source.keys == tuple(header)
    assert source.blank_lines == blank
    assert frame.height == len(rows) == len(records)
    width = len(header)
    expected = []
    for (offset, raw), row in zip(records, rows, strict=True):
        line = len(LINE_END.findall(text, 0, offset)) + 1
        if len(row) == width:
            # An empty cell, quoted or not, is read as missing (null), as Pydantic's 'missing'.
            cells = tuple(None if cell == "" else cell for cell in row)
            expected.append((line, raw, None, *cells))
        else:
            kind = "csv_too_few_fields" if len(row) < width else "csv_too_many_fields"
            expected.append((line, raw, kind, *[None] * width))
    if not rows:
        return
    # Columns by name, not pl.col(): a name like "^a$" would be read as a regex.
    columns = [frame.get_column(name) for name in (LINE, RAW, MALFORMED, *header)]
    assert list(zip(*(c.to_list() for c in columns), strict=True)) == expected
    assert frame[ROW].to_list() == list(range(1, len(rows) + 1))


PLAIN_CELL = st.text(
    alphabet=st.characters(exclude_characters=',"\r\n', codec="utf-8"),
    max_size=6,
)


def read_both(
    path: Path, block_size: int, dialect: CsvDialect = DEFAULT
) -> tuple[pl.DataFrame, pl.DataFrame, list[bool]]:
    """The file read as usual (recording whether each block took the plain path), and read
    with the plain path switched off."""
    plain = CsvSource._read_plain
    used: list[bool] = []

    def spy(self: CsvSource, records: Records) -> pl.DataFrame | None:
        cells = plain(self, records)
        used.append(cells is not None)
        return cells

    with patch.object(CsvSource, "_read_plain", spy):
        _, fast = read(path, block_size=block_size, max_record_bytes=4096, dialect=dialect)
    with patch.object(CsvSource, "_read_plain", lambda self, records: None):
        _, general = read(path, block_size=block_size, max_record_bytes=4096, dialect=dialect)
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


@FUZZ
@given(
    rows=st.lists(
        st.lists(
            st.text(
                alphabet=st.characters(exclude_characters=",;\t|\"'\r\n", codec="utf-8"),
                max_size=6,
            ),
            min_size=1,
            max_size=5,
        ),
        min_size=1,
        max_size=30,
    ),
    delimiter=st.sampled_from([";", "\t", "|"]),
    quote=st.sampled_from(['"', "'"]),
    block=st.integers(8, 400),
)
def test_plain_blocks_of_other_delimiters_equal_the_general_path(
    tmp_path: Path, rows: list[list[str]], delimiter: str, quote: str, block: int
) -> None:
    path = tmp_path / "plain.csv"
    lines = [delimiter.join(["a", "b", "c"]), *(delimiter.join(row) for row in rows)]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    fast, general, used = read_both(path, block, CsvDialect(delimiter, quote))
    assert fast.equals(general)
    if all(len(row) == 3 for row in rows):
        assert all(used)


def test_a_header_the_model_does_not_know_names_the_delimiter(write: Write) -> None:
    """A ``;``-separated file read with ``,``: one column named "external_id;amount", which
    the model does not read, while ``;`` would give names it reads: the run stops. A header
    no delimiter makes fit is read as it is (the model may default every field)."""
    path = write("semi.csv", "external_id;amount;currency\nT1;5;USD\n")
    source = CsvSource(
        path,
        block_size=1 << 20,
        max_record_bytes=1 << 20,
        expected=("external_id", "amount", "currency", "timestamp"),
    )
    with pytest.raises(SourceError) as raised:
        list(source.batches())
    assert raised.value.render(cli_spelling) == (
        f"{path}, line 1: no column of the header matches the model (it reads external_id, "
        "amount, currency, timestamp) (is the delimiter ';'? pass --delimiter ';')"
    )
    assert str(raised.value).endswith("(is the delimiter ';'? pass delimiter=';')")
    tabs = write("tabs.csv", "a\tb\n1\t2\n")
    source = CsvSource(tabs, block_size=1 << 20, max_record_bytes=1 << 20, expected=("b", "c"))
    with pytest.raises(SourceError) as raised:
        list(source.batches())
    assert raised.value.render(cli_spelling) == (
        f"{tabs}, line 1: no column of the header matches the model (it reads b, c) "
        "(is the delimiter '\\t'? pass --delimiter tab)"
    )
    other = write("other.csv", "a,b\n1,2\n")
    source = CsvSource(other, block_size=1 << 20, max_record_bytes=1 << 20, expected=("x",))
    frame = pl.concat([batch.frame for batch in source.batches()])
    assert source.keys == ("a", "b")
    assert frame.select(ROW, RAW, "a", "b").rows() == [(1, "1,2", "1", "2")]


def test_bytes_an_encoding_cannot_decode_make_invalid_rows(write: Write) -> None:
    """Windows-1252 leaves 0x81, 0x8d, 0x8f, 0x90 and 0x9d undefined: such a record is an
    invalid row naming the byte (the rest of the file is read), as invalid UTF-8 is."""
    path = write("win.csv", b"a,b\ncaf\xe9,\x80\nab\x81c,2\n\x93q\x94,3\n")
    _, frame = read(path, dialect=CsvDialect(encoding="windows-1252"))
    assert frame.select(ROW, RAW, MALFORMED, MALFORMED_MSG, "a", "b").rows() == [
        (1, "café,€", None, None, "café", "€"),
        (
            2,
            "ab\\x81c,2",
            "invalid_encoding",
            "Invalid cp1252: byte 0x81 at character 2 of the line",
            None,
            None,
        ),
        (3, "“q”,3", None, None, "“q”", "3"),
    ]


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


# A cell as people type it: quotes anywhere but first (``5'10"``, ``a"b``), never quoted.
TYPED_CELL = st.text(alphabet=st.sampled_from(['"', "a", " ", "é", "'"]), max_size=6).filter(
    lambda cell: not cell.startswith('"')
)


@st.composite
def typed_tables(draw: st.DrawFn) -> str:
    """CSV text written by hand: unquoted cells holding stray quotes, mixed with cells the csv
    module quotes (separators, quotes and line ends inside), every kind of line end."""
    width = draw(st.integers(1, 4))
    lines = [",".join(f"c{i}" for i in range(width))]
    for _ in range(draw(st.integers(1, 15))):
        cells = []
        for _ in range(width):
            if draw(st.booleans()):
                cells.append(draw(TYPED_CELL))
            else:
                buffer = io.StringIO()
                csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="").writerow(
                    [draw(SPECIAL)]
                )
                cells.append(buffer.getvalue())
        lines.append(",".join(cells))
    ends = [draw(st.sampled_from(["\n", "\r\n"])) for _ in lines]
    return "".join(line + end for line, end in zip(lines, ends, strict=True))


@FUZZ
@given(text=typed_tables(), block=st.integers(1, 300))
def test_stray_quotes_in_unquoted_cells_read_as_python_reads_them(
    tmp_path: Path, text: str, block: int
) -> None:
    """A quote inside an unquoted cell is text, even when a quoted cell with line ends follows
    (the quote-parity shortcut would join lines there): rows and cells as Python's csv."""
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    header, rows = parsed[0], [row for row in parsed[1:] if row]
    source, frame = read(path, block_size=block, max_record_bytes=4096)
    assert source.keys == tuple(header)
    assert frame[MALFORMED].to_list() == [None] * len(rows)
    got = frame.select([frame.get_column(name) for name in header]).rows()
    assert got == [tuple(None if cell == "" else cell for cell in row) for row in rows]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r", ""])
@pytest.mark.parametrize("block_size", [16, 1 << 20])
def test_the_record_limit_counts_the_record_not_its_line_end(
    write: Write, end: str, block_size: int
) -> None:
    record = "x" * 98 + ",y"  # 100 bytes as stored
    path = write("r.csv", f"a,b{end or chr(10)}1,2{end or chr(10)}{record}{end}")
    _, frame = read(path, block_size=block_size, max_record_bytes=100)
    assert frame[RAW].to_list() == ["1,2", record]
    with pytest.raises(SourceError) as raised:
        read(path, block_size=block_size, max_record_bytes=99)
    assert str(raised.value).startswith(
        f"{path}, line 3: a record is longer than 99 bytes without a line break"
    )


def test_a_stray_quote_before_a_cell_spanning_lines_costs_that_record_too(write: Write) -> None:
    """The README's stated cost: the stray quote's row, and the lines of the record whose
    opening quote closed it."""
    path = write("s.csv", 'a,b\n1,2\n"3,4\n5,6\n7,"multi\nline"\n8,9\n')
    _, frame = read(path, block_size=16)
    assert frame.select(LINE, RAW, MALFORMED).rows() == [
        (2, "1,2", None),
        (3, '"3,4', "csv_unterminated_quote"),
        (4, "5,6", None),
        (5, '7,"multi', "csv_unterminated_quote"),
        (6, 'line"', "csv_too_few_fields"),
        (7, "8,9", None),
    ]


@pytest.mark.parametrize("end", ["", "\n", "\r\n"])
@pytest.mark.parametrize("block_size", [1, 3, 1 << 20])
def test_an_open_quote_at_the_end_is_one_row_at_a_limit_its_text_fits(
    write: Write, end: str, block_size: int
) -> None:
    path = write("e.csv", f'a,b\n1,"x{end}')
    _, frame = read(path, block_size=block_size, max_record_bytes=4)
    assert frame.select(LINE, RAW, MALFORMED).rows() == [(2, '1,"x', "csv_unterminated_quote")]
