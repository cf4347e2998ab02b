"""Streaming XLSX: Arrow batches into xlsxwriter's constant-memory mode, sheet after sheet.

Excel holds 1,048,576 rows per sheet, the header included; a longer export continues on
``name (2)``, ``name (3)``... with the same header. Values keep their type: numbers are
numbers and timestamps are Excel dates (UTC wall time), so sorting and sums work. Excel
cannot hold some values exactly; those are written as text instead of being changed:
NaN and infinities, numbers of more than 15 significant digits (0.30000000000000004, a
DECIMAL 88429837994575.8671), integers and decimals of 10**15 and more, subnormal
floats, -0.0, dates before 1900-03-01.
"""

from __future__ import annotations

import contextlib
import io
import traceback
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import xlsxwriter
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.worksheet import Worksheet

from engine.reports.sql import text_value

SHEET_ROWS = 1_048_575  # data rows per sheet: Excel's 1,048,576 less the header
CELL_CHARS = 32_767  # Excel's limit per cell, in UTF-16 units; longer text is cut
EXACT = 1e15  # Excel keeps 15 significant digits
DIGITS = 15
SMALLEST = 2.2250738585072014e-308  # Excel has no subnormal numbers
EPOCH_SERIAL = 25_569  # 1970-01-01 as an Excel date serial
FIRST_SERIAL = 61  # 1900-03-01: Excel's dates before it are off by one (its 1900 leap day)
END_SERIAL = 2_958_466  # 10000-01-01: past Excel's last date
US_PER_DAY = 86_400_000_000
WIDTH_SAMPLE = 500
MIN_WIDTH, MAX_WIDTH = 8, 60

DATE_FORMATS = {"datetime": "yyyy-mm-dd hh:mm:ss", "date": "yyyy-mm-dd", "time": "hh:mm:ss"}
FIXED_WIDTHS = {"datetime": 19, "date": 10, "time": 8, "bool": 6, "number": 12}


@dataclass
class XlsxResult:
    rows: int = 0
    sheets: list[str] = field(default_factory=list)
    truncated_cells: int = 0


def column_kind(dtype: pa.DataType) -> str:
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_timestamp(dtype):
        return "datetime"
    if pa.types.is_date(dtype):
        return "date"
    if pa.types.is_time(dtype):
        return "time"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    return "other"


def write_xlsx(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    path: Path,
    *,
    sheet: str,
    sheet_rows: int = SHEET_ROWS,
    zip64: bool = False,
    progress: Callable[[int], None] | None = None,
) -> XlsxResult:
    """Write all batches to ``path``; memory stays flat whatever the row count."""
    if sheet_rows < 1:
        raise ValueError("sheet_rows must be at least 1")
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "use_zip64": zip64})
    writer = _BookWriter(book, schema, sheet, sheet_rows)
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            offset += writer.write(batch.slice(offset))
        if progress is not None:
            progress(batch.num_rows)
    if not writer.result.sheets:
        writer.new_sheet()
    writer.finish_sheet()
    _close(book)
    return writer.result


def _close(book: xlsxwriter.Workbook) -> None:
    """Close (write) the workbook. When that fails (a full disk), xlsxwriter leaves the zip
    archive it was writing open: closed by its ``__del__``, it would fail again and Python
    would print that as an "Exception ignored" traceback. Close it here, quietly."""
    try:
        book.close()
    except (OSError, FileCreateError) as exc:
        cause = exc.args[0] if isinstance(exc, FileCreateError) and exc.args else exc
        for error in {id(e): e for e in (exc, cause) if isinstance(e, BaseException)}.values():
            _close_quietly(error)
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror) from None
        raise


def _close_quietly(error: BaseException) -> None:
    """Close the zip archive (and its entry being written) held by the failed frames."""
    held = [
        value
        for frame, _ in traceback.walk_tb(error.__traceback__)
        for value in frame.f_locals.values()
    ]
    entries: list[io.IOBase | zipfile.ZipFile] = [
        v for v in held if isinstance(v, io.IOBase) and hasattr(v, "_zipfile")
    ]
    archives = [v for v in held if isinstance(v, zipfile.ZipFile)]
    for item in [*entries, *archives]:  # the entry first: the archive waits for it
        with contextlib.suppress(Exception):
            item.close()
    traceback.clear_frames(error.__traceback__)


class _BookWriter:
    def __init__(
        self, book: xlsxwriter.Workbook, schema: pa.Schema, base: str, sheet_rows: int
    ) -> None:
        self.book = book
        self.names = list(schema.names)
        self.kinds = [column_kind(f.type) for f in schema]
        self.base = base
        self.sheet_rows = sheet_rows
        self.header = book.add_format(
            {"bold": True, "bottom": 1, "bg_color": "#EEF2F7", "valign": "vcenter"}
        )
        self.formats = [
            book.add_format({"num_format": DATE_FORMATS[k]}) if k in DATE_FORMATS else None
            for k in self.kinds
        ]
        self.widths: list[float] | None = None
        self.sheet: Worksheet | None = None
        self.row = 0  # rows written to the current sheet
        self.result = XlsxResult()

    def new_sheet(self) -> Worksheet:
        self.finish_sheet()
        number = len(self.result.sheets) + 1
        name = self.base if number == 1 else f"{self.base} ({number})"
        sheet = self.book.add_worksheet(name)
        for col, width in enumerate(self.widths or [MIN_WIDTH] * len(self.names)):
            sheet.set_column(col, col, width)
        sheet.freeze_panes(1, 0)
        sheet.set_row(0, 20)
        for col, name_ in enumerate(self.names):
            sheet.write_string(0, col, name_, self.header)
        self.result.sheets.append(name)
        self.sheet, self.row = sheet, 0
        return sheet

    def finish_sheet(self) -> None:
        if self.sheet is not None and self.names:
            self.sheet.autofilter(0, 0, self.row, len(self.names) - 1)

    def write(self, batch: pa.RecordBatch) -> int:
        """Write as much of ``batch`` as fits on the current sheet; return the rows written."""
        if self.widths is None:
            self.widths = [
                _width(name, kind, column)
                for name, kind, column in zip(self.names, self.kinds, batch.columns, strict=True)
            ]
        if self.sheet is None or self.row >= self.sheet_rows:
            self.new_sheet()
        sheet = self.sheet
        assert sheet is not None
        rows = min(int(batch.num_rows), self.sheet_rows - self.row)
        chunk = batch.slice(0, rows)
        cells = []
        values = []
        for col, (kind, fmt, column) in enumerate(
            zip(self.kinds, self.formats, chunk.columns, strict=True)
        ):
            items, method = self._prepare(kind, column)
            cells.append((col, _writer(sheet, method), fmt))
            values.append(items)
        row = self.row + 1
        for record in zip(*values, strict=True):
            for (col, write, fmt), value in zip(cells, record, strict=True):
                if value is not None:
                    write(row, col, value, fmt)
            row += 1
        self.row += rows
        self.result.rows += rows
        return rows

    def _prepare(self, kind: str, column: pa.Array) -> tuple[list[Any], str]:
        """The column as Python values Excel can hold, and how to write them."""
        if kind == "other":
            return [None if v is None else text_value(v) for v in column.to_pylist()], "text"
        series = pl.Series(values=column)
        if kind == "text":
            items = series.to_list()
            long = (series.str.len_chars() > CELL_CHARS // 2).fill_null(False)
            if long.any():
                self.result.truncated_cells += sum(
                    len(items[i].encode("utf-16-le")) // 2 > CELL_CHARS for i in long.arg_true()
                )
            return items, "text"
        if kind == "bool":
            return series.to_list(), "bool"
        if kind == "number":
            numbers = series.cast(pl.Float64)
            special = ~numbers.is_finite()
            if series.dtype.is_float():  # 0.30000000000000004 would be 0.3; 1e+20 is held
                changed = _significant_digits(numbers) > DIGITS
                tiny = (numbers.abs() < SMALLEST) & (numbers != 0)
                negative_zero = (numbers == 0) & (1 / numbers < 0)  # Excel has one zero
                special = special | changed | tiny | negative_zero
            else:  # integers and decimals of 16 digits and more (ids, amounts) stay text
                special = special | (numbers.abs() >= EXACT)
                if series.dtype.is_decimal():
                    special = special | (_significant_digits(series) > DIGITS)
            plain = series if series.dtype.is_integer() else numbers
            return _with_text(plain.to_list(), series, special.fill_null(False))
        if kind == "datetime":
            serial = series.dt.epoch("us") / US_PER_DAY + EPOCH_SERIAL
        elif kind == "date":
            serial = series.cast(pl.Int32).cast(pl.Float64) + EPOCH_SERIAL
        else:  # time: Polars counts nanoseconds since midnight
            serial = series.cast(pl.Int64) / (US_PER_DAY * 1000)
            return serial.to_list(), "number"
        outside = ((serial < FIRST_SERIAL) | (serial >= END_SERIAL)).fill_null(False)
        return _with_text(serial.to_list(), series, outside)


def _significant_digits(numbers: pl.Series) -> pl.Series:
    """How many significant digits each float or decimal has, from its text (a float's is
    its shortest, Python's ``repr``, which Polars' cast writes): ``1.5167559781238396e-121``
    has 17, ``0.0500`` one."""
    mantissa = numbers.cast(pl.String).str.replace(r"e.*$", "")
    digits = mantissa.str.replace_all(r"[-.]", "").str.strip_chars_start("0")
    return digits.str.strip_chars_end("0").str.len_chars()


def _with_text(items: list[Any], original: pl.Series, as_text: pl.Series) -> tuple[list[Any], str]:
    if not as_text.any():
        return items, "number"
    for i in as_text.arg_true():
        items[i] = text_value(original[i])
    return items, "mixed"


def _writer(sheet: Worksheet, method: str) -> Callable[..., Any]:
    writers: dict[str, Callable[..., Any]] = {
        "number": sheet.write_number,
        "text": sheet.write_string,
        "bool": sheet.write_boolean,
    }
    if method in writers:
        return writers[method]
    number, text = writers["number"], writers["text"]

    def mixed(row: int, col: int, value: Any, fmt: Any) -> Any:
        return text(row, col, value) if isinstance(value, str) else number(row, col, value, fmt)

    return mixed


def _width(name: str, kind: str, column: pa.Array) -> float:
    """From the header and the first rows: wide enough to read, never a wall of text."""
    content = FIXED_WIDTHS.get(kind, 0)
    if kind in ("text", "other"):
        sample = [v for v in column.slice(0, WIDTH_SAMPLE).to_pylist() if v is not None]
        lines = (line for v in sample for line in text_value(v).splitlines() or [""])
        content = max((len(line) for line in lines), default=0)
    return float(min(max(len(name) * 1.15 + 2, content + 2, MIN_WIDTH), MAX_WIDTH))
