"""Files: `run` (validate and store) and `generate` (a deterministic dataset)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click
from rich.markup import escape

from engine import interrupts, ui
from engine.cli.options import (
    CONTEXT_OPTION,
    DB_OPTION,
    SCHEMA_OPTION,
    handle_errors,
    parse_context,
)
from engine.errors import EngineError
from engine.generate import generate as generate_dataset
from engine.pipeline import RunOptions, ingest_file
from engine.schemas import load_schema
from engine.sources import open_input
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.wording import count


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@DB_OPTION
@SCHEMA_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "ndjson", "json"]),
    help="Input format; by default from the file extension.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Ingest again even if this content and schema were already ingested.",
)
@CONTEXT_OPTION
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar and no summary; errors still go to stderr."
)
@handle_errors
def run(
    files: tuple[Path, ...],
    db: Path,
    schema_spec: str,
    fmt: str | None,
    force: bool,
    context_items: tuple[str, ...],
    quiet: bool,
) -> None:
    """Validate FILES and store them, one atomic run per file.

    A FILE may be a FIFO or a pipe, e.g. <(zcat data.csv.gz) with --format csv: it is read
    once. A run commits all its rows or none: an error, Ctrl-C or a kill leaves no rows of
    it. Re-running content already ingested with the same schema is a no-op unless --force.
    Exit code 0 when every run completed, even with invalid rows; 2 when a file could not be
    ingested; 1 when the database could not be written (the rest is not attempted); 130 on
    Ctrl-C.
    """
    model = load_schema(schema_spec)
    options = RunOptions(
        fmt=fmt, force=force, context=parse_context(context_items), storing_first=True
    )
    failed = 0
    with Store(db) as store:
        with store.writing():
            mark_interrupted(store)
        for path in files:
            try:
                with (
                    open_input(path) as source,
                    ui.run_progress(
                        path.name, source.size, enabled=not quiet and ui.interactive()
                    ) as progress,
                ):
                    result = ingest_file(store, source, model, options, progress)
            except EngineError as exc:
                # The database failed (the next file would too), or a signal came.
                if exc.exit_code != 2 or interrupts.received() is not None:
                    raise
                ui.fail(escape(str(exc)))
                failed += 1
                continue
            if not quiet:
                ui.print_run(result)
    if failed:
        sys.exit(2)


@click.command()
@click.option("--rows", type=int, required=True, help="Number of rows to write.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write.",
)
@click.option(
    "--seed", type=int, default=42, show_default=True, help="Random seed: same seed, same file."
)
@click.option(
    "--bad-fraction",
    type=float,
    default=0.05,
    show_default=True,
    help="Fraction of amounts replaced by -50.0.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "ndjson"]), default="csv", show_default=True
)
@handle_errors
def generate(rows: int, output: Path, seed: int, bad_fraction: float, fmt: str) -> None:
    """Write a deterministic transactions dataset (for demos, tests and benchmarks)."""
    # A bar on a terminal only: elsewhere click would print its label alone, a stray line.
    bar = (
        click.progressbar(length=rows, label=f"writing {output.name}", file=sys.stderr)
        if sys.stderr.isatty()
        else None
    )
    with bar or contextlib.nullcontext():
        generate_dataset(
            output,
            rows,
            seed=seed,
            bad_fraction=bad_fraction,
            fmt=fmt,
            progress=bar.update if bar is not None else None,
        )
    click.echo(f"wrote {count(rows, 'row')} to {output}")
