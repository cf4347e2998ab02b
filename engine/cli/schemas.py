"""`schema list` and `schema explain`: what the engine makes of a model."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from engine import ui
from engine.cli import Group
from engine.cli.options import (
    CONTEXT_OPTION,
    DB_OPTION,
    LAKE_OPTION,
    handle_errors,
    lake_from,
    load_model,
    parse_context,
)
from engine.cli.words import cli_spelling
from engine.schemas import describe_schemas, load_schema
from engine.store.diff import MARKS, SchemaDiff
from engine.store.diff import schema_diff as diff
from engine.validation.explain import explain


@click.group(cls=Group)
def schema() -> None:
    """Inspect the Pydantic models the engine validates against."""


@schema.command("list")
@handle_errors
def schema_list() -> None:
    """List the models in schemas/ with their target tables."""
    ui.print_schema_list(describe_schemas())


def _output_format(value: str) -> str:
    if value in ("table", "json"):
        return value
    if value in ("csv", "ndjson"):  # what --format meant before --input-format existed
        raise click.BadParameter(
            f"{value!r} is an input format: use --input-format {value} "
            "(--format picks the output: table or json)"
        )
    raise click.BadParameter(f"{value!r} is not one of 'table', 'json'")


@schema.command("explain")
@click.argument("schema_spec", metavar="SCHEMA")
@click.option(
    "--input-format",
    type=click.Choice(["csv", "ndjson", "json"]),
    default="csv",
    show_default=True,
    help="Explain for this input: CSV (text values) or JSON-typed values (ndjson, json, Kafka).",
)
@click.option(
    "--format",
    "fmt",
    metavar="[table|json]",
    default="table",
    show_default=True,
    callback=lambda ctx, param, value: _output_format(value),
    help="Text for the terminal, or the same explanation as JSON.",
)
@handle_errors
def schema_explain(schema_spec: str, input_format: str, fmt: str) -> None:
    """Per field: DuckDB column type, parse steps, checks, and whether rows are decided
    vectorized or by Pydantic itself. SCHEMA as for `run --schema`."""
    explanation = explain(load_schema(schema_spec), typed=input_format != "csv")
    if fmt == "json":
        click.echo(json.dumps(asdict(explanation), indent=2, ensure_ascii=False))
    else:
        ui.print_explanation(explanation)


@schema.command("diff")
@click.argument("schema_spec", metavar="SCHEMA")
@DB_OPTION
@CONTEXT_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Text for the terminal, or the same as JSON.",
)
@LAKE_OPTION
@handle_errors
def schema_diff(
    schema_spec: str, db: Path, lake_uri: str | None, context_items: tuple[str, ...], fmt: str
) -> None:
    """What the stored table has against what the model wants: the columns the next run
    would add (+), widen (~) or keep without the model (-), and what it would refuse (!).
    Read-only; exit code 0 whether or not the model fits (see "compatible" in the JSON).
    With --lake, against the lake's table (and the generation its rows would go to)."""
    lake = lake_from(lake_uri)
    found = diff(
        db if lake is None else lake,
        load_model(schema_spec),
        context=parse_context(context_items),
        spell=cli_spelling,
    )
    if fmt == "json":
        click.echo(json.dumps(found.as_json(), indent=2))
        return
    click.echo(diff_text(found))


def diff_text(found: SchemaDiff) -> str:
    version = (
        f"version {found.version} of {found.declared_table}"
        if found.version is not None
        else "a new version"
    )
    where = (
        f"table {found.table} ({found.stored_rows:,} rows)"
        if found.exists
        else f"table {found.table} (does not exist yet)"
    )
    lines = [f"schema {found.schema} ({found.fingerprint}, {version}) -> {where}"]
    lines += [f"  {MARKS[mark]} {column}: {words}" for mark, column, words in found.lines]
    if not found.exists:
        lines.append("the next run creates the table")
    elif found.compatible:
        changed = [words for mark, _, words in found.lines if mark in ("add", "widen")]
        lines.append(
            "the next run fits"
            + (f", after these changes: {'; '.join(changed)}" if changed else " as it is")
        )
    else:
        lines.append(f"the next run is refused: {'; '.join(found.refusals)} ({found.remedy})")
    if found.lake_note is not None:
        lines.append(f"on the lake: {found.lake_note}")
    return "\n".join(lines)
