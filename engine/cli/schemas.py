"""`schema list` and `schema explain`: what the engine makes of a model."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from engine import ui
from engine.cli import Group
from engine.cli.options import handle_errors
from engine.schemas import describe_schemas, load_schema
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
