"""Forwarding invalid messages to a dead-letter topic, after their batch is in DuckDB.

Best effort and at most once: the DuckDB rows are the record of an invalid message; the
dead-letter copy (same key, value and headers, plus ``ingest.*`` headers saying what was wrong
and where the message came from) is for the people who fix the producers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from engine.streaming.messages import header_pairs
from engine.streaming.settings import KafkaSettings


class DeadLetters:
    """One producer for the session; ``send`` queues, ``close`` waits for delivery."""

    def __init__(self, kafka: KafkaSettings, topic: str, *, logger: object = None) -> None:
        """``logger``: librdkafka's log lines (the session's ``BrokerWatch``, which holds
        back the connection failures it reports once)."""
        self.topic = topic
        self.sent = 0
        self.failed = 0
        self.first_failure: str | None = None
        config: dict[str, object] = {"linger.ms": 20, **kafka.producer_config()}
        if logger is not None:
            # The consumer reports the brokers being down; this producer stays quiet on it.
            config.update(logger=logger, error_cb=lambda _error: None)
        self._producer = Producer(config)

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failed += 1
            self.first_failure = self.first_failure or error.str()

    def send(
        self,
        messages: Sequence[Message],
        invalid: Sequence[tuple[int, list[dict[str, Any]]]],
        first_row: int,
        run_id: int,
    ) -> int:
        """Queue one copy per invalid row (``invalid``: row_number and errors, as stored)."""
        for row_number, errors in invalid:
            message = messages[row_number - first_row]
            headers = _headers(message, errors, run_id, row_number)
            while True:
                try:
                    self._producer.produce(
                        self.topic,
                        value=message.value(),
                        key=message.key(),
                        headers=headers,
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
            self.sent += 1
        self._producer.poll(0)
        return len(invalid)

    def close(self, timeout_s: float) -> str | None:
        """Wait for delivery; what went wrong, if anything, for the run's message."""
        left = self._producer.flush(timeout_s)
        if not left and not self.failed:
            return None
        detail = f" ({self.first_failure})" if self.first_failure else ""
        return (
            f"{self.failed + left} of {self.sent} dead letters to {self.topic!r} were not "
            f"delivered{detail}; their rows are in ingestion_errors all the same"
        )


def _headers(
    message: Message, errors: list[dict[str, Any]], run_id: int, row_number: int
) -> list[tuple[str, str | bytes | None]]:
    original = header_pairs(message.headers())
    first = errors[0] if errors else {}
    return [
        *original,
        ("ingest.error.type", str(first.get("type", ""))),
        ("ingest.error.loc", ".".join(first.get("loc") or [])),
        ("ingest.error.msg", str(first.get("msg", ""))),
        ("ingest.errors", json.dumps(errors, ensure_ascii=False)),
        ("ingest.source", f"{message.topic()}/{message.partition()}/{message.offset()}"),
        ("ingest.run_id", str(run_id)),
        ("ingest.row_number", str(row_number)),
    ]
