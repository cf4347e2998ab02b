"""Failing inputs of 20,000 characters: `summary`, `report` and the errors exports read them
within the readers' 512 MB cap, and a read past the cap is one line.

1,000 such rows (a 25 KB .csv.gz, 20 MB of text) took 447 MB (summary's filter), 550 MB
(its top values) and 557 MB (`export errors`) before: every JSON function and regex over a
whole input held a copy of it for DuckDB's chunk, and the filter on the parsed input repeated
the parsing in each branch. `summary` and `report` died with a traceback, the exports with
exit 2.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from click.testing import Result

from engine.store import store as stores

RunCli = Callable[..., Result]

WIDTH = 20_000
LONG = "A" * WIDTH
MSG = "Input should be a valid number, unable to parse string as a number"
HEADER = "external_id,amount,currency,source_channel,timestamp\n"


def long_rows(path: Path, rows: int) -> Path:
    with gzip.open(path, "wt", compresslevel=9) as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(f"id{i},{LONG},USD,C,2024-01-01T00:00:00\n")
    return path


def ingested(run_cli: RunCli, tmp_path: Path, rows: int) -> Path:
    db = tmp_path / "long.duckdb"
    result = run_cli("run", str(long_rows(tmp_path / "long.csv.gz", rows)), "--db", str(db))
    assert result.exit_code == 0, result.output
    return db


def test_summary_report_and_exports_of_long_inputs(run_cli: RunCli, tmp_path: Path) -> None:
    db = ingested(run_cli, tmp_path, 1000)

    result = run_cli("summary", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["rows_total"], data["rows_valid"], data["rows_invalid"]) == (1000, 0, 1000)
    assert data["errors_by_field"] == [{"field": "amount", "type": "float_parsing", "count": 1000}]
    assert data["top_values"] == [{"field": "amount", "value": LONG, "count": 1000}]

    result = run_cli("summary", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert " amount │ float_parsing │  1,000 " in result.stdout.splitlines()

    html = tmp_path / "report.html"
    result = run_cli("report", "--db", str(db), "-o", str(html))
    assert (result.exit_code, result.stdout) == (0, f"wrote {html}\n")
    page = html.read_text(encoding="utf-8")
    start = page.index('<tr data-field="amount">')
    assert (
        page[start : page.index("</tr>", start)].split()
        == (
            '<tr data-field="amount"> <td>amount</td> <td class="num">1,000</td> '
            '<td><div class="chips"><span class="chip" data-count="1000"><code>&#39;'
            + "A" * 78
            + '…</code><span class="n">1,000</span></span></div></td>'
        ).split()
    )

    message = f"amount: {MSG} (got '{LONG}')"
    errors = json.dumps(
        [{"type": "float_parsing", "loc": ["amount"], "msg": MSG, "input": LONG}],
        separators=(",", ":"),
    )
    expected = [
        [1, i + 1, i + 2, message, errors, f"id{i},{LONG},USD,C,2024-01-01T00:00:00"]
        for i in range(1000)
    ]
    out = tmp_path / "errors.csv"
    result = run_cli("export", "errors", "-o", str(out), "--db", str(db), "--quiet")
    assert (result.exit_code, result.output) == (0, "")
    csv.field_size_limit(10 * WIDTH)
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["run_id", "row_number", "line_number", "message", "errors", "raw"]
    assert rows[1:] == [[str(cell) for cell in row] for row in expected]

    out = tmp_path / "errors.xlsx"
    result = run_cli("export", "errors", "-o", str(out), "--db", str(db), "--quiet")
    assert (result.exit_code, result.output) == (0, "")
    sheet = openpyxl.load_workbook(out, read_only=True).worksheets[0]
    cells = [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert cells == expected


def test_out_of_memory_in_summary_and_report_is_one_line(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ingested(run_cli, tmp_path, 300)
    monkeypatch.setattr(stores, "READ_MEMORY", "8MB")
    wanted = re.compile(
        r"error: reading the database failed: Out of Memory Error: failed to allocate data of "
        r"size [0-9.]+ [KM]iB \([0-9.]+ MiB/[0-9.]+ MiB used\) \(DuckDB's readers are capped "
        r"at 8MB\)\n"
    )
    for args in (["summary"], ["report", "-o", str(tmp_path / "report.html")]):
        result = run_cli(*args, "--db", str(db))
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        assert wanted.fullmatch(result.stderr), result.stderr
