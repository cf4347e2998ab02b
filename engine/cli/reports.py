"""Reading the DuckDB file: `summary`, `export`, `sql` and `report`."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from engine import ui
from engine.cli.options import DB_OPTION, LAKE_OPTION, handle_errors, lake_from
from engine.errors import ConfigError, Remedy
from engine.reports.exports import (
    FORMATS,
    ExportRequest,
    export_format,
    plan_export,
    staged_file,
    write_export,
)
from engine.reports.reader import open_reader, out_of_memory
from engine.reports.selections import KINDS
from engine.reports.sql import head, run_json, run_query, write_csv, write_json
from engine.reports.staging import check_output, through_link
from engine.reports.summary import summary as build_summary
from engine.store.store import Store

STDOUT = "-"


@click.command()
@DB_OPTION
@LAKE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def summary(db: Path, lake_uri: str | None, as_json: bool) -> None:
    """Totals, success rate and rows/s, per-run figures, errors by field and type, and the
    most frequent offending values per field."""
    with _reader(db, lake_uri) as store:
        data = build_summary(store)
    if as_json:
        click.echo(json.dumps(data.as_json(), indent=2))
    else:
        ui.print_summary(data)


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
@DB_OPTION
@LAKE_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write (replaced when the export is complete), or - for stdout (with --format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format; by default from the extension of -o.",
)
@click.option("--run", "run_id", type=int, help="Only the rows of this run.")
@click.option(
    "--where",
    metavar="CONDITION",
    help="SQL condition on the exported columns, e.g. \"amount > 100 AND currency = 'EUR'\".",
)
@click.option("--table", help="For `processed`: the typed table, when runs used several schemas.")
@click.option(
    "--no-sanitize",
    is_flag=True,
    help="CSV: write text cells exactly as stored, even those starting with = + - @ or a "
    "tab, CR or LF (also after spaces or invisible characters), which a spreadsheet runs as "
    "formulas (by default they get a leading ').",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no closing line.")
@handle_errors
def export(
    kind: str,
    db: Path,
    lake_uri: str | None,
    output: Path,
    fmt: str | None,
    run_id: int | None,
    where: str | None,
    table: str | None,
    no_sanitize: bool,
    quiet: bool,
) -> None:
    """Export valid rows (processed), invalid rows (errors) or raw lineage (raw) to a file.

    Streamed from DuckDB in constant memory. The errors export has a readable `message`
    column, the error list as JSON and the raw input. XLSX keeps numbers and dates typed and
    continues on further sheets past Excel's 1,048,575 rows. Times are UTC. With -o - the
    export goes to stdout (staged in a temporary file first), and nothing else does.
    """
    if output == Path(STDOUT):
        if fmt is None:
            raise ConfigError(
                "cannot tell the export format of stdout", hint=Remedy("pass {}", "format", FORMATS)
            )
        with tempfile.TemporaryDirectory(prefix="ingest-export-") as staging:
            staged = Path(staging) / f"export.{fmt}"
            _export(
                kind, (db, lake_uri), staged, fmt, run_id, where, table, no_sanitize, quiet=True
            )
            with staged.open("rb") as fh:
                shutil.copyfileobj(fh, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        return
    _export(kind, (db, lake_uri), output, fmt, run_id, where, table, no_sanitize, quiet=quiet)


def _export(
    kind: str,
    target: tuple[Path, str | None],
    output: Path,
    fmt: str | None,
    run_id: int | None,
    where: str | None,
    table: str | None,
    no_sanitize: bool,
    *,
    quiet: bool,
) -> None:
    check_output(output, target[0] if target[1] is None else None)  # None: a lake
    output = through_link(output)
    request = ExportRequest(
        kind, export_format(output, fmt), output, run_id, where, table, sanitize=not no_sanitize
    )
    # The reader can write nothing but the export's temporary file (see engine.reports.lockdown),
    # created before the reader opens, under a name no one could plant a symlink at.
    with staged_file(output) as staged, _reader(*target, writable=[staged]) as store:
        plan = plan_export(store, request)
        for warning in plan.warnings:
            ui.warn(warning)
        with ui.export_progress(output.name, plan.rows, enabled=not quiet) as progress:
            result = write_export(store, plan, progress, staged=staged)
    if not quiet:
        ui.print_export(result)


@click.command()
@click.argument("query")
@DB_OPTION
@LAKE_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="A table for the terminal, or all rows as CSV or a JSON array.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rows shown by --format table (csv and json print every row).",
)
@handle_errors
def sql(query: str, db: Path, lake_uri: str | None, fmt: str, limit: int) -> None:
    """Run one read-only QUERY (SELECT, DESCRIBE, SUMMARIZE, EXPLAIN...) on the DuckDB file.

    Tables: ingestion_runs, one typed table per schema (processed_data for the reference
    schema), kafka_lineage, kafka_offsets; views: raw_data, ingestion_errors, error_details.
    Times are UTC.
    """
    with _reader(db, lake_uri) as store:
        if fmt == "json":
            write_json(run_json(store, query), sys.stdout)
            return
        # The table shows ``limit`` rows and whether there are more: one more is all it needs.
        result = run_query(store, query, rows=limit + 1 if fmt == "table" else None)
        if fmt == "table":
            rows, more = head(result, limit)
            ui.print_rows(result.columns, rows, more=more)
        else:
            write_csv(result, sys.stdout)


@click.command()
@DB_OPTION
@LAKE_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write (-: standard output).",
)
@handle_errors
def report(db: Path, lake_uri: str | None, output: Path) -> None:
    """Write a self-contained HTML report (no network needed to view it): the summary
    figures, valid and invalid rows per run, errors by field and type, and the valid data."""
    from engine.reports.html import build_report, render_report, write_report  # Jinja

    if str(output) == "-":  # as export -o - (it wrote a file named "-")
        with _reader(db, lake_uri) as store:
            click.echo(render_report(build_report(store)), nl=False)
        return
    check_output(output, db if lake_uri is None else None)
    output = through_link(output)
    with _reader(db, lake_uri) as store:
        write_report(store, output)
    click.echo(f"wrote {output}")


@contextmanager
def _reader(
    db: Path, lake_uri: str | None, *, writable: list[Path] | None = None
) -> Iterator[Store]:
    """The DuckDB file's locked-down reader, or the lake's (same views, same lock-down). On a
    lake, a file that cannot be read mid-command (deleted under the reader by `lake vacuum`,
    damaged) is one line, as when the reader opens. A query past the readers' memory cap is
    one line as well (exit 2, as an export's or `sql`'s)."""
    import duckdb

    lake = lake_from(lake_uri)
    if lake is None:
        with open_reader(db, writable=writable or []) as store:
            try:
                yield store
            except duckdb.OutOfMemoryException as exc:  # `summary`, `report`: one line too
                raise out_of_memory(exc) from exc
        return

    from engine.lake.reader import open_lake_reader  # deltalake: loaded only for a lake
    from engine.lake.tables import read_failure

    with open_lake_reader(lake, writable=writable or []) as store:
        try:
            yield store
        except duckdb.Error as exc:
            raise read_failure(lake, exc) from exc
