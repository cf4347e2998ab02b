"""Connecting a consumer: one clear error when the configuration, the brokers or a topic
is wrong, before any group is joined."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, KafkaException

from engine.errors import ConfigError, Remedy, StreamError
from engine.streaming.reachability import BrokerWatch
from engine.streaming.settings import ConsumerSettings


def connect(settings: ConsumerSettings, watch: BrokerWatch) -> Consumer:
    """A consumer for the group, once the brokers answered and every topic exists; its
    connection failures go to ``watch`` (see ``reachability``)."""
    try:
        consumer = Consumer(
            {**settings.consumer_config(), "logger": watch, "error_cb": watch.error}
        )
    except KafkaException as exc:
        raise ConfigError(f"invalid Kafka configuration: {kafka_reason(exc)}") from exc
    try:
        metadata = consumer.list_topics(timeout=settings.broker_timeout_s)
    except KafkaException as exc:
        consumer.close()
        raise StreamError(
            f"cannot reach the brokers at {settings.kafka.bootstrap_servers} ({kafka_reason(exc)})",
            hint=Remedy("check {} and that the cluster is up", "bootstrap_servers"),
        ) from exc
    for topic in settings.topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            consumer.close()
            raise StreamError(
                "no such topic" + (f" ({found.error.str()})" if found is not None else ""),
                topic=topic,
                hint="create it first; the consumer never creates topics",
            )
    return consumer


def kafka_reason(exc: KafkaException) -> str:
    """The broker's own words for a Kafka exception."""
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
