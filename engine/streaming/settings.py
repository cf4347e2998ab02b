"""What a consumer or producer needs to know, as frozen objects built at the edge (the CLI).

The librdkafka properties that the exactly-once protocol depends on are fixed here and cannot
be overridden by ``--kafka-config``; anything else (SASL, SSL, timeouts, client.id) passes
through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError, Remedy

DEFAULT_MAX_RECORDS = 10_000
DEFAULT_MAX_WAIT_MS = 1_000
MAX_RECORDS_LIMIT = 1_000_000  # librdkafka's cap on one consume() call

# Offsets live in DuckDB and are committed to Kafka by hand after each DuckDB commit;
# rebalances are incremental so that a consumer keeps the partitions it is not asked for.
CONSUMER_FIXED: dict[str, Any] = {
    "group.protocol": "classic",
    "partition.assignment.strategy": "cooperative-sticky",
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": False,
}
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto.offset.reset": "earliest",
    # librdkafka pauses fetching for this long once its local queue is full (default 1 s):
    # with micro-batches drained in bursts, that pause would dominate the throughput.
    "fetch.queue.backoff.ms": 10,
}
PROTECTED = {"bootstrap.servers", "group.id", *CONSUMER_FIXED}
# Consumer-only properties, left out of the producers' configuration (librdkafka warns).
CONSUMER_ONLY = (
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "auto.commit.interval.ms",
    "isolation.level",
    "check.crcs",
    "group.",
    "fetch.",
    "queued.",
    "max.partition.fetch.bytes",
    "coordinator.query.interval.ms",
)


def parse_kafka_config(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs (librdkafka property names) as a dict."""
    config: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{{}} expects KEY=VALUE, got {item!r}", setting="extra")
        config[key.strip()] = value.strip()
    return config


@dataclass(frozen=True)
class KafkaSettings:
    """Where the cluster is, plus extra librdkafka properties (e.g. security.protocol)."""

    bootstrap_servers: str
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ConfigError(
                "{} is empty; give HOST:PORT[,HOST:PORT...]", setting="bootstrap_servers"
            )
        fixed = sorted(key for key in self.extra if key in PROTECTED)
        if fixed:
            raise ConfigError(
                f"{{}} cannot set {', '.join(fixed)}: the consumer relies on its own value",
                setting="extra",
                hint="the bootstrap servers and the consumer group are settings of their own",
            )

    def client_config(self) -> dict[str, Any]:
        return {**self.extra, "bootstrap.servers": self.bootstrap_servers}

    def producer_config(self) -> dict[str, Any]:
        """The client configuration without consumer-only properties."""
        config = self.client_config()
        return {k: v for k, v in config.items() if not k.startswith(CONSUMER_ONLY)}


@dataclass(frozen=True)
class ConsumerSettings:
    """One consumer session: topics, group, micro-batch limits and when to stop."""

    kafka: KafkaSettings
    topics: tuple[str, ...]
    group: str
    max_records: int = DEFAULT_MAX_RECORDS
    max_wait_ms: int = DEFAULT_MAX_WAIT_MS
    stop_when_idle_s: float | None = None
    # Stop with BrokersUnreachableError once no broker has answered for this long.
    give_up_after_s: float | None = None
    dead_letter_topic: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    # How long one fetch may block: bounds how late a signal or a batch deadline is noticed.
    poll_interval_s: float = 0.2
    # How long to wait for the brokers when starting, and for a synchronous commit.
    broker_timeout_s: float = 10.0
    # DuckDB threads while the session writes (database-wide, restored at the end): one is
    # enough for a micro-batch append and leaves the other core to parsing. None leaves the
    # setting alone (e.g. a server whose requests share the connection).
    store_threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.topics or any(not topic.strip() for topic in self.topics):
            raise ConfigError(
                "no topic to consume, or an empty topic name",
                hint=Remedy("give at least one with {}", "topics"),
            )
        if not self.group.strip():
            raise ConfigError("{} is empty; name the consumer group", setting="group")
        if not 1 <= self.max_records <= MAX_RECORDS_LIMIT:
            raise ConfigError(
                f"{{}} must be between 1 and {MAX_RECORDS_LIMIT:,}, got {self.max_records}",
                setting="max_records",
            )
        if self.max_wait_ms < 1:
            raise ConfigError(
                f"{{}} must be at least 1, got {self.max_wait_ms}", setting="max_wait_ms"
            )
        if self.stop_when_idle_s is not None and self.stop_when_idle_s <= 0:
            raise ConfigError(
                f"{{}} must be positive, got {self.stop_when_idle_s}", setting="stop_when_idle_s"
            )
        if self.give_up_after_s is not None and self.give_up_after_s <= 0:
            raise ConfigError(
                f"{{}} must be positive, got {self.give_up_after_s:g}", setting="give_up_after_s"
            )
        if self.dead_letter_topic is not None and self.dead_letter_topic in self.topics:
            raise ConfigError(
                f"{{}} {self.dead_letter_topic!r} is also consumed; "
                "its messages would come back as input",
                setting="dead_letter_topic",
            )

    @property
    def source_path(self) -> str:
        """How the session is named in ``ingestion_runs.source_path``."""
        return f"{','.join(self.topics)} (group {self.group})"

    def consumer_config(self) -> dict[str, Any]:
        return {
            **CONSUMER_DEFAULTS,
            **self.kafka.client_config(),
            "group.id": self.group,
            **CONSUMER_FIXED,
        }
