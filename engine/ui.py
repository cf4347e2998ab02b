"""Terminal presentation for the CLI: progress bars and summary tables (rich)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from engine.pipeline import Progress as RunProgress
from engine.pipeline import RunSummary
from engine.reports.summary import Summary

console = Console()
errors = Console(stderr=True)


def interactive() -> bool:
    return sys.stdout.isatty()


@contextmanager
def run_progress(
    label: str, total_bytes: int, *, enabled: bool
) -> Iterator[Callable[[RunProgress], None]]:
    """A bar over the file's bytes, with rows, rows/s, valid and invalid counters."""
    if not enabled:
        yield lambda _: None
        return
    columns = (
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
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total_bytes, rows=0, rate=0.0, valid=0, invalid=0)

        def update(progress: RunProgress) -> None:
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
        bar.update(task, completed=total_bytes)


def print_run(summary: RunSummary) -> None:
    if summary.status == "skipped":
        console.print(f"[yellow]skipped[/] {summary.path}: {summary.message}")
        return
    tally = summary.tally
    console.print(
        f"[bold green]run {summary.run_id}[/] {summary.path}: {tally.rows:,} rows, "
        f"[green]{tally.valid:,} valid[/], [red]{tally.invalid:,} invalid[/] in "
        f"{summary.duration_s:.2f} s ({summary.rows_per_s:,.0f} rows/s)"
    )
    if tally.python_rows:
        console.print(
            f"  {tally.python_rows:,} rows were decided by Pydantic itself (no vectorized twin)"
        )
    top = summary.top_errors(8)
    if top:
        table = Table(title="top errors", title_justify="left", show_edge=False)
        table.add_column("field")
        table.add_column("error type")
        table.add_column("rows", justify="right")
        for loc, kind, count in top:
            table.add_row(loc or "(row)", kind, f"{count:,}")
        console.print(table)


def print_summary(data: Summary) -> None:
    rate = "n/a" if data.success_rate is None else f"{data.success_rate:.2%}"
    console.print(
        f"[bold]{data.runs_completed}[/] completed runs ({data.runs_failed} failed): "
        f"{data.rows_total:,} rows, [green]{data.rows_valid:,} valid[/], "
        f"[red]{data.rows_invalid:,} invalid[/], success rate {rate}"
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
        ("seconds", "right"),
        ("rows/s", "right"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for run in data.runs:
        table.add_row(
            str(run.run_id),
            run.status,
            _short(run.source_path),
            run.schema_name,
            f"{run.rows_total:,}",
            f"{run.rows_valid:,}",
            f"{run.rows_invalid:,}",
            "" if run.duration_s is None else f"{run.duration_s:.2f}",
            "" if run.rows_per_s is None else f"{run.rows_per_s:,.0f}",
        )
    console.print(table)


def _short(path: str, width: int = 48) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)


def plain(value: Any) -> None:
    console.print(value, highlight=False, soft_wrap=True)
