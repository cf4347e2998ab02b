"""Connecting a consumer: one clear error when the configuration, the brokers or a topic
is wrong, before any group is joined."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException

from engine.errors import BrokersUnreachableError, ConfigError, Remedy, StreamError
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
    # With --give-up-after, brokers not up yet are waited for that long (a consumer started
    # before its cluster); without it, one broker timeout (a mistyped address says so soon).
    waited = time.monotonic()
    give_up = watch.give_up_after_s
    while True:
        left = settings.broker_timeout_s
        if give_up is not None:
            left = min(left, max(0.5, waited + give_up - time.monotonic()))
        try:
            metadata = consumer.list_topics(timeout=left)
            break
        except KafkaException as exc:
            if give_up is not None and time.monotonic() - waited < give_up:
                continue
            consumer.close()
            servers = settings.kafka.bootstrap_servers
            if give_up is not None:
                raise BrokersUnreachableError(servers, give_up, kafka_reason(exc)) from exc
            raise StreamError(
                f"cannot reach the brokers at {servers} ({kafka_reason(exc)})",
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
