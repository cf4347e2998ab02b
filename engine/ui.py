"""Terminal presentation for the CLI: progress bars and summary tables (rich)."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from engine.cli.words import cli_spelling
from engine.reports.sql import text_value
from engine.wording import count

if TYPE_CHECKING:  # each command imports only the engine modules it runs
    from engine.pipeline import Progress as RunProgress
    from engine.pipeline import RunSummary
    from engine.reports.exports import ExportResult
    from engine.reports.summary import Summary

# Lines are never broken at the terminal's width (soft wrap): a long path keeps a summary
# line whole, for grep and for logs; tables still fit the width.


def _console(*, stderr: bool) -> Console:
    # Off a terminal (a pipe, a file) nothing is cut to fit 80 columns: lines are not wrapped
    # and tables take the width their values need.
    # No emoji codes either: a name like `transactions:X:` is text, not ":X:" (a cross mark).
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr, soft_wrap=True, emoji=False, width=None if stream.isatty() else 10_000
    )


console = _console(stderr=False)
errors = _console(stderr=True)


def interactive() -> bool:
    return sys.stdout.isatty()


@contextmanager
def run_progress(
    label: str, total_bytes: int | None, *, enabled: bool
) -> Iterator[Callable[[RunProgress], None]]:
    """A bar over the file's bytes, with rows, rows/s, valid and invalid counters (a stream's
    size is not known: its bar pulses). ``total_bytes`` None: the first progress report
    says it (the input is opened by the run)."""
    if not enabled:
        yield lambda _: None
        return
    if console.width >= 140:
        columns: tuple[ProgressColumn, ...] = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            TextColumn(
                "{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s  "
                "[green]{task.fields[valid]:,} valid[/]  [red]{task.fields[invalid]:,} invalid[/]"
            ),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
    else:  # an 80-column terminal: the counts whole, the rest shortened (valid = rows - invalid)
        columns = (
            TextColumn("[bold]{task.description}", table_column=Column(max_width=16)),
            BarColumn(bar_width=10),
            TextColumn(
                "{task.fields[rows]:,} rows, [red]{task.fields[invalid]:,} invalid[/], "
                "{task.fields[rate]:,.0f}/s"
            ),
            TimeRemainingColumn(),
        )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total_bytes, rows=0, rate=0.0, valid=0, invalid=0)

        read = [0]
        total = [total_bytes]

        def update(progress: RunProgress) -> None:
            if total[0] is None and progress.total_bytes is not None:
                total[0] = progress.total_bytes
                bar.update(task, total=total[0])
            read[0] = progress.bytes_read
            elapsed = bar.tasks[0].elapsed or 0.0
            tally = progress.tally
            bar.update(
                task,
                completed=progress.bytes_read,
                rows=tally.rows,
                rate=tally.rows / elapsed if elapsed else 0.0,
                valid=tally.valid,
                invalid=tally.invalid,
            )

        yield update
        if total[0] is None:
            bar.update(task, total=read[0], completed=read[0])
        else:
            bar.update(task, completed=total[0])


def print_run(summary: RunSummary) -> None:
    if summary.status == "skipped":
        console.print(f"[yellow]skipped[/] {summary.path}: {summary.explain(cli_spelling)}")
        return
    tally = summary.tally
    console.print(
        f"[bold green]run {summary.run_id}[/] {summary.path}: {count(tally.rows, 'row')}, "
        f"[green]{tally.valid:,} valid[/], [red]{tally.invalid:,} invalid[/] in "
        f"{summary.duration_s:.2f} s ({summary.rows_per_s:,.0f} rows/s)"
    )
    if tally.python_rows:
        console.print(
            f"  {tally.python_rows:,} {'row was' if tally.python_rows == 1 else 'rows were'} "
            "decided by Pydantic itself (no vectorized twin)"
        )
    if summary.gate:
        console.print(f"  [bold red]{escape(summary.gate)}[/] (the run is stored)")
    top = summary.top_errors(8)
    if top:
        _print_counts(
            "top errors",
            ("field", "error type", "rows"),
            [(loc or "(row)", kind, count) for loc, kind, count in top],
        )


def print_summary(data: Summary) -> None:
    rate = "n/a" if data.success_rate is None else f"{data.success_rate:.2%}"
    speed = "" if data.rows_per_s is None else f", {data.rows_per_s:,.0f} rows/s"
    console.print(
        f"[bold]{data.runs_completed:,}[/] completed {'run' if data.runs_completed == 1 else 'runs'} "
        f"({data.runs_failed:,} failed): {count(data.rows_total, 'row')}, "
        f"[green]{data.rows_valid:,} valid[/], "
        f"[red]{data.rows_invalid:,} invalid[/], success rate {rate}{speed}"
    )
    if not data.runs:
        return
    table = Table(show_edge=False)
    for name, justify in [
        ("run", "right"),
        ("status", "left"),
        ("source", "left"),
        ("schema", "left"),
        ("rows", "right"),
        ("valid", "right"),
        ("invalid", "right"),
        ("success", "right"),
        ("seconds", "right"),
        ("rows/s", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for run in data.runs:
        table.add_row(
            str(run.run_id),
            run.status,
            _short(visible(run.source_path)),
            run.schema_name,
            f"{run.rows_total:,}",
            f"{run.rows_valid:,}",
            f"{run.rows_invalid:,}",
            "" if run.success_rate is None else f"{run.success_rate:.1%}",
            "" if run.duration_s is None else f"{run.duration_s:.2f}",
            "" if run.rows_per_s is None else f"{run.rows_per_s:,.0f}",
        )
    console.print(table)
    if data.errors_by_field:
        _print_counts(
            "errors by field and type",
            ("field", "error type", "errors"),
            [(item.field or "(row)", item.type, item.count) for item in data.errors_by_field],
        )
    if data.top_values:
        _print_counts(
            "most frequent offending values",
            ("field", "value", "errors"),
            [(v.field, escape(_clip(v.display)), v.count) for v in data.top_values],
        )


def _print_counts(
    title: str, headers: tuple[str, str, str], rows: list[tuple[str, str, int]]
) -> None:
    """A titled table of two text columns and a right-aligned count."""
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(headers[0])
    table.add_column(headers[1])
    table.add_column(headers[2], justify="right")
    for first, second, n in rows:
        table.add_row(first, second, f"{n:,}")
    console.print(table)


def warn(message: str) -> None:
    errors.print(
        f"[bold yellow]warning:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )


@contextmanager
def export_progress(
    label: str, total_rows: int | None, *, enabled: bool
) -> Iterator[Callable[[int], None]]:
    """A bar over the rows of an export whose size is known (XLSX); nothing otherwise."""
    if not enabled or total_rows is None or not errors.is_terminal:
        yield lambda _: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:>12,.0f} / {task.total:,.0f} rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=errors, transient=False) as bar:
        task = bar.add_task(label, total=total_rows)
        yield lambda rows: bar.advance(task, rows)


def print_export(result: ExportResult) -> None:
    sheets = f" on {len(result.sheets)} sheets" if len(result.sheets) > 1 else ""
    console.print(
        f"[bold green]exported[/] {count(result.rows, 'row')} of {result.source} to "
        f"{escape(str(result.path))} ({result.fmt}{sheets}) in {result.seconds:.2f} s "
        f"({result.rows_per_s:,.0f} rows/s)",
        highlight=False,
        soft_wrap=True,
    )
    for note in result.notes:
        warn(note)


def print_rows(columns: list[str], rows: list[tuple[Any, ...]], *, more: bool) -> None:
    """A query result as a terminal table; NULL is shown dimmed, numbers right-aligned."""
    table = Table(show_edge=False, header_style="bold")
    sample = rows[:50]
    for index, name in enumerate(columns):
        values = [row[index] for row in sample if row[index] is not None]
        numeric = bool(values) and all(
            isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in values
        )
        table.add_column(
            escape(visible(name)), justify="right" if numeric else "left", overflow="fold"
        )
    for row in rows:
        table.add_row(
            *("[dim]NULL[/]" if v is None else escape(visible(text_value(v))) for v in row)
        )
    console.print(table)
    shown = count(len(rows), "row")
    tail = " shown; more rows follow (use --format csv or json for all of them)" if more else ""
    console.print(f"[dim]{shown}{tail}[/]", highlight=False)


def visible(text: str, keep: str = "\n\t") -> str:
    """Stored text made safe for a terminal: control characters (ESC, BEL, CR, C1 ...) are
    shown as Python escapes (``\\x1b``), as ``repr`` shows them in the summary's values, so a
    stored escape sequence (a hyperlink, a screen clear) is displayed, not run. The
    characters in ``keep`` (line feeds and tabs) stay as they are."""
    if text.isprintable():
        return text
    return "".join(
        repr(char)[1:-1] if char not in keep and _hidden(char) else char for char in text
    )


# Bidirectional embeddings, overrides and isolates: they reorder what follows on the line.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _hidden(char: str) -> bool:
    """A character that acts on the terminal or the line instead of showing: a control
    character, a line or paragraph separator (U+2028/9), a bidirectional control."""
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in BIDI_CONTROLS


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def fail(message: str) -> None:
    """One error line; ``message`` is markup (escaped by the caller), its control characters
    shown as escapes (a file name may hold ESC, or a line feed: it stays one line)."""
    errors.print(
        f"[bold red]error:[/] {visible(message, keep='')}",
        markup=True,
        highlight=False,
        soft_wrap=True,
    )


def plain(value: Any) -> None:
    console.print(value, highlight=False, soft_wrap=True)


def print_explanation(data: Any) -> None:
    """Render an engine.validation.explain.Explanation, one block per field."""
    unique = f"; unique key ({', '.join(data.unique)})" if data.unique else ""
    # Everything from the model is escaped: a pattern's [a-z] is not Rich markup.
    console.print(
        f"[bold]{escape(data.model)}[/] -> table [bold]{escape(data.table)}[/], for "
        f"{data.source}; extra inputs: {data.extra}{escape(unique)}",
        highlight=False,
    )
    for field in data.fields:
        keys = escape(", ".join(repr(k) for k in field.input_keys))
        console.print(
            f"\n  [bold]{escape(field.name)}[/]  [cyan]{escape(field.sql_type)}[/]  "
            f"{escape(field.requirement)}  (input {keys})",
            highlight=False,
        )
        for step in field.parse:
            console.print(f"      parse   {escape(step)}", highlight=False)
        for check in field.checks or ("-",):
            console.print(f"      check   {escape(check)}", highlight=False)
        console.print(f"      runs    {escape(field.path)}", highlight=False)
    for note in data.model_level:
        console.print(f"\n  model: {escape(note)}", highlight=False)
    for note in data.storage:
        console.print(f"\n  [yellow]storage[/]: {escape(note)}", highlight=False)


def print_schema_list(items: list[tuple[str, str, str]]) -> None:
    table = Table(show_edge=False)
    for name in ("schema", "table", "description"):
        table.add_column(name)
    for row in items:
        table.add_row(*row)
    console.print(table)
