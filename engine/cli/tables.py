"""A table's life: `replay` (invalid rows against the current model), `delete-run`, `prune`
and `compact` (retention and size)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from engine.cli.options import (
    CONTEXT_OPTION,
    DB_OPTION,
    SCHEMA_OPTION,
    handle_errors,
    load_model,
    parse_context,
)
from engine.errors import ConfigError
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.wording import count

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
@JSON_OPTION
@handle_errors
def replay(
    db: Path,
    schema_spec: str,
    context_items: tuple[str, ...],
    runs: tuple[int, ...],
    all_failed: bool,
    where: str | None,
    as_json: bool,
) -> None:
    """Validate the stored raw text of invalid rows again, against the current model (after
    fixing the model), and move the rows that now pass into its table, in one transaction,
    under their original run and row numbers. Rows that still fail keep their errors.
    Exit code 0 (even when no row passes), 2 for an unknown run or a bad --where."""
    from engine.replay import replay as replay_rows  # the compiler only for this command

    if bool(runs) == all_failed:
        raise ConfigError("give --run N (repeatable) or --all-failed")
    model = load_model(schema_spec)
    with Store(db) as store:
        with store.writing():
            mark_interrupted(store)
        result = replay_rows(
            store,
            model,
            runs=list(runs) if runs else None,
            where=where,
            context=parse_context(context_items),
        )
    if as_json:
        click.echo(json.dumps(result.as_json()))
        return
    if result.replay_id is None:
        click.echo("no invalid rows to replay")
        return
    click.echo(
        f"replay {result.replay_id}: {result.moved:,} of "
        f"{count(result.checked, 'invalid row')} now pass, moved into {result.table}; "
        f"{result.still_invalid:,} still invalid"
    )
