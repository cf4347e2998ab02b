"""`serve`: the REST API (and optionally the Kafka consumer) in one process."""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import click

from engine.cli.options import (
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
    parse_context,
)
from engine.errors import ConfigError
from engine.streaming.settings import ConsumerSettings, KafkaSettings


@click.command()
@DB_OPTION
@LAKE_OPTION
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on.", **env("HOST")
)
@click.option(
    "--port", type=int, default=8000, show_default=True, help="Port to listen on.", **env("PORT")
)
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory whose files `file_path` may name; without it only uploads are accepted.",
    **env("DATA_DIR", "ENGINE_DATA_DIR"),
)
@SCHEMA_OPTION
@CONTEXT_OPTION
@click.option(
    "--spool-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where uploads and exports are staged while in use (default: beside --db).",
    **env("SPOOL_DIR"),
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=2048,
    show_default=True,
    help="Larger uploads are refused with 413.",
    **env("MAX_UPLOAD_MB"),
)
@click.option(
    "--busy-timeout",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    metavar="SECONDS",
    help="How long an ingest waits for another one (or a Kafka batch) before a 409.",
    **env("BUSY_TIMEOUT"),
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10,
    show_default=True,
    metavar="SECONDS",
    help="A connection whose request headers are not complete this long after it opened "
    "(or after its first byte, on a kept-alive connection) is closed.",
    **env("HEADER_TIMEOUT"),
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="A request body that pauses longer than this is dropped and its connection closed.",
    **env("BODY_TIMEOUT"),
)
@click.option(
    "--body-min-rate",
    type=click.FloatRange(min=0),
    default=500,
    show_default=True,
    metavar="BYTES_PER_S",
    help="A request body arriving slower than this, over any --body-timeout of it, is "
    "dropped and its connection closed (slow uploads holding connections); 0: no minimum.",
    **env("BODY_MIN_RATE"),
)
@click.option(
    "--send-timeout",
    type=click.FloatRange(min=0),
    default=60,
    show_default=True,
    metavar="SECONDS",
    help="A response the client stops reading (the server can write none of it for this "
    "long) is dropped and its connection closed, with any export staged for it; 0: no limit.",
    **env("SEND_TIMEOUT"),
)
@click.option(
    "--keep-alive",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    metavar="SECONDS",
    help="An idle kept-alive connection is closed after this long.",
    **env("KEEP_ALIVE"),
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Past this many open connections (or requests in progress), requests get a 503.",
    **env("MAX_CONNECTIONS"),
)
@click.option(
    "--max-connections-per-client",
    type=click.IntRange(min=0),
    default=64,
    show_default=True,
    metavar="N",
    help="A client address (the TCP peer's IP) with this many connections open gets a 503 "
    "on its next one, which is closed at once: one client cannot fill --max-connections. "
    "Behind a reverse proxy or a NAT all clients share its address: set 0 (no cap) or "
    "high there.",
    **env("MAX_CONNECTIONS_PER_CLIENT"),
)
@click.option(
    "--consume-topic",
    "consume_topics",
    multiple=True,
    help="Also consume this topic in the background (repeatable); needs "
    "--bootstrap-servers and --group.",
    **env("CONSUME_TOPIC"),
)
@click.option(
    "--bootstrap-servers",
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka brokers (or bootstrap.servers in --kafka-config-file).",
    **env("BOOTSTRAP_SERVERS"),
)
@click.option("--group", help="Consumer group of the background consumer.", **env("GROUP"))
@MAX_RECORDS_OPTION
@MAX_WAIT_OPTION
@click.option(
    "--dead-letter-topic", help="Also forward invalid messages here.", **env("DEAD_LETTER_TOPIC")
)
@KAFKA_CONFIG_OPTION
@KAFKA_CONFIG_FILE_OPTION
@handle_errors
def serve(
    db: Path,
    lake_uri: str | None,
    host: str,
    port: int,
    data_dir: Path | None,
    schema_spec: str,
    context_items: tuple[str, ...],
    spool_dir: Path | None,
    max_upload_mb: float,
    busy_timeout: float,
    header_timeout: float,
    body_timeout: float,
    body_min_rate: float,
    send_timeout: float,
    keep_alive: int,
    max_connections: int,
    max_connections_per_client: int,
    consume_topics: tuple[str, ...],
    bootstrap_servers: str | None,
    group: str | None,
    max_records: int,
    max_wait_ms: int,
    dead_letter_topic: str | None,
    kafka_items: tuple[str, ...],
    kafka_config_file: Path | None,
) -> None:
    """Serve the REST API (docs at /docs): ingest, summary, runs, exports, health, metrics.

    The server holds the DuckDB file for writing (one writer process per file): `run`,
    `consume` and the read commands on the same --db stop with "database is locked" while
    it runs (use the API's endpoints meanwhile). With --consume-topic it also runs
    the Kafka consumer in the background on the same connection; stopping the server
    (Ctrl-C, SIGTERM) writes the consumer's in-flight batch first. With --lake it serves
    a lake's Delta tables instead, beside any number of other writers.
    """
    import uvicorn

    from engine.api.app import create_app
    from engine.api.protocol import guarded_protocol
    from engine.api.services import Services
    from engine.api.settings import ApiSettings

    consumer = None
    if consume_topics:
        if not group or not (bootstrap_servers or kafka_config_file):
            raise ConfigError("--consume-topic needs --bootstrap-servers and --group")
        if any(not topic.strip() for topic in consume_topics):
            raise ConfigError("--consume-topic is empty; name the topic to consume")
        properties = kafka_properties(kafka_config_file, kafka_items)
        servers = bootstrap(bootstrap_servers, properties)
        consumer = ConsumerSettings(
            KafkaSettings(servers, properties),
            consume_topics,
            group,
            max_records=max_records,
            max_wait_ms=max_wait_ms,
            dead_letter_topic=dead_letter_topic,
            context=parse_context(context_items),
        )
    elif bootstrap_servers or group or dead_letter_topic or kafka_items or kafka_config_file:
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
        lake=lake_from(lake_uri),
    )
    _check_listen(host, port)
    Services.check(settings)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["engine"] = {"handlers": ["default"], "level": "INFO"}
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=log_config,
        http=guarded_protocol(
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            body_min_rate=body_min_rate,
            max_per_client=max_connections_per_client,
            send_timeout_s=send_timeout,
        ),
        timeout_keep_alive=keep_alive,
        limit_concurrency=max_connections,
    )


def _check_listen(host: str, port: int) -> None:
    """Refuse, in one line, an address the server cannot listen on (a port in use, a host
    that is not this machine's): uvicorn printed its start-up log, an error line and its
    shutdown log, and exited with code 3. Bound as uvicorn binds it (SO_REUSEADDR), then
    released for uvicorn to bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as exc:  # socket.gaierror included: a host name that does not resolve
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            hint="stop what listens there, or choose another --host or --port",
        ) from exc
