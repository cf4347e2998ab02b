"""Command line: ``python cli.py --help``.

Each command parses its options, calls one engine function and turns an engine error into a
one-line message and a non-zero exit code. Everything here is also reachable from Python.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engine import ui
from engine.errors import ConfigError, EngineError
from engine.generate import generate as generate_dataset
from engine.pipeline import RunOptions, ingest_file
from engine.reports.summary import summary as build_summary
from engine.schemas import DEFAULT_SCHEMA, load_schema
from engine.store.runs import mark_interrupted
from engine.store.store import Store

F = TypeVar("F", bound=Callable[..., Any])

DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reporting.duckdb"),
    envvar="ENGINE_DB",
    show_default=True,
    help="DuckDB file (env ENGINE_DB).",
)


def handle_errors(command: F) -> F:
    """Engine errors become one line on stderr and exit code 2; Ctrl-C exits 130."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EngineError as exc:
            ui.fail(ui_escape(str(exc)))
            sys.exit(2)
        except KeyboardInterrupt:
            ui.fail("interrupted; the run in progress was rolled back")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def ui_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def parse_context(items: tuple[str, ...]) -> dict[str, str]:
    context: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--context expects KEY=VALUE, got {item!r}")
        context[key.strip()] = value.strip()
    return context


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Validate CSV / NDJSON / JSON files (and Kafka topics) against a Pydantic model with
    vectorized Polars rules, and store valid rows, errors and raw lineage in one DuckDB file."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@DB_OPTION
@click.option(
    "--schema",
    "schema_spec",
    default=DEFAULT_SCHEMA,
    show_default=True,
    help="A model in schemas/ (module or class name) or path/to/file.py:ClassName.",
)
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
@click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    envvar="ENGINE_CONTEXT",
    help="Validation context passed to the schema, e.g. allowed_currencies=USD,EUR (env ENGINE_CONTEXT).",
)
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

    A run commits all its rows or none: an error or a kill leaves no rows of it. Re-running a
    file already ingested with the same schema is a no-op unless --force. Exit code 0 when
    every run completed, even with invalid rows; 2 when a file could not be ingested.
    """
    model = load_schema(schema_spec)
    options = RunOptions(fmt=fmt, force=force, context=parse_context(context_items))
    failed = 0
    with Store(db) as store:
        mark_interrupted(store)
        for path in files:
            try:
                size = path.stat().st_size if path.is_file() else 0
                with ui.run_progress(
                    path.name, size, enabled=not quiet and ui.interactive()
                ) as progress:
                    result = ingest_file(store, path, model, options, progress)
            except EngineError as exc:
                ui.fail(ui_escape(str(exc)))
                failed += 1
                continue
            if not quiet:
                ui.print_run(result)
    if failed:
        sys.exit(2)


@main.command()
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def summary(db: Path, as_json: bool) -> None:
    """Totals, success rate and per-run figures."""
    with Store(db, read_only=True) as store:
        data = build_summary(store)
    if as_json:
        click.echo(json.dumps(data.as_json(), indent=2))
    else:
        ui.print_summary(data)


@main.command()
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
    with click.progressbar(length=rows, label=f"writing {output.name}", file=sys.stderr) as bar:
        generate_dataset(
            output, rows, seed=seed, bad_fraction=bad_fraction, fmt=fmt, progress=bar.update
        )
    click.echo(f"wrote {rows:,} rows to {output}")


if __name__ == "__main__":
    main()
