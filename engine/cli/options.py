"""What the commands share: error handling, option parsing and common options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.markup import escape

from engine import interrupts, ui
from engine.errors import ConfigError, EngineError
from engine.schemas import DEFAULT_SCHEMA
from engine.streaming.settings import DEFAULT_MAX_RECORDS, DEFAULT_MAX_WAIT_MS

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(command: F) -> F:
    """Engine errors become one line on stderr and their exit code (2 for bad input or usage,
    1 for a runtime failure); Ctrl-C exits 130 (``engine.interrupts`` in a real process)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EngineError as exc:
            if interrupts.received() is not None:
                raise  # what failed was the interrupt: ``interrupts.exit_after`` says so
            ui.fail(escape(str(exc)))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            ui.fail("interrupted (anything not yet committed was rolled back)")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def parse_context(items: tuple[str, ...]) -> dict[str, str]:
    context: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--context expects KEY=VALUE, got {item!r}")
        context[key.strip()] = value.strip()
    return context


DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reporting.duckdb"),
    envvar="ENGINE_DB",
    show_default=True,
    help="DuckDB file (env ENGINE_DB).",
)
SCHEMA_OPTION = click.option(
    "--schema",
    "schema_spec",
    default=DEFAULT_SCHEMA,
    show_default=True,
    help="A model in schemas/ (module or class name) or path/to/file.py:ClassName.",
)
CONTEXT_OPTION = click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    envvar="ENGINE_CONTEXT",
    help="Validation context passed to the schema, e.g. allowed_currencies=USD,EUR (env ENGINE_CONTEXT).",
)
BOOTSTRAP_OPTION = click.option(
    "--bootstrap-servers",
    required=True,
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka brokers to start from.",
)
KAFKA_CONFIG_OPTION = click.option(
    "--kafka-config",
    "kafka_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra librdkafka property, e.g. security.protocol=SASL_SSL (repeatable).",
)
MAX_RECORDS_OPTION = click.option(
    "--max-records",
    type=int,
    default=DEFAULT_MAX_RECORDS,
    show_default=True,
    help="A micro-batch closes at this many messages...",
)
MAX_WAIT_OPTION = click.option(
    "--max-wait-ms",
    type=int,
    default=DEFAULT_MAX_WAIT_MS,
    show_default=True,
    help="...or this many milliseconds after its first message.",
)
