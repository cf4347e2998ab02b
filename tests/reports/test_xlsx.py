"""XLSX: typed cells, a readable first screen, sheets that continue, constant memory."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
from python_calamine import CalamineWorkbook

from engine.reports.exports import XLSX_WARN_ROWS, ExportRequest, plan_export, write_export
from engine.reports.reader import open_reader
from engine.reports.xlsx import SHEET_ROWS, write_xlsx
from tests.reports.test_exports import excel_value, stored


def export_xlsx(
    db: Path, output: Path, *, sheet_rows: int = SHEET_ROWS, warn_rows: int = XLSX_WARN_ROWS
) -> tuple[list[str], int, list[str]]:
    seen: list[int] = []
    request = ExportRequest("processed", "xlsx", output, sheet_rows=sheet_rows, warn_rows=warn_rows)
    with open_reader(db) as store:
        plan = plan_export(store, request)
        result = write_export(store, plan, seen.append)
    assert sum(seen) == result.rows == plan.rows
    return result.sheets, result.rows, plan.warnings


def sheets_of(path: Path) -> dict[str, list[list[Any]]]:
    book = CalamineWorkbook.from_path(str(path))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


def test_header_widths_and_typed_cells(sample_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "valid.xlsx"
    export_xlsx(sample_db, out)
    sheet = openpyxl.load_workbook(out)["processed"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:G8"
    assert [c.value for c in sheet[1]] == [
        "run_id",
        "row_number",
        "external_id",
        "amount",
        "currency",
        "source_channel",
        "timestamp",
    ]
    assert all(c.font.b for c in sheet[1])
    widths = {k: round(v.width) for k, v in sheet.column_dimensions.items()}
    # From the header and the longest value: `CHANNEL "VIP"` and the datetime format.
    assert (widths["C"], widths["F"], widths["G"]) == (15, 19, 22)
    amount, stamp = sheet["D2"], sheet["G2"]
    assert (amount.data_type, amount.value) == ("n", 120.5)
    assert stamp.is_date and stamp.number_format == "yyyy-mm-dd hh:mm:ss"
    assert stamp.value == datetime(2024, 3, 1, 9, 15)
    assert (sheet["D7"].data_type, sheet["D7"].value) == ("s", "inf")


def test_rows_past_the_sheet_limit_continue_on_numbered_sheets(
    tricky_db: Path, tmp_path: Path
) -> None:
    expected = [
        [excel_value(v) for v in row]
        for row in stored(tricky_db, "SELECT * FROM processed_data").iter_rows()
    ]
    header = ["run_id", "row_number", "external_id", "amount", "currency", "source_channel"]
    for limit, sizes in ((4, [4, 2]), (3, [3, 3]), (2, [2, 2, 2]), (6, [6]), (5, [5, 1])):
        out = tmp_path / f"split_{limit}.xlsx"
        names, rows, warnings = export_xlsx(tricky_db, out, sheet_rows=limit)
        assert rows == 6 and warnings == []
        assert names == ["processed"] + [f"processed ({n})" for n in range(2, len(sizes) + 1)]
        book = sheets_of(out)
        assert list(book) == names
        assert [len(cells) - 1 for cells in book.values()] == sizes
        body = []
        for cells in book.values():
            assert cells[0][:6] == header  # every sheet has the header
            body.extend(cells[1:])
        assert [row[2] for row in body] == [row[2] for row in expected]
        assert [row[3] for row in body] == [row[3] for row in expected]
    frozen = openpyxl.load_workbook(tmp_path / "split_2.xlsx")
    assert [frozen[name].freeze_panes for name in frozen.sheetnames] == ["A2", "A2", "A2"]
    assert all(frozen[name]["A1"].font.b for name in frozen.sheetnames)


def test_a_large_export_warns_up_front(tricky_db: Path, tmp_path: Path) -> None:
    _, _, warnings = export_xlsx(tricky_db, tmp_path / "w.xlsx", sheet_rows=4, warn_rows=5)
    assert warnings == [
        "6 rows to XLSX on 2 sheets (4 rows each) will take a while (under a minute); "
        "CSV or Parquet take seconds"
    ]


def test_values_excel_cannot_hold_are_written_as_text(tmp_path: Path) -> None:
    table = pa.table(
        {
            "big": pa.array([10**16, 42, None], pa.int64()),
            "dec": pa.array(
                [Decimal("12345678901234567890"), Decimal("1.5"), None], pa.decimal128(38, 2)
            ),
            "x": pa.array([float("nan"), float("-inf"), 2.5]),
            "day": pa.array([date(1899, 12, 31), date(2024, 2, 29), None]),
            "at": pa.array([time(13, 45, 30), None, time(0, 0)]),
            "ok": pa.array([True, False, None]),
            "long": pa.array(["é" * 40_000, "short", None]),
            "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        }
    )
    out = tmp_path / "odd.xlsx"
    result = write_xlsx(table.to_batches(max_chunksize=2), table.schema, out, sheet="odd")
    assert (result.rows, result.sheets, result.truncated_cells) == (3, ["odd"], 1)
    sheet = openpyxl.load_workbook(out)["odd"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert rows[0][:6] == [
        "10000000000000000",
        "12345678901234567890.00",
        "nan",
        "1899-12-31",
        time(13, 45, 30),
        True,
    ]
    assert rows[1][:6] == [42, 1.5, "-inf", datetime(2024, 2, 29), None, False]
    assert rows[2][:6] == [None, None, 2.5, None, time(0, 0), None]
    assert len(rows[0][6]) == 32_767 and rows[1][6] == "short"
    assert [r[7] for r in rows] == ['["a","b"]', "[]", None]
    assert sheet["D3"].number_format == "yyyy-mm-dd" and sheet["E2"].number_format == "hh:mm:ss"


def test_no_number_changes_on_its_way_into_the_sheet(tmp_path: Path) -> None:
    """Generated floats and decimals of every length: a cell that is a number holds the
    stored value exactly (xlsxwriter writes 16 digits: 0.30000000000000004 was written as
    0.3, DECIMAL 88429837994575.8671 as 88429837994575.86); any other is its exact text."""
    rng = random.Random(5)
    floats = [0.1 + 0.2, 1 / 3, 0.5, 5e-324, -0.0, 123456.789, 1e300, 2.5e-8]
    floats += [rng.uniform(-1e6, 1e6) for _ in range(300)]
    floats += [round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)) for _ in range(300)]
    # Far exponents, at full precision and at 15 digits (held exactly: numbers, 1e+20 too).
    far = [rng.uniform(1, 10) * 10.0 ** rng.randint(-300, 300) for _ in range(200)]
    floats += far + [float(f"{x:.14e}") for x in far] + [1e20]
    decimals = [Decimal("88429837994575.8671"), Decimal("0.0500"), Decimal("-1.5")]
    decimals += [Decimal(rng.randint(-(10**18), 10**18)).scaleb(-4) for _ in range(300)] + [
        Decimal(rng.randint(-(10**9), 10**9)).scaleb(-4) for _ in range(300)
    ]
    count = max(len(floats), len(decimals))
    table = pa.table(
        {
            "f": pa.array(floats + [None] * (count - len(floats)), pa.float64()),
            "d": pa.array(decimals + [None] * (count - len(decimals)), pa.decimal128(19, 4)),
        }
    )
    out = tmp_path / "numbers.xlsx"
    write_xlsx(table.to_batches(max_chunksize=256), table.schema, out, sheet="n")
    sheet = openpyxl.load_workbook(out)["n"]
    cells = [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    numbers = kept = 0
    for (f_cell, _), f in zip(cells, floats, strict=False):
        if isinstance(f_cell, float | int):
            assert float(f_cell) == f and math.copysign(1, f_cell) == math.copysign(1, f)
            numbers += 1
        else:
            assert f_cell == str(f)
    for (_, d_cell), d in zip(cells, decimals, strict=False):
        if isinstance(d_cell, float | int):
            assert Decimal(repr(d_cell)) == d
            kept += 1
        else:
            assert d_cell == format(d.quantize(Decimal("0.0001")), "f")
    assert numbers > 500 and kept > 300  # most stay numbers: the rounded and the short ones
    assert cells[len(floats) - 1][0] == 1e20


def test_an_empty_export_is_a_header(tricky_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.xlsx"
    with open_reader(tricky_db) as store:
        plan = plan_export(store, ExportRequest("processed", "xlsx", out, where="amount < 0"))
        result = write_export(store, plan)
    assert (result.rows, result.sheets) == (0, ["processed"])
    assert sheets_of(out) == {
        "processed": [
            [
                "run_id",
                "row_number",
                "external_id",
                "amount",
                "currency",
                "source_channel",
                "timestamp",
            ]
        ]
    }
