"""The command line, one module per concept; ``cli.py`` at the top is its entry point.

Each command parses its options, calls one engine function and turns an engine error into a
one-line message and a non-zero exit code. Everything here is also reachable from Python.
"""

from __future__ import annotations

import click

from engine.cli.files import generate, run
from engine.cli.kafka import consume, produce
from engine.cli.reports import export, report, sql, summary
from engine.cli.schemas import schema
from engine.cli.server import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Validate CSV / NDJSON / JSON files (and Kafka topics) against a Pydantic model with
    vectorized Polars rules, and store valid rows, errors and raw lineage in one DuckDB file."""


for command in (run, summary, generate, export, sql, report, schema, consume, produce, serve):
    main.add_command(command)

__all__ = ["main"]
