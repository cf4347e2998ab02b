"""What the commands share: error handling, option parsing and common options.

Every option of ``run``, ``consume`` and ``serve`` can also be set by an environment variable,
``INGEST_`` and the option's name (``--max-invalid-rate`` is ``INGEST_MAX_INVALID_RATE``),
shown in each command's ``--help``; an option given on the command line wins.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from rich.markup import escape

from engine import interrupts, ui
from engine.cli.words import cli_spelling
from engine.errors import ConfigError, EngineError
from engine.lake.location import Lake
from engine.schemas import DEFAULT_SCHEMA, load_schema
from engine.store.paths import database_path
from engine.streaming.properties import load_properties
from engine.streaming.settings import DEFAULT_MAX_RECORDS, DEFAULT_MAX_WAIT_MS, parse_kafka_config

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
            ui.fail(escape(exc.render(cli_spelling)))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if interrupts.received() is not None:
                raise  # raised by a library that heard the signal too: one line, exit_after's
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


def env(name: str, *older: str) -> dict[str, Any]:
    """The option's environment variable(s), shown in --help: ``INGEST_<NAME>``, then any
    older name it kept (``ENGINE_DB``)."""
    return {"envvar": [f"INGEST_{name}", *older], "show_envvar": True}


def load_model(spec: str) -> type[BaseModel]:
    """``--schema``: as ``load_schema``, with the working directory importable (as uvicorn
    does), so that ``package.module:Class`` finds the caller's own package."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    return load_schema(spec)


def kafka_properties(config_file: Path | None, items: tuple[str, ...]) -> dict[str, str]:
    """librdkafka properties: a properties file's, then --kafka-config's (which win)."""
    found = load_properties(config_file) if config_file is not None else {}
    return found | parse_kafka_config(items)


def bootstrap(servers: str | None, properties: dict[str, str]) -> str:
    """--bootstrap-servers, or the properties file's bootstrap.servers (taken out of it)."""
    from_file = properties.pop("bootstrap.servers", None)
    if servers and from_file and servers != from_file:
        raise ConfigError(
            f"--bootstrap-servers {servers} differs from bootstrap.servers={from_file} in "
            "--kafka-config-file; give one"
        )
    found = servers or from_file
    if not found:
        raise ConfigError(
            "give --bootstrap-servers, or bootstrap.servers in the --kafka-config-file"
        )
    return found


def _database(ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    # The file DuckDB will open (``~/``, ``file:``), for every use of the path alike.
    try:
        return database_path(value)
    except EngineError as exc:
        ui.fail(escape(exc.render(cli_spelling)))
        ctx.exit(exc.exit_code)
        raise  # not reached: ctx.exit raises


DB_OPTION = click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reporting.duckdb"),
    show_default=True,
    callback=_database,
    help="DuckDB file.",
    **env("DB", "ENGINE_DB"),
)


def _lake_given(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # An empty value (``--lake "$UNSET"``) would fall back to the default DuckDB file: rows
    # meant for a lake must not land elsewhere without a word.
    if value is not None and not value.strip():
        ui.fail("--lake is empty: give a directory or s3://bucket/prefix, or leave --lake out")
        ctx.exit(2)
    return value


LAKE_OPTION = click.option(
    "--lake",
    "lake_uri",
    metavar="URI",
    default=None,
    callback=_lake_given,
    help="A Delta Lake root instead of --db: a directory or s3://bucket/prefix (S3 as the "
    "AWS_* variables say), shared by any number of writers.",
    **env("LAKE"),
)


def lake_from(uri: str | None) -> Lake | None:
    """``--lake``: the lake, reached with the standard AWS variables of this process."""
    return None if not uri else Lake.from_environment(uri, os.environ)


def _no_lake(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        ui.fail(
            f"{ctx.command_path.split(' ', 1)[-1]} does not work on a lake yet (--lake "
            f"{escape(value)}): use it on a DuckDB file (--db); a lake's housekeeping is "
            "`lake compact` and `lake vacuum`"
        )
        ctx.exit(2)


# For the commands a lake does not take yet: a one-line refusal, not a usage error.
NO_LAKE_OPTION = click.option(
    "--lake",
    metavar="URI",
    default=None,
    hidden=True,
    expose_value=False,
    callback=_no_lake,
    envvar="INGEST_LAKE",
)


SCHEMA_OPTION = click.option(
    "--schema",
    "schema_spec",
    default=DEFAULT_SCHEMA,
    show_default=True,
    help="A model in schemas/ (module or class name), package.module:ClassName, or "
    "path/to/file.py:ClassName.",
    **env("SCHEMA"),
)
CONTEXT_OPTION = click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Validation context passed to the schema, e.g. allowed_currencies=USD,EUR "
    "(repeatable; in the environment, separated by spaces).",
    **env("CONTEXT", "ENGINE_CONTEXT"),
)
BOOTSTRAP_OPTION = click.option(
    "--bootstrap-servers",
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka brokers to start from (or bootstrap.servers in --kafka-config-file).",
    **env("BOOTSTRAP_SERVERS"),
)
KAFKA_CONFIG_OPTION = click.option(
    "--kafka-config",
    "kafka_items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra librdkafka property, e.g. security.protocol=SASL_SSL (repeatable; wins over "
    "--kafka-config-file).",
    **env("KAFKA_CONFIG"),
)
KAFKA_CONFIG_FILE_OPTION = click.option(
    "--kafka-config-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="librdkafka properties from a Java properties file (client.properties: SASL "
    "credentials, TLS...), so that no password is on the command line.",
    **env("KAFKA_CONFIG_FILE"),
)
MAX_RECORDS_OPTION = click.option(
    "--max-records",
    type=int,
    default=DEFAULT_MAX_RECORDS,
    show_default=True,
    help="A micro-batch closes at this many messages...",
    **env("MAX_RECORDS"),
)
MAX_WAIT_OPTION = click.option(
    "--max-wait-ms",
    type=int,
    default=DEFAULT_MAX_WAIT_MS,
    show_default=True,
    help="...or this many milliseconds after its first message.",
    **env("MAX_WAIT_MS"),
)
