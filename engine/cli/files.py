"""Files: `run` (validate and store) and `generate` (a deterministic dataset)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from pathlib import Path

import click
from rich.markup import escape

from engine import interrupts, ui
from engine.cli.options import (
    CONTEXT_OPTION,
    DB_OPTION,
    LAKE_OPTION,
    SCHEMA_OPTION,
    env,
    handle_errors,
    lake_from,
    load_model,
    parse_context,
)
from engine.cli.words import cli_spelling
from engine.errors import EngineError
from engine.ingesting import ingest
from engine.sources import FORMATS
from engine.sources.feeds import MiB
from engine.sources.remote import RemoteSettings
from engine.store.disk_full import giving_back_space
from engine.store.raw_codec import RAW_COMPRESSIONS
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.wording import count


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@DB_OPTION
@LAKE_OPTION
@SCHEMA_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Input format; by default from the file's extension (after a .gz, .zst, .bz2 or "
    ".xz one), else from its first bytes where they show it (JSON, Parquet, Arrow).",
    **env("FORMAT"),
)
@click.option(
    "--force",
    is_flag=True,
    help="Ingest again even if this content and schema were already ingested.",
    **env("FORCE"),
)
@CONTEXT_OPTION
@click.option(
    "--delimiter",
    default=",",
    show_default=True,
    metavar="CHAR",
    help="CSV: the field separator (one character; tab as '\\t' or 'tab').",
    **env("DELIMITER"),
)
@click.option(
    "--quote-char",
    default='"',
    show_default=True,
    metavar="CHAR",
    help="CSV: the quote character.",
    **env("QUOTE_CHAR"),
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="CSV: the text encoding (latin-1, windows-1252, utf-16, any Python codec), read "
    "into UTF-8.",
    **env("ENCODING"),
)
@click.option(
    "--max-record-bytes",
    type=click.IntRange(min=1),
    default=16 * MiB,
    show_default=True,
    metavar="BYTES",
    help="The longest record read. A longer one stops the file with one line naming its "
    "line (exit 2); so does a quote (CSV) or bracket (JSON array) left open past it.",
    **env("MAX_RECORD_BYTES"),
)
@click.option(
    "--max-invalid",
    type=click.IntRange(min=0),
    metavar="N",
    help="Quality gate: a run with more invalid rows is stored, marked, and the exit code is 1.",
    **env("MAX_INVALID"),
)
@click.option(
    "--max-invalid-rate",
    type=click.FloatRange(0, 1),
    callback=lambda ctx, param, value: _a_number(param, value),
    metavar="R",
    help="Quality gate: the same, for a fraction of invalid rows (0.05 is 5%).",
    **env("MAX_INVALID_RATE"),
)
@click.option(
    "--mode",
    type=click.Choice(["append", "replace", "merge"]),
    default="append",
    show_default=True,
    help="append: add the valid rows; replace: the table holds this run's valid rows only "
    "(atomically; earlier runs' lineage kept); merge: upsert on the model's __unique__ key "
    "(the latest valid row wins; the row it replaced is recorded in replaced_rows).",
    **env("MODE"),
)
@click.option(
    "--new-table",
    is_flag=True,
    help="Store this model's rows in a new table (for a model its stored table cannot take: "
    "a narrowed type, a new required field, a changed unique key); later runs follow it.",
    **env("NEW_TABLE"),
)
@click.option(
    "--raw-compression",
    type=click.Choice(RAW_COMPRESSIONS),
    help="How a new database compresses each row's raw text: uncompressed (the default: no "
    "CPU), zstd (a fraction of the size), or auto (DuckDB's choice). An existing database "
    "keeps its own (change it with compact --raw-compression).",
    **env("RAW_COMPRESSION"),
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object per run on stdout (and nothing else there).",
    **env("JSON"),
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="No progress bar and no summary; errors still go to stderr.",
    **env("QUIET"),
)
@handle_errors
def run(
    files: tuple[str, ...],
    db: Path,
    lake_uri: str | None,
    schema_spec: str,
    fmt: str | None,
    force: bool,
    context_items: tuple[str, ...],
    delimiter: str,
    quote_char: str,
    encoding: str,
    max_record_bytes: int,
    max_invalid: int | None,
    max_invalid_rate: float | None,
    mode: str,
    new_table: bool,
    raw_compression: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Validate FILES and store them, one atomic run per file.

    A FILE is a path, - for stdin, an http(s):// or s3:// URL (streamed, never downloaded
    first; S3 as the AWS_* variables say), or a FIFO such as <(zcat data.csv.gz). Files
    may be compressed (gzip, zstd, bz2, xz: by extension or by their first bytes). A run
    commits all its rows or none: an error, Ctrl-C or a kill leaves no rows of it.
    Re-running content already ingested with the same schema is a no-op unless --force.
    Exit code 0 when every run completed, even with invalid rows; 1 when a run is over the
    quality gate (--max-invalid, --max-invalid-rate; it is stored) or the database could
    not be written (the rest is not attempted); 2 when a file could not be ingested; 130
    on Ctrl-C, 143 on SIGTERM (a signal that comes once a run is committing lets it commit
    and print its summary first, then stops). With --lake, into shared Delta tables instead
    of the DuckDB file.
    """
    model = load_model(schema_spec)
    settings = RemoteSettings.from_environment(os.environ)
    failed = over_gate = 0
    show = not quiet and not as_json
    lake = lake_from(lake_uri)
    try:
        opened = Store(db, raw_compression=raw_compression) if lake is None else None
    except EngineError as exc:  # locked, unwritable...: every input fails, each says so
        if as_json:
            for location in files:
                click.echo(json.dumps(failed_run(location, exc)))
        raise
    with (
        giving_back_space(db if opened is not None else None),
        contextlib.nullcontext() if opened is None else opened as store,
    ):
        if store is not None:
            with store.writing():
                mark_interrupted(store)
        for location in files:
            # A signal once the run is committing is held until its summary is out.
            with interrupts.one_run(hold=store is not None) as kept:
                try:
                    with ui.run_progress(
                        _label(location), None, enabled=show and ui.interactive()
                    ) as progress:
                        result = ingest(
                            location,
                            db=store if store is not None else lake,  # type: ignore[arg-type]
                            schema=model,
                            format=fmt,
                            force=force,
                            context=parse_context(context_items),
                            delimiter=_character(delimiter),
                            quote_char=_character(quote_char),
                            encoding=encoding,
                            max_record_bytes=max_record_bytes,
                            max_invalid=max_invalid,
                            max_invalid_rate=max_invalid_rate,
                            progress=progress,
                            remote=settings,
                            storing_first=True,
                            mode=mode,
                            new_table=new_table,
                            raw_compression=raw_compression if lake is not None else None,
                        )
                except EngineError as exc:
                    # The database failed (the next file would too), or a signal came.
                    if as_json:
                        click.echo(json.dumps(failed_run(location, exc)))
                    if exc.exit_code != 2 or interrupts.received() is not None:
                        raise
                    ui.fail(escape(exc.render(cli_spelling)))
                    failed += 1
                    continue
                over_gate += result.gate is not None
                if as_json:
                    click.echo(json.dumps(result.as_json(cli_spelling)))
                elif not quiet:
                    ui.print_run(result)
                elif result.gate is not None:  # the summary says it otherwise: the exit's why
                    ui.fail(escape(f"{location}: {result.gate} (the run is stored)"))
                kept(None if result.run_id is None else f"run {result.run_id}")
    if failed:
        sys.exit(2)
    if over_gate:
        sys.exit(1)


def _a_number(param: click.Parameter, value: float | None) -> float | None:
    """NaN passes click's range check (every comparison with it is false)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter("nan is not a number between 0 and 1", param=param)
    return value


def _label(location: str) -> str:
    return "stdin" if location == "-" else location.rstrip("/").rsplit("/", 1)[-1]


def _character(value: str) -> str:
    """A CSV character as typed on a command line: tab as ``\\t`` or ``tab``."""
    return {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(value, value)


def failed_run(location: str, exc: EngineError) -> dict[str, object]:
    """``run --json``'s object for a file that could not be ingested."""
    return {
        "run_id": exc.run_id,
        "status": "failed",
        "source": "stdin" if location == "-" else location,
        "error": exc.render(cli_spelling),
        "exit_code": exc.exit_code,
    }


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
    "--format",
    "fmt",
    type=click.Choice(["csv", "ndjson"]),
    default=None,
    help="Default: ndjson for a FILE named .ndjson, .jsonl or .json, else csv.",
)
@handle_errors
def generate(rows: int, output: Path, seed: int, bad_fraction: float, fmt: str | None) -> None:
    """Write a deterministic transactions dataset (for demos, tests and benchmarks)."""
    # A bar on a terminal only: elsewhere click would print its label alone, a stray line.
    bar = (
        click.progressbar(length=rows, label=f"writing {output.name}", file=sys.stderr)
        if sys.stderr.isatty()
        else None
    )
    from engine.generate import generate as generate_dataset  # numpy's generator: only here

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
