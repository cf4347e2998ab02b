"""Sending a CSV or NDJSON file to a topic, one JSON message per row (demos, tests, benchmarks).

An NDJSON line is sent as it is, bytes untouched (a broken line stays broken, so the consumer
records it as an invalid row). A CSV row becomes a JSON object of its cells, strings as in
the file; an empty cell is left out, as the file reader treats it as absent. A CSV row that
cannot be split into fields is sent as its raw text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from engine.batch import MALFORMED, RAW
from engine.errors import ConfigError, StreamError
from engine.sources import check_readable, detect_format
from engine.sources.blocks import BOM
from engine.sources.csv import CsvSource
from engine.streaming.settings import KafkaSettings
from engine.validation.common import json_text

MiB = 1 << 20

ProduceProgress = Callable[[int, int], None]  # messages sent so far, bytes read so far


@dataclass(frozen=True)
class ProduceSummary:
    topic: str
    messages: int
    seconds: float

    def __str__(self) -> str:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        return (
            f"sent {self.messages:,} messages to {self.topic} in {self.seconds:.1f} s "
            f"({rate:,.0f} messages/s)"
        )


def produce_file(
    path: Path,
    kafka: KafkaSettings,
    topic: str,
    *,
    fmt: str | None = None,
    progress: ProduceProgress | None = None,
    timeout_s: float = 60.0,
) -> ProduceSummary:
    """Send every row of ``path`` to ``topic`` and wait until all are delivered."""
    clock = time.perf_counter()
    check_readable(path)
    fmt = detect_format(path, fmt)
    if fmt not in ("csv", "ndjson"):
        raise ConfigError(f"produce reads CSV or NDJSON files, not {fmt!r}")
    sender = _Sender(kafka, topic, timeout_s)
    chunks = _csv_chunks(path) if fmt == "csv" else _ndjson_chunks(path)
    for values, bytes_read in chunks:
        for value in values:
            sender.send(value)
        sender.producer.poll(0)
        if progress is not None:
            progress(sender.sent, bytes_read)
    sender.finish()
    return ProduceSummary(topic, sender.sent, time.perf_counter() - clock)


class _Sender:
    def __init__(self, kafka: KafkaSettings, topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self.first_failure: str | None = None
        try:
            self.producer = Producer({"linger.ms": 20, **kafka.producer_config()})
            metadata = self.producer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise StreamError(
                f"cannot reach the brokers at {kafka.bootstrap_servers} ({exc})",
                hint="check --bootstrap-servers and that the cluster is up",
            ) from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise StreamError(
                "no such topic", topic=topic, hint="create it first; produce never creates topics"
            )

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failed += 1
            self.first_failure = self.first_failure or error.str()

    def send(self, value: str | bytes) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value=value, on_delivery=self._delivered)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def finish(self) -> None:
        left = self.producer.flush(self.timeout_s)
        if left or self.failed:
            raise StreamError(
                f"{left + self.failed} of {self.sent} messages were not delivered"
                + (f" ({self.first_failure})" if self.first_failure else ""),
                topic=self.topic,
            )


def _ndjson_chunks(path: Path, rows: int = 10_000) -> Iterator[tuple[list[bytes], int]]:
    chunk: list[bytes] = []
    bytes_read = 0
    with path.open("rb") as fh:
        for number, line in enumerate(fh):
            bytes_read += len(line)
            if number == 0 and line.startswith(BOM):
                line = line[len(BOM) :]
            body = line.rstrip(b"\r\n")
            if body.strip():
                chunk.append(body)
            if len(chunk) >= rows:
                yield chunk, bytes_read
                chunk = []
    yield chunk, bytes_read


def _csv_chunks(path: Path) -> Iterator[tuple[list[str], int]]:
    source = CsvSource(path, block_size=4 * MiB, max_record_bytes=16 * MiB)
    for batch in source.batches():
        cells = [
            pl.when(pl.col(key).is_not_null()).then(
                pl.lit(json.dumps(key) + ":") + json_text(pl.col(key))
            )
            for key in batch.keys
        ]
        record = pl.lit("{") + pl.concat_str(cells, separator=",", ignore_nulls=True) + pl.lit("}")
        texts = batch.frame.select(
            pl.when(pl.col(MALFORMED).is_null()).then(record).otherwise(pl.col(RAW))
        ).to_series()
        yield texts.to_list(), source.reader.bytes_read
