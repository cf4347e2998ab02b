"""A table's life: `replay` (invalid rows against the current model), `delete-run`, `prune`
and `compact` (retention and size)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from engine import interrupts
from engine.cli.options import (
    CONTEXT_OPTION,
    DB_OPTION,
    LAKE_OPTION,
    NO_LAKE_OPTION,
    SCHEMA_OPTION,
    handle_errors,
    lake_from,
    load_model,
    parse_context,
)
from engine.errors import ConfigError
from engine.store.raw_codec import RAW_COMPRESSIONS
from engine.store.retention import Reclaimed, prune_raw
from engine.store.retention import compact as compact_file
from engine.store.retention import delete_run as delete_rows
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.wording import count

if TYPE_CHECKING:
    from engine.lake.location import Lake
    from engine.replaying import ReplayResult

JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="Print the outcome as one JSON object."
)


@click.command()
@DB_OPTION
@SCHEMA_OPTION
@CONTEXT_OPTION
@click.option(
    "--run",
    "runs",
    type=int,
    multiple=True,
    metavar="N",
    help="A run whose invalid rows to validate again (repeatable).",
)
@click.option(
    "--all-failed",
    is_flag=True,
    help="Every invalid row of every run with some (instead of --run).",
)
@click.option(
    "--where",
    metavar="SQL",
    help="Only the invalid rows this condition selects, over ingestion_errors' columns "
    "(run_id, row_number, raw, errors), e.g. \"raw LIKE '%EUR%'\".",
)
@click.option(
    "--from",
    "edited",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="An errors export (csv, ndjson, json, parquet) whose raw cells you corrected: "
    "replay those rows only, each from its corrected text (export it with --no-sanitize).",
)
@JSON_OPTION
@LAKE_OPTION
@handle_errors
def replay(
    db: Path,
    schema_spec: str,
    context_items: tuple[str, ...],
    runs: tuple[int, ...],
    all_failed: bool,
    where: str | None,
    edited: Path | None,
    as_json: bool,
    lake_uri: str | None,
) -> None:
    """Validate the stored raw text of invalid rows again, against the current model (after
    fixing the model), or their corrected text (--from an edited errors export), and move
    the rows that now pass into its table, in one transaction (on a lake: one batch), under
    their original run and row numbers. Rows that still fail keep their errors.
    Exit code 0 (even when no row passes), 2 for an unknown run or a bad --where."""
    from engine.replay_edits import read_edits
    from engine.replaying import replay as replay_rows  # the compiler only for this command

    interrupts.reclaim()  # from Polars, imported just now
    if (bool(runs) + all_failed + (edited is not None)) != 1 and not (runs and edited):
        raise ConfigError("give --run N (repeatable), --all-failed or --from FILE")
    edits = read_edits(edited) if edited is not None else None
    model = load_model(schema_spec)
    lake = lake_from(lake_uri)
    context = parse_context(context_items)

    def replay(store: Store | Lake) -> ReplayResult:
        chosen = list(runs) if runs else None
        return replay_rows(store, model, runs=chosen, where=where, context=context, edits=edits)

    # A signal once the replay is committing is held until its line is out (``one_run``).
    with interrupts.one_run(hold=lake is None) as kept:
        if lake is not None:  # published as one batch (engine.lake.replay)
            result = replay(lake)
        else:
            with Store(db, create=False) as store:
                with store.writing():
                    mark_interrupted(store)
                result = replay(store)
        _report_replay(result, as_json, edited)
        kept(None if result.replay_id is None else f"replay {result.replay_id}")


def _report_replay(result: ReplayResult, as_json: bool, edited: Path | None) -> None:
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    if result.replay_id is None:
        click.echo("no invalid rows to replay")
    else:
        click.echo(
            f"replay {result.replay_id}: {result.moved:,} of "
            f"{count(result.checked, 'invalid row')} now pass, moved into {result.table}; "
            f"{result.still_invalid:,} still invalid"
        )
    if result.unused_edits:
        click.echo(
            f"{count(result.unused_edits, 'row')} of {edited} left alone: not invalid rows "
            "(valid, replayed before, or not selected by --where)"
        )


def _size(n: int) -> str:
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= factor:
            return f"{n / factor:,.1f} {unit}"
    return count(n, "byte")


def _report(result: Reclaimed, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    if result.action == "compact":
        where = f"the file went from {_size(result.file_before)} to {_size(result.file_after)}"
    elif result.reclaimed:
        where = "freed inside the file for new rows; `compact` gives it back to the system"
    else:
        where = (
            f"the used blocks went from {_size(result.used_before)} to "
            f"{_size(result.used_after)}: DuckDB frees a row group's blocks only once all of its "
            "rows are gone; `compact` rewrites the file"
        )
    amount = _size(result.reclaimed) if result.reclaimed else "nothing"
    click.echo(f"{result.note}; reclaimed {amount} ({where})")


@click.command("delete-run")
@click.argument("run_id", type=int, metavar="N")
@DB_OPTION
@JSON_OPTION
@NO_LAKE_OPTION
@handle_errors
def delete_run(run_id: int, db: Path, as_json: bool) -> None:
    """Delete all of run N's rows (valid, invalid, raw lineage, Kafka coordinates, replay
    records) in one transaction; the run stays listed as deleted. Refused for a run whose
    merge or replace replaced rows of earlier runs. Exit code 2 for an unknown run."""
    _change(db, as_json, f"the deletion of run {run_id}", lambda s: delete_rows(s, run_id))


@click.command()
@click.option(
    "--raw-older-than",
    "days",
    type=float,
    required=True,
    metavar="DAYS",
    help="Drop the raw text of valid rows of runs that finished more than DAYS ago.",
)
@DB_OPTION
@JSON_OPTION
@NO_LAKE_OPTION
@handle_errors
def prune(days: float, db: Path, as_json: bool) -> None:
    """Drop the raw lineage (raw_data.raw) of old valid rows, keeping its SHA-256 in
    pruned_raw; invalid rows keep theirs (replay reads it)."""
    _change(db, as_json, "the prune", lambda store: prune_raw(store, days))


def _change(db: Path, as_json: bool, what: str, change: Callable[[Store], Reclaimed]) -> None:
    """One change of the stored rows in its transaction, reported; a signal once it is
    committing is held until the report is out, then named (``interrupts.one_run``)."""
    with interrupts.one_run() as kept:
        with Store(db, create=False) as store:
            with store.writing():
                mark_interrupted(store)
            result = change(store)
        _report(result, as_json)
        kept(what)


@click.command()
@DB_OPTION
@click.option(
    "--raw-compression",
    type=click.Choice(RAW_COMPRESSIONS),
    help="Also change how the raw text (raw_data.raw) is compressed, for good.",
)
@JSON_OPTION
@NO_LAKE_OPTION
@handle_errors
def compact(db: Path, raw_compression: str | None, as_json: bool) -> None:
    """Rewrite the database file so that it holds only what is stored (after delete-run and
    prune). Needs the database to itself and free space for a copy of it."""
    with interrupts.one_run() as kept:  # a signal once the copy is swapped in: held, said
        _report(compact_file(db, raw_compression=raw_compression), as_json)
        kept("the compaction")
