"""A byte the encoding cannot decode inside a quoted cell that spans lines: the record stays
one record, one invalid row, as Python's csv module frames the file (read with
``errors="replace"``); its later lines never become rows of their own (a phantom valid row
once did). Generated files, compared with the csv module record by record."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import engine


class Row(BaseModel):
    k: int
    s: str = ""  # an empty cell is absent
    t: str


CELL = st.lists(st.sampled_from([b"a", b"b", b" ", b"\n", b"\r\n", b"\xff", b"\x81"]), max_size=8)


def encoded(cells: list[tuple[list[bytes], bool]]) -> bytes:
    out = [b"k,s,t\n"]
    for k, (cell, quoted) in enumerate(cells, start=1):
        text = b"".join(cell)
        if not quoted:
            text = text.replace(b"\n", b"").replace(b"\r", b"")
        out.append(b"%d,%s,x%d\n" % (k, b'"' + text + b'"' if quoted else text, k))
    return b"".join(out)


def oracle(data: bytes, encoding: str) -> list[tuple[bool, list[str]]]:
    """(decodes cleanly, fields) per record, as Python's csv module reads the file."""
    text = data.decode(encoding, errors="replace")
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    return [("\ufffd" not in "".join(r), r) for r in records]


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(st.tuples(CELL, st.booleans()), min_size=1, max_size=6),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
)
def test_undecodable_bytes_in_multiline_cells_keep_their_record(
    cells: list[tuple[list[bytes], bool]], encoding: str
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path, db = Path(folder) / "in.csv", Path(folder) / "db.duckdb"
        data = encoded(cells)
        path.write_bytes(data)
        engine.ingest(path, db=db, schema=Row, encoding=encoding)
        con = duckdb.connect(str(db), read_only=True)
        try:
            (total,) = con.sql("SELECT rows_total FROM ingestion_runs").fetchall()[0]
            invalid = con.sql(
                "SELECT row_number, type FROM error_details ORDER BY row_number"
            ).fetchall()
            valid = con.sql("SELECT row_number, k, s, t FROM row ORDER BY row_number").fetchall()
        finally:
            con.close()
    expected = oracle(data, encoding)
    assert total == len(expected)
    bad = "invalid_utf8" if encoding == "utf-8" else "invalid_encoding"
    assert invalid == [(n, bad) for n, (clean, _) in enumerate(expected, start=1) if not clean]
    assert valid == [
        (n, int(r[0]), r[1], r[2]) for n, (clean, r) in enumerate(expected, start=1) if clean
    ]


def test_the_reported_phantom_row(tmp_path: Path) -> None:
    path, db = tmp_path / "in.csv", tmp_path / "db.duckdb"
    path.write_bytes(b'k,s,t\n1,"a\xff\n5,x,y",z\n2,b,c\n')
    engine.ingest(path, db=db, schema=Row)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.sql("SELECT row_number, k, s, t FROM row").fetchall() == [(2, 2, "b", "c")]
        assert con.sql("SELECT row_number, type FROM error_details").fetchall() == [
            (1, "invalid_utf8")
        ]
    finally:
        con.close()
