"""Command line: ``python cli.py --help``.

Each command parses its options, calls one engine function and turns an engine error into a
one-line message and a non-zero exit code. Everything here is also reachable from Python.
"""

from __future__ import annotations

import copy
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
from engine.reports.exports import (
    FORMATS,
    ExportRequest,
    export_format,
    plan_export,
    write_export,
)
from engine.reports.html import write_report
from engine.reports.reader import open_reader
from engine.reports.selections import KINDS
from engine.reports.sql import head, run_query, write_csv, write_json
from engine.reports.summary import summary as build_summary
from engine.schemas import DEFAULT_SCHEMA, describe_schemas, load_schema
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.streaming.consumer import consume as run_consumer
from engine.streaming.events import Event, Notice
from engine.streaming.producer import produce_file
from engine.streaming.settings import (
    DEFAULT_MAX_RECORDS,
    DEFAULT_MAX_WAIT_MS,
    ConsumerSettings,
    KafkaSettings,
    parse_kafka_config,
)
from engine.streaming.shutdown import stop_on_signals
from engine.validation.explain import explain

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
    """Totals, success rate and rows/s, per-run figures, errors by field and type, and the
    most frequent offending values per field."""
    with open_reader(db) as store:
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


@main.command()
@click.argument("kind", type=click.Choice(KINDS))
@DB_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write (replaced when the export is complete).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format; by default from the extension of -o.",
)
@click.option("--run", "run_id", type=int, help="Only the rows of this run.")
@click.option(
    "--where",
    metavar="CONDITION",
    help="SQL condition on the exported columns, e.g. \"amount > 100 AND currency = 'EUR'\".",
)
@click.option("--table", help="For `processed`: the typed table, when runs used several schemas.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no closing line.")
@handle_errors
def export(
    kind: str,
    db: Path,
    output: Path,
    fmt: str | None,
    run_id: int | None,
    where: str | None,
    table: str | None,
    quiet: bool,
) -> None:
    """Export valid rows (processed), invalid rows (errors) or raw lineage (raw) to a file.

    Streamed from DuckDB in constant memory. The errors export has a readable `message`
    column, the error list as JSON and the raw input. XLSX keeps numbers and dates typed and
    continues on further sheets past Excel's 1,048,575 rows. Times are UTC.
    """
    request = ExportRequest(kind, export_format(output, fmt), output, run_id, where, table)
    with open_reader(db) as store:
        plan = plan_export(store, request)
        for warning in plan.warnings:
            ui.warn(warning)
        with ui.export_progress(output.name, plan.rows, enabled=not quiet) as progress:
            result = write_export(store, plan, progress)
    if not quiet:
        ui.print_export(result)


@main.command()
@click.argument("query")
@DB_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="A table for the terminal, or all rows as CSV or a JSON array.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rows shown by --format table (csv and json print every row).",
)
@handle_errors
def sql(query: str, db: Path, fmt: str, limit: int) -> None:
    """Run one read-only QUERY (SELECT, DESCRIBE, SUMMARIZE, EXPLAIN...) on the DuckDB file.

    Tables: ingestion_runs, raw_data, ingestion_errors, one typed table per schema
    (processed_data for the reference schema) and the view error_details. Times are UTC.
    """
    with open_reader(db) as store:
        result = run_query(store, query)
        if fmt == "table":
            rows, more = head(result, limit)
            ui.print_rows(result.columns, rows, more=more)
        elif fmt == "csv":
            write_csv(result, sys.stdout)
        else:
            write_json(result, sys.stdout)


@main.command()
@DB_OPTION
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="HTML file to write.",
)
@handle_errors
def report(db: Path, output: Path) -> None:
    """Write a self-contained HTML report (no network needed to view it): the summary
    figures, valid and invalid rows per run, errors by field and type, and the valid data."""
    with open_reader(db) as store:
        write_report(store, output)
    click.echo(f"wrote {output}")


@main.group()
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


@main.command()
@BOOTSTRAP_OPTION
@click.option(
    "--topic", "topics", multiple=True, required=True, help="Topic to consume (repeatable)."
)
@click.option(
    "--group", required=True, help="Consumer group; each consumer of a group needs its own --db."
)
@DB_OPTION
@click.option(
    "--schema",
    "schema_spec",
    default=DEFAULT_SCHEMA,
    show_default=True,
    help="A model in schemas/ (module or class name) or path/to/file.py:ClassName.",
)
@click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    envvar="ENGINE_CONTEXT",
    help="Validation context passed to the schema (env ENGINE_CONTEXT).",
)
@click.option(
    "--max-records",
    type=int,
    default=DEFAULT_MAX_RECORDS,
    show_default=True,
    help="A micro-batch closes at this many messages...",
)
@click.option(
    "--max-wait-ms",
    type=int,
    default=DEFAULT_MAX_WAIT_MS,
    show_default=True,
    help="...or this many milliseconds after its first message.",
)
@click.option(
    "--stop-when-idle",
    type=float,
    metavar="SECONDS",
    help="Stop cleanly after this long without messages (counted from the first assignment).",
)
@click.option(
    "--dead-letter-topic",
    help="Also forward invalid messages here, with the error in headers, once they are stored.",
)
@KAFKA_CONFIG_OPTION
@handle_errors
def consume(
    bootstrap_servers: str,
    topics: tuple[str, ...],
    group: str,
    db: Path,
    schema_spec: str,
    context_items: tuple[str, ...],
    max_records: int,
    max_wait_ms: int,
    stop_when_idle: float | None,
    dead_letter_topic: str | None,
    kafka_items: tuple[str, ...],
) -> None:
    """Consume JSON messages in micro-batches, validated and stored like a file run.

    Each micro-batch commits to DuckDB in one transaction with the next offset of each of its
    partitions, so a restart after any crash resumes exactly after the last stored message.
    One line per batch. Ctrl-C or SIGTERM writes the in-flight batch and stops; a second one
    exits at once (the unwritten batch is fetched again next time).
    """
    model = load_schema(schema_spec)
    settings = ConsumerSettings(
        KafkaSettings(bootstrap_servers, parse_kafka_config(kafka_items)),
        topics,
        group,
        max_records=max_records,
        max_wait_ms=max_wait_ms,
        stop_when_idle_s=stop_when_idle,
        dead_letter_topic=dead_letter_topic,
        context=parse_context(context_items),
    )

    def report(event: Event) -> None:
        click.echo(str(event), err=isinstance(event, Notice))

    with Store(db) as store, stop_on_signals() as stop:
        mark_interrupted(store)
        result = run_consumer(store, model, settings, on_event=report, stop=stop)
    click.echo(str(result))


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@BOOTSTRAP_OPTION
@click.option("--topic", required=True, help="Topic to send to (it must exist).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "ndjson"]),
    help="Input format; by default from the file extension.",
)
@KAFKA_CONFIG_OPTION
@handle_errors
def produce(
    file: Path,
    bootstrap_servers: str,
    topic: str,
    fmt: str | None,
    kafka_items: tuple[str, ...],
) -> None:
    """Send each row of a CSV or NDJSON FILE to a topic as one JSON message."""
    kafka = KafkaSettings(bootstrap_servers, parse_kafka_config(kafka_items))
    size = file.stat().st_size if file.is_file() else 0
    with click.progressbar(length=size, label=f"sending {file.name}", file=sys.stderr) as bar:
        result = produce_file(
            file, kafka, topic, fmt=fmt, progress=lambda _sent, read: bar.update(read - bar.pos)
        )
    click.echo(str(result))


@main.command()
@DB_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="ENGINE_DATA_DIR",
    help="Directory whose files `file_path` may name (env ENGINE_DATA_DIR); "
    "without it only uploads are accepted.",
)
@click.option(
    "--schema",
    "schema_spec",
    default=DEFAULT_SCHEMA,
    show_default=True,
    help="A model in schemas/ (module or class name) or path/to/file.py:ClassName.",
)
@click.option(
    "--context",
    "context_items",
    multiple=True,
    metavar="KEY=VALUE",
    envvar="ENGINE_CONTEXT",
    help="Validation context passed to the schema (env ENGINE_CONTEXT).",
)
@click.option(
    "--spool-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where uploads and exports are staged while in use (default: beside --db).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=2048,
    show_default=True,
    help="Larger uploads are refused with 413.",
)
@click.option(
    "--busy-timeout",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="How long an ingest waits for another one (or a Kafka batch) before a 409.",
)
@click.option(
    "--consume-topic",
    "consume_topics",
    multiple=True,
    help="Also consume this topic in the background (repeatable); needs "
    "--bootstrap-servers and --group.",
)
@click.option("--bootstrap-servers", metavar="HOST:PORT[,HOST:PORT]", help="Kafka brokers.")
@click.option("--group", help="Consumer group of the background consumer.")
@click.option(
    "--max-records",
    type=int,
    default=DEFAULT_MAX_RECORDS,
    show_default=True,
    help="A micro-batch closes at this many messages...",
)
@click.option(
    "--max-wait-ms",
    type=int,
    default=DEFAULT_MAX_WAIT_MS,
    show_default=True,
    help="...or this many milliseconds after its first message.",
)
@click.option("--dead-letter-topic", help="Also forward invalid messages here.")
@KAFKA_CONFIG_OPTION
@handle_errors
def serve(
    db: Path,
    host: str,
    port: int,
    data_dir: Path | None,
    schema_spec: str,
    context_items: tuple[str, ...],
    spool_dir: Path | None,
    max_upload_mb: float,
    busy_timeout: float,
    consume_topics: tuple[str, ...],
    bootstrap_servers: str | None,
    group: str | None,
    max_records: int,
    max_wait_ms: int,
    dead_letter_topic: str | None,
    kafka_items: tuple[str, ...],
) -> None:
    """Serve the REST API (docs at /docs): ingest, summary, runs, exports, health, metrics.

    The server holds the DuckDB file for writing (one writer process per file): `run`,
    `consume` and the read commands on the same --db stop with "database is locked" while
    it runs (use the API's endpoints meanwhile). With --consume-topic it also runs
    the Kafka consumer in the background on the same connection; stopping the server
    (Ctrl-C, SIGTERM) writes the consumer's in-flight batch first.
    """
    import uvicorn

    from engine.api.app import create_app
    from engine.api.services import Services
    from engine.api.settings import ApiSettings

    consumer = None
    if consume_topics:
        if not bootstrap_servers or not group:
            raise ConfigError("--consume-topic needs --bootstrap-servers and --group")
        consumer = ConsumerSettings(
            KafkaSettings(bootstrap_servers, parse_kafka_config(kafka_items)),
            consume_topics,
            group,
            max_records=max_records,
            max_wait_ms=max_wait_ms,
            dead_letter_topic=dead_letter_topic,
            context=parse_context(context_items),
        )
    elif bootstrap_servers or group or dead_letter_topic or kafka_items:
        raise ConfigError("the Kafka options go with --consume-topic")
    settings = ApiSettings(
        db=db,
        data_dir=data_dir,
        spool_dir=spool_dir,
        schema=schema_spec,
        context=parse_context(context_items),
        max_upload_bytes=int(max_upload_mb * (1 << 20)),
        busy_timeout_s=busy_timeout,
        consumer=consumer,
    )
    Services.check(settings)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["engine"] = {"handlers": ["default"], "level": "INFO"}
    uvicorn.run(create_app(settings), host=host, port=port, log_config=log_config)


if __name__ == "__main__":
    main()
