"""Exports of the stored tables to CSV, JSON, NDJSON, Parquet and XLSX, streamed.

CSV, JSON, NDJSON and Parquet are DuckDB's own ``COPY (SELECT ...) TO``: DuckDB streams and
writes them in parallel, in memory that does not grow with the table. XLSX reads the same
SELECT in Arrow batches into a constant-memory workbook. Either way the file appears under
its name only when complete: it is written beside it under a temporary name and renamed.

The temporary file is created by the export itself, exclusively (``O_EXCL``, never through a
symlink), under a name no one can guess before, beside the target: ``stage`` makes it before
anything writes to it, and DuckDB or xlsxwriter then write into that file. Its name ends with
the writer's process id (``.report.csv.k3x9_a2q.4242.partial``): one left by a process that
died (``kill -9``) is removed by the next export into that directory.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from xlsxwriter.exceptions import XlsxWriterException

from engine.errors import ConfigError, OutputWriteError, Remedy
from engine.reports.lockdown import refusal
from engine.reports.reader import query_error
from engine.reports.selections import Selection, select
from engine.reports.staging import check_output, stage
from engine.reports.xlsx import SHEET_ROWS, write_xlsx
from engine.store.disk_full import DISK_FULL
from engine.store.store import Store

FORMATS = ("csv", "json", "ndjson", "parquet", "xlsx")
EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".parquet": "parquet",
    ".xlsx": "xlsx",
}
# USE_TMP_FILE false: the target is already a temporary name (renamed when complete), and a
# locked-down reader may write that one file only, not DuckDB's own tmp_ name beside it.
COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true, USE_TMP_FILE false",
    "json": "FORMAT json, ARRAY true, USE_TMP_FILE false",
    "ndjson": "FORMAT json, USE_TMP_FILE false",
    "parquet": "FORMAT parquet, USE_TMP_FILE false",
}
XLSX_WARN_ROWS = 100_000
XLSX_CELLS_PER_S = 100_000  # measured on a busy 2-core machine; for the estimate only
XLSX_ZIP64_ROWS = 1_000_000
BATCH_ROWS = 65_536
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT)
PARTIAL = re.compile(r"\.(?P<name>.+)\.(?P<pid>[0-9]+)\.partial")


@dataclass(frozen=True)
class ExportRequest:
    kind: str  # processed | errors | raw
    fmt: str
    output: Path
    run_id: int | None = None
    where: str | None = None
    table: str | None = None  # the typed table, when runs used several schemas
    # CSV: text cells that start like a spreadsheet formula get a leading ' (see selections)
    sanitize: bool = True
    sheet_rows: int = SHEET_ROWS  # XLSX data rows per sheet
    warn_rows: int = XLSX_WARN_ROWS  # XLSX exports longer than this warn up front


@dataclass(frozen=True)
class ExportPlan:
    request: ExportRequest
    selection: Selection
    rows: int | None  # counted up front for XLSX (progress, warning); None otherwise
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExportResult:
    path: Path
    fmt: str
    source: str
    rows: int
    seconds: float
    sheets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def export_format(output: Path, fmt: str | None) -> str:
    """The format asked for, or the one the output's extension names."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
        return fmt
    found = EXTENSIONS.get(output.suffix.lower())
    if found is None:
        raise ConfigError(
            f"cannot tell the export format from {output.name!r}",
            hint=Remedy("pass {}", "format", FORMATS),
        )
    return found


def plan_export(store: Store, request: ExportRequest) -> ExportPlan:
    """Check everything that can be checked before writing; count rows for XLSX."""
    if request.fmt not in FORMATS:
        raise ConfigError(f"unknown export format {request.fmt!r}")
    check_output(request.output)
    selection = select(
        store,
        request.kind,
        run_id=request.run_id,
        where=request.where,
        table=request.table,
        json_output=request.fmt in ("json", "ndjson"),
        neutralise=request.fmt == "csv" and request.sanitize,
    )
    if request.fmt != "xlsx":
        return ExportPlan(request, selection, None)
    try:
        rows = int(store.rows(f"SELECT count(*) FROM ({selection.query})")[0][0])
    except duckdb.Error as exc:
        raise ConfigError(f"{request.output}: export {query_error(exc)}") from exc
    warnings = []
    if rows > request.warn_rows:
        sheets = -(-rows // request.sheet_rows)
        minutes = rows * len(selection.columns) / XLSX_CELLS_PER_S / 60
        spread = f" on {sheets} sheets ({request.sheet_rows:,} rows each)" if sheets > 1 else ""
        takes = "under a minute" if minutes < 1 else f"about {minutes:,.0f} min"
        warnings.append(
            f"{rows:,} rows to XLSX{spread} will take a while ({takes}); "
            "CSV or Parquet take seconds"
        )
    return ExportPlan(request, selection, rows, warnings)


def write_export(
    store: Store,
    plan: ExportPlan,
    progress: Callable[[int], None] | None = None,
    *,
    staged: Path | None = None,
) -> ExportResult:
    """Write the planned export; ``progress`` hears of rows written (XLSX only). ``staged``:
    the temporary file ``stage`` made for it (one is made here when not given)."""
    request = plan.request
    output = request.output
    if staged is None:
        with staged_file(output) as made:
            return write_export(store, plan, progress, staged=made)
    partial = staged
    removed = remove_dead_partials(output.parent)
    started = time.perf_counter()
    try:
        if request.fmt == "xlsx":
            rows, sheets, notes = _xlsx(store, plan, partial, progress)
        else:
            rows, sheets, notes = _copy(store, plan, partial), [], []
        os.replace(partial, output)
    except OSError as exc:
        if exc.errno in DISK_ERRORS:
            raise _disk_full(output) from exc
        raise ConfigError(f"{output}: cannot write the export ({exc})") from exc
    except XlsxWriterException as exc:
        raise ConfigError(f"{output}: cannot write the export ({exc})") from exc
    finally:
        partial.unlink(missing_ok=True)
    if removed:
        size = sum(found for _, found in removed)
        names = ", ".join(path.name for path, _ in removed)
        notes.append(
            f"removed {len(removed)} unfinished export(s) of a process that ended "
            f"({names}: {size / (1 << 20):,.1f} MiB)"
        )
    return ExportResult(
        output,
        request.fmt,
        plan.selection.source,
        rows,
        time.perf_counter() - started,
        sheets,
        notes,
    )


@contextmanager
def staged_file(output: Path) -> Iterator[Path]:
    """``stage(output)`` once ``output`` is checked, removed on the way out unless renamed."""
    check_output(output)
    try:
        staged = stage(output)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write the export ({exc})") from exc
    try:
        yield staged
    finally:
        staged.unlink(missing_ok=True)


def remove_dead_partials(directory: Path) -> list[tuple[Path, int]]:
    """Remove the temporary files of exports whose process no longer runs; return them with
    their sizes. One whose process id now belongs to another process is kept (until it ends)."""
    removed = []
    for path in directory.glob(".*.partial"):
        found = PARTIAL.fullmatch(path.name)
        if found is None or _alive(int(found["pid"])):
            continue
        try:
            size = path.lstat().st_size  # a symlink planted there is removed, never followed
            path.unlink()
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        removed.append((path, size))
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _disk_full(output: Path) -> OutputWriteError:
    return OutputWriteError(
        f"{output}: cannot write the export: the disk is full",
        hint="free some space on its disk and run again; nothing was written under this name",
    )


def _copy(store: Store, plan: ExportPlan, target: Path) -> int:
    literal = "'" + str(target).replace("'", "''") + "'"
    statement = f"COPY ({plan.selection.query}) TO {literal} ({COPY_OPTIONS[plan.request.fmt]})"
    try:
        return int(store.rows(statement)[0][0])
    except duckdb.Error as exc:
        if DISK_FULL in str(exc):
            raise _disk_full(plan.request.output) from exc
        raise ConfigError(f"{plan.request.output}: export {query_error(exc)}") from exc


def _xlsx(
    store: Store, plan: ExportPlan, target: Path, progress: Callable[[int], None] | None
) -> tuple[int, list[str], list[str]]:
    try:
        reader = store.con.sql(plan.selection.query).to_arrow_reader(BATCH_ROWS)
        result = write_xlsx(
            reader,
            reader.schema,
            target,
            sheet=plan.request.kind,
            sheet_rows=plan.request.sheet_rows,
            zip64=(plan.rows or 0) > XLSX_ZIP64_ROWS,
            progress=progress,
        )
    except duckdb.Error as exc:
        raise ConfigError(f"{plan.request.output}: export {query_error(exc)}") from exc
    except OSError as exc:  # a refusal arrives through Arrow's reader as an OSError
        if refusal(exc) is None:
            raise
        raise ConfigError(f"{plan.request.output}: export {query_error(exc)}") from exc
    notes = []
    if result.truncated_cells:
        notes.append(
            f"{result.truncated_cells:,} cells were longer than Excel's 32,767 characters "
            "and were cut; the CSV, JSON and Parquet exports keep them whole"
        )
    return result.rows, result.sheets, notes
