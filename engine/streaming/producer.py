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
from engine.errors import ConfigError, SourceError, StreamError
from engine.sources import SNIFF_BYTES, detect_format
from engine.sources.blocks import BOM
from engine.sources.csv import CsvSource
from engine.sources.inputs import HashingReader, Input, open_input
from engine.sources.records import Cutter, RecordTooLarge, iter_records, line_boundaries
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
    with open_input(path) as source:
        fmt = detect_format(path, fmt, source.head(SNIFF_BYTES))
        if fmt not in ("csv", "ndjson"):
            raise ConfigError(f"produce reads CSV or NDJSON files, not {fmt!r}")
        sender = _Sender(kafka, topic, timeout_s)
        chunks = _csv_chunks(source) if fmt == "csv" else _ndjson_chunks(source)
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


def _ndjson_chunks(source: Input) -> Iterator[tuple[list[bytes], int]]:
    """Each non-blank line's bytes, without its terminator (lines end as the file reader
    ends them: at \\n, \\r\\n or a lone \\r)."""
    reader = HashingReader(source, 4 * MiB)

    def blocks() -> Iterator[bytes]:
        for number, block in enumerate(reader.blocks()):
            yield block[len(BOM) :] if number == 0 and block.startswith(BOM) else block

    try:
        for records in iter_records(Cutter(line_boundaries, 16 * MiB), blocks()):
            starts = records.starts.tolist()
            ends = [*starts[1:], records.stop]
            lines = (records.data[a:b].rstrip(b"\r\n") for a, b in zip(starts, ends, strict=True))
            yield [line for line in lines if line.strip()], reader.bytes_read
    except RecordTooLarge as exc:
        raise SourceError(
            source.name, f"a line is longer than {exc.limit} bytes", line=exc.line
        ) from exc


def _csv_chunks(source: Input) -> Iterator[tuple[list[str], int]]:
    rows = CsvSource(source, block_size=4 * MiB, max_record_bytes=16 * MiB)
    for batch in rows.batches():
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
        yield texts.to_list(), rows.reader.bytes_read
