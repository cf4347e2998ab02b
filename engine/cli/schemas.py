"""`schema list` and `schema explain`: what the engine makes of a model."""

from __future__ import annotations

import click

from engine import ui
from engine.cli.options import handle_errors
from engine.schemas import describe_schemas, load_schema
from engine.validation.explain import explain


@click.group()
def schema() -> None:
    """Inspect the Pydantic models the engine validates against."""


@schema.command("list")
@handle_errors
def schema_list() -> None:
    """List the models in schemas/ with their target tables."""
    ui.print_schema_list(describe_schemas())


@schema.command("explain")
@click.argument("schema_spec", metavar="SCHEMA")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json"]),
    default="csv",
    show_default=True,
    help="Explain for text input (csv) or JSON-typed input (json, ndjson, Kafka).",
)
@handle_errors
def schema_explain(schema_spec: str, fmt: str) -> None:
    """Per field: DuckDB column type, parse steps, checks, and whether rows are decided
    vectorized or by Pydantic itself. SCHEMA as for `run --schema`."""
    ui.print_explanation(explain(load_schema(schema_spec), typed=fmt == "json"))
