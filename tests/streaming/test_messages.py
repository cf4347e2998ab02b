"""Messages to RawBatch (no broker): lineage columns, malformed rows, parity with NDJSON files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE, Message

from engine.batch import KAFKA_COLUMNS, LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.cli.words import cli_spelling
from engine.columns import KAFKA_OFFSET
from engine.errors import ConfigError
from engine.pipeline import Tally
from engine.sources.json import JsonSource
from engine.sources.json_values import JsonValues
from engine.streaming.events import (
    Assigned,
    BatchWritten,
    PartitionStart,
    Revoked,
    SessionSummary,
)
from engine.streaming.messages import (
    headers_json,
    messages_batch,
    messages_frame,
    next_offsets,
)
from engine.streaming.settings import ConsumerSettings, KafkaSettings, parse_kafka_config
from engine.validation.compiler import compile_schema
from engine.validation.error_list import ERRORS
from engine.validation.validate import BatchValidator
from schemas.transactions import Transaction
from tests.conftest import DATA

KEYS = ("external_id", "amount")


def message(
    offset: int,
    value: bytes | None,
    *,
    partition: int = 0,
    key: bytes | None = None,
    headers: list[tuple[str, bytes | None]] | None = None,
    timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, 1_700_000_000_000),
) -> Message:
    return Message(
        topic="payments",
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=headers,  # type: ignore[arg-type]
        timestamp=timestamp,
    )


def test_values_and_lineage_of_every_kind_of_message() -> None:
    messages = [
        message(10, b'{"external_id": "a", "amount": 1}', key=b"k1", headers=[("src", b"web")]),
        message(11, b'{"external_id": "\xff"}', key=b"\xfe"),
        message(12, None, headers=[("a", b"1"), ("a", None)]),
        message(13, b""),
        message(14, b"[1, 2]", timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)),
        message(15, b"nope"),
        message(16, b'{"amount": "caf\\u00e9"}', partition=2),
    ]
    values = JsonValues(KEYS, want_all_keys=False)
    batch = messages_batch(messages, values, 41)
    values.close()
    assert batch.typed and batch.keys == KEYS
    frame = batch.frame
    assert frame[ROW].to_list() == [41, 42, 43, 44, 45, 46, 47]
    assert frame[LINE].null_count() == 7
    assert frame[RAW].to_list() == [
        '{"external_id": "a", "amount": 1}',
        '{"external_id": "\\xff"}',
        None,
        "",
        "[1, 2]",
        "nope",
        '{"amount": "caf\\u00e9"}',
    ]
    assert frame.select(MALFORMED, MALFORMED_MSG).rows() == [
        (None, None),
        ("invalid_utf8", "Invalid UTF-8: byte 0xff at position 17 of the message"),
        ("json_invalid", "Invalid JSON: the message has no value"),
        ("json_invalid", "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("model_type", "Input should be a valid dictionary"),
        ("json_invalid", "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        (None, None),
    ]
    assert frame["external_id"][0] == "a" and frame["amount"][6] == "café"
    lineage = frame.select(
        [pl.col(name).alias(name.removeprefix("__kafka_")) for name in KAFKA_COLUMNS]
    )
    assert lineage.schema == pl.Schema(
        {name.removeprefix("__kafka_"): dtype for name, dtype in KAFKA_COLUMNS.items()}
    )
    stamp = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert lineage.rows() == [
        ("payments", 0, 10, "k1", stamp, '[["src", "web"]]'),
        ("payments", 0, 11, "\\xfe", stamp, None),
        ("payments", 0, 12, None, stamp, '[["a", "1"], ["a", null]]'),
        ("payments", 0, 13, None, stamp, None),
        ("payments", 0, 14, None, None, None),
        ("payments", 0, 15, None, stamp, None),
        ("payments", 2, 16, None, stamp, None),
    ]
    assert next_offsets(batch) == {("payments", 0): 16, ("payments", 2): 17}


def test_plain_messages_take_the_short_way_to_the_same_frame() -> None:
    """Without keys, headers, missing timestamps or bad values a batch skips the per-column
    work those need: its frame is the one the general way gives (same values and types)."""
    plain = [message(i, b'{"amount": %d}' % i, partition=i % 3) for i in range(5)]
    odd = message(99, None, key=b"k", headers=[("h", b"v")], timestamp=(TIMESTAMP_NOT_AVAILABLE, 0))
    short = messages_frame(plain)
    general = messages_frame([*plain, odd]).head(len(plain))
    assert short.schema == general.schema
    assert short.rows() == general.rows()
    assert short[KAFKA_OFFSET].to_list() == [0, 1, 2, 3, 4]


def test_headers_keep_order_duplicates_and_undecodable_bytes() -> None:
    assert headers_json([("b", b"2"), ("a", b"\xff"), ("b", None)]) == (
        '[["b", "2"], ["a", "\\\\xff"], ["b", null]]'
    )
    assert headers_json({"x": "y"}) == '[["x", "y"]]'


def test_a_message_gets_the_verdict_of_the_same_ndjson_line(tmp_path: Path) -> None:
    """The JSON part is the file reader's: same bytes, same valid rows, same errors."""
    path = DATA / "transactions_sample.ndjson"
    schema = compile_schema(Transaction, typed=True, context={})
    validator = BatchValidator(schema, schema.input_keys)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    source = JsonSource(
        path,
        keys=schema.input_keys,
        want_all_keys=schema.extra == "forbid",
        array=False,
        block_size=1 << 20,
        max_record_bytes=1 << 20,
    )
    from_file = [validator.validate(b, now) for b in source.batches()]
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    values = JsonValues(schema.input_keys, want_all_keys=schema.extra == "forbid")
    batch = messages_batch([message(i, line) for i, line in enumerate(lines)], values, 1)
    from_kafka = validator.validate(batch, now)
    values.close()
    file_valid = pl.concat([r.valid for r in from_file])
    file_invalid = pl.concat([r.invalid for r in from_file])
    assert file_valid.height + file_invalid.height == len(lines) == 15
    # A missing timestamp takes the model's default_factory (now) in both: compare the rest.
    given = pl.col("external_id") != "TXN-104"
    assert from_kafka.valid.drop(ROW, "timestamp").equals(file_valid.drop(ROW, "timestamp"))
    assert from_kafka.valid.filter(given)["timestamp"].equals(file_valid.filter(given)["timestamp"])
    assert from_kafka.invalid.select(ERRORS).equals(file_invalid.select(ERRORS))
    assert from_kafka.invalid.height == 10


def test_settings_refuse_what_the_protocol_depends_on() -> None:
    kafka = KafkaSettings("127.0.0.1:9092")
    with pytest.raises(ConfigError) as caught:
        KafkaSettings("h:1", {"enable.auto.commit": "true", "group.id": "x"})
    assert str(caught.value) == (
        "extra cannot set enable.auto.commit, group.id: the consumer relies on its own value "
        "(the bootstrap servers and the consumer group are settings of their own)"
    )
    assert caught.value.render(cli_spelling).startswith("--kafka-config cannot set enable.")
    # (change, as the library words it, as the command line does)
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"topics": ()},
            "no topic to consume, or an empty topic name (give at least one with topics)",
            "no topic to consume, or an empty topic name (give at least one with --topic)",
        ),
        (
            {"group": " "},
            "group is empty; name the consumer group",
            "--group is empty; name the consumer group",
        ),
        (
            {"max_records": 0},
            "max_records must be between 1 and 1,000,000, got 0",
            "--max-records must be between 1 and 1,000,000, got 0",
        ),
        (
            {"max_wait_ms": 0},
            "max_wait_ms must be at least 1, got 0",
            "--max-wait-ms must be at least 1, got 0",
        ),
        (
            {"stop_when_idle_s": 0.0},
            "stop_when_idle_s must be positive, got 0.0",
            "--stop-when-idle must be positive, got 0.0",
        ),
        (
            {"give_up_after_s": -1.0},
            "give_up_after_s must be positive, got -1",
            "--give-up-after must be positive, got -1",
        ),
        (
            {"dead_letter_topic": "in"},
            "dead_letter_topic 'in' is also consumed; its messages would come back as input",
            "--dead-letter-topic 'in' is also consumed; its messages would come back as input",
        ),
    ]
    for change, in_python, on_the_command_line in cases:
        options: dict[str, Any] = {"topics": ("in",), "group": "g", **change}
        with pytest.raises(ConfigError) as caught:
            ConsumerSettings(kafka, **options)
        assert str(caught.value) == in_python
        assert caught.value.render(cli_spelling) == on_the_command_line
    with pytest.raises(ConfigError) as caught:
        KafkaSettings(" ")
    assert caught.value.render(cli_spelling) == (
        "--bootstrap-servers is empty; give HOST:PORT[,HOST:PORT...]"
    )
    settings = ConsumerSettings(
        KafkaSettings("h:1", {"security.protocol": "SASL_SSL", "auto.offset.reset": "latest"}),
        ("a", "b"),
        "g",
    )
    assert settings.source_path == "a,b (group g)"
    assert settings.consumer_config() == {
        "auto.offset.reset": "latest",
        "fetch.queue.backoff.ms": 10,
        "security.protocol": "SASL_SSL",
        "bootstrap.servers": "h:1",
        "group.id": "g",
        "group.protocol": "classic",
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
    }
    assert parse_kafka_config(["sasl.username = me", "x=a=b"]) == {
        "sasl.username": "me",
        "x": "a=b",
    }
    with pytest.raises(ConfigError) as caught:
        parse_kafka_config(["oops"])
    assert caught.value.render(cli_spelling) == "--kafka-config expects KEY=VALUE, got 'oops'"


def test_log_lines() -> None:
    assigned = Assigned(
        (
            PartitionStart("t", 0, 120, "duckdb"),
            PartitionStart("t", 2, None, "reset"),
            PartitionStart("t", 1, 80, "duckdb"),
            PartitionStart("u", 0, 7, "group"),
        )
    )
    assert str(assigned) == (
        "assigned: t[0] at 120, t[1] at 80 (stored in DuckDB); u[0] at 7 (committed by the "
        "group); t[2] (auto.offset.reset: nothing stored or committed)"
    )
    assert str(Assigned(())) == "assigned: no new partitions"
    assert str(BatchWritten(3, 10_000, 9_500, 500, 1012.4, 85.2, 120_000)) == (
        "batch 3: 10,000 records, 9,500 valid, 500 invalid, latency 1,012 ms (write 85 ms), "
        "lag 120,000"
    )
    assert str(BatchWritten(4, 2, 0, 2, 5, 4, None, dead_letters=2)) == (
        "batch 4: 2 records, 0 valid, 2 invalid, latency 5 ms (write 4 ms), lag unknown, "
        "2 dead letters"
    )
    assert str(BatchWritten(5, 1, 0, 1, 5, 4, 0, dead_letters=1)) == (
        "batch 5: 1 record, 0 valid, 1 invalid, latency 5 ms (write 4 ms), lag 0, 1 dead letter"
    )
    one = SessionSummary(2, 1, Tally(rows=1, valid=1), 0.25, "SIGINT received", (5.0,))
    assert (
        str(one)
        == "run 2: 1 batch, 1 record, 1 valid, 0 invalid in 0.2 s (stopped: SIGINT received)"
    )
    assert str(Revoked((("t", 0), ("t", 1)), lost=False)) == (
        "revoked: t[0], t[1] (in-flight batch written first)"
    )
    assert str(Revoked((("t", 0),), lost=False, dropped=True)) == (
        "revoked: t[0] (the consumer failed: in-flight messages dropped, not written)"
    )
    assert str(Revoked((("t", 0),), lost=True)) == (
        "lost: t[0] (their in-flight messages were dropped, not written)"
    )
