"""Kafka: `consume` (micro-batches into DuckDB) and `produce` (a file as messages)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click
from rich.markup import escape

from engine import ui
from engine.cli.options import (
    BOOTSTRAP_OPTION,
    CONTEXT_OPTION,
    DB_OPTION,
    KAFKA_CONFIG_FILE_OPTION,
    KAFKA_CONFIG_OPTION,
    LAKE_OPTION,
    MAX_RECORDS_OPTION,
    MAX_WAIT_OPTION,
    SCHEMA_OPTION,
    bootstrap,
    env,
    handle_errors,
    kafka_properties,
    lake_from,
    load_model,
    parse_context,
)
from engine.cli.words import cli_spelling
from engine.errors import BrokersUnreachableError
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from engine.streaming.consumer import consume as run_consumer
from engine.streaming.events import BrokersBack, BrokersDown, Event, Notice
from engine.streaming.producer import produce_file
from engine.streaming.settings import ConsumerSettings, KafkaSettings
from engine.streaming.shutdown import stop_on_signals


@click.command()
@BOOTSTRAP_OPTION
@click.option(
    "--topic",
    "topics",
    multiple=True,
    required=True,
    help="Topic to consume (repeatable; in the environment, separated by spaces).",
    **env("TOPIC"),
)
@click.option(
    "--group",
    required=True,
    help="Consumer group; each consumer of a group needs its own --db (or they share a --lake).",
    **env("GROUP"),
)
@DB_OPTION
@LAKE_OPTION
@SCHEMA_OPTION
@CONTEXT_OPTION
@MAX_RECORDS_OPTION
@MAX_WAIT_OPTION
@click.option(
    "--stop-when-idle",
    type=float,
    metavar="SECONDS",
    help="Stop cleanly after this long without messages (counted from the first assignment).",
    **env("STOP_WHEN_IDLE"),
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop (exit code 1) once no broker has answered for this long; by default the "
    "consumer waits for them as long as it runs.",
    **env("GIVE_UP_AFTER"),
)
@click.option(
    "--dead-letter-topic",
    help="Also forward invalid messages here, with the error in headers, once they are stored.",
    **env("DEAD_LETTER_TOPIC"),
)
@click.option(
    "--new-table",
    is_flag=True,
    help="Store this model's rows in a new table (for a model its stored table cannot take: "
    "a narrowed type, a new required field, a changed unique key); later sessions and runs "
    "follow it without the option (give it once: each session with it starts another).",
    **env("NEW_TABLE"),
)
@KAFKA_CONFIG_OPTION
@KAFKA_CONFIG_FILE_OPTION
@handle_errors
def consume(
    bootstrap_servers: str | None,
    topics: tuple[str, ...],
    group: str,
    db: Path,
    lake_uri: str | None,
    schema_spec: str,
    context_items: tuple[str, ...],
    max_records: int,
    max_wait_ms: int,
    stop_when_idle: float | None,
    give_up_after: float | None,
    dead_letter_topic: str | None,
    new_table: bool,
    kafka_items: tuple[str, ...],
    kafka_config_file: Path | None,
) -> None:
    """Consume JSON messages in micro-batches, validated and stored like a file run.

    Each micro-batch commits to DuckDB in one transaction with the next offset of each of its
    partitions, so a restart after any crash resumes exactly after the last stored message.
    One line per batch. Ctrl-C or SIGTERM writes the in-flight batch and stops; a second one
    exits at once (the unwritten batch is fetched again next time).
    """
    model = load_model(schema_spec)
    properties = kafka_properties(kafka_config_file, kafka_items)
    settings = ConsumerSettings(
        KafkaSettings(bootstrap(bootstrap_servers, properties), properties),
        topics,
        group,
        max_records=max_records,
        max_wait_ms=max_wait_ms,
        stop_when_idle_s=stop_when_idle,
        give_up_after_s=give_up_after,
        dead_letter_topic=dead_letter_topic,
        context=parse_context(context_items),
    )

    def report(event: Event) -> None:
        click.echo(str(event), err=isinstance(event, Notice | BrokersDown | BrokersBack))

    lake = lake_from(lake_uri)
    with stop_on_signals() as stop:
        # What imports and start-up made outlives the session: out of the garbage
        # collector's sight, each full collection (the GIL held) only looks at what the
        # session makes (their time over 200,000 messages: 0.14-0.24 s -> 0.05-0.09 s).
        gc.freeze()
        try:
            if lake is not None:
                from engine.lake.stream import consume_into_lake  # deltalake: for a lake only

                result = consume_into_lake(
                    lake, model, settings, on_event=report, stop=stop, new_table=new_table
                )
            else:
                with Store(db) as store:
                    mark_interrupted(store)
                    result = run_consumer(
                        store, model, settings, on_event=report, stop=stop, new_table=new_table
                    )
        except BrokersUnreachableError as exc:  # a runtime failure, not bad input: exit 1
            ui.fail(escape(exc.render(cli_spelling)))
            sys.exit(1)
        finally:
            gc.unfreeze()
    click.echo(str(result))


@click.command()
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
@KAFKA_CONFIG_FILE_OPTION
@handle_errors
def produce(
    file: Path,
    bootstrap_servers: str | None,
    topic: str,
    fmt: str | None,
    kafka_items: tuple[str, ...],
    kafka_config_file: Path | None,
) -> None:
    """Send each row of a CSV or NDJSON FILE to a topic as one JSON message."""
    properties = kafka_properties(kafka_config_file, kafka_items)
    kafka = KafkaSettings(bootstrap(bootstrap_servers, properties), properties)
    size = file.stat().st_size if file.is_file() else 0
    with click.progressbar(length=size, label=f"sending {file.name}", file=sys.stderr) as bar:
        result = produce_file(
            file, kafka, topic, fmt=fmt, progress=lambda _sent, read: bar.update(read - bar.pos)
        )
    click.echo(str(result))
