"""Consumer sessions in-process against the real broker: rows, lineage, offsets, runs, errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from confluent_kafka import Message
from pydantic import ValidationError

from engine import pipeline
from engine.cli.words import cli_spelling
from engine.errors import BrokersUnreachableError, ConfigError, StreamError
from engine.pipeline import Tally, Validated
from engine.store.store import Store
from engine.streaming import consumer as consumer_module
from engine.streaming import workers
from engine.streaming.consumer import ConsumerSession, consume
from engine.streaming.events import Assigned, BatchWritten, Event, PartitionStart
from engine.streaming.local_broker import free_port
from engine.streaming.settings import ConsumerSettings, KafkaSettings
from schemas.transactions import Transaction
from tests.conftest import DATA, query
from tests.streaming.conftest import Kafka, Record

# A restarted consumer may wait this long for its next fetch on a loaded machine (CI).
IDLE_UNDER_LOAD = 3.0
MODEL_TYPE = "Input should be a valid dictionary or instance of Transaction"


def transaction(i: int, **change: object) -> bytes:
    record: dict[str, object] = {
        "external_id": f"T-{i}",
        "amount": 10.5 + i,
        "currency": "EUR",
        "source_channel": "web",
        "timestamp": "2024-05-01T10:00:00",
    }
    record.update(change)
    return json.dumps(record).encode()


def pydantic_accepts(value: bytes | None) -> bool:
    """The reference verdict: ``Transaction.model_validate(json.loads(value))``."""
    try:
        Transaction.model_validate(json.loads((value or b"").decode("utf-8")))
    except (ValueError, ValidationError):
        return False
    return True


def stored_coordinates(db: Path) -> list[tuple[int, int]]:
    rows = query(db, "SELECT kafka_partition, kafka_offset FROM kafka_lineage ORDER BY 1, 2")
    return [(int(p), int(o)) for p, o in rows]  # type: ignore[call-overload]


def test_every_message_lands_once_with_its_lineage(kafka: Kafka, db: Path) -> None:
    topic, group = kafka.topic(), kafka.group()
    stamp = 1_714_557_600_000  # 2024-05-01T10:00:00Z
    records = [Record(transaction(i), key=f"k-{i}".encode()) for i in range(300)]
    specials = [
        Record(transaction(1000, amount=-5)),
        Record(transaction(1001, currency="JPY"), headers=[("source", b"web"), ("source", b"app")]),
        Record(transaction(1002, amount="abc")),
        Record(b'{"external_id": "T-1003", "amount": 3}'),  # missing source_channel
        Record(b"not json", key=b"bad-1", timestamp=stamp),
        Record(b'{"external_id": "T-1005", '),
        Record(b'{"external_id": "\xff\xfe", "amount": 1}'),
        Record(b""),
        Record(None, key=b"tombstone"),
        Record(b"[1, 2]"),
        Record(b"42"),
        Record(transaction(1011, external_id="x" * 400_000)),  # huge and valid
        Record(transaction(1012, amount=0, source_channel="y" * 300_000)),  # huge and invalid
    ]
    sent = kafka.send(topic, records + specials)
    n = len(sent.records)
    events: list[Event] = []
    with Store(db) as store:
        summary = consume(
            store,
            Transaction,
            kafka.settings(topic, group, max_records=50, stop_when_idle_s=2.0),
            on_event=events.append,
        )
    expected_valid = sum(pydantic_accepts(r.value) for r in sent.records)
    assert (summary.tally.rows, summary.tally.valid, summary.tally.invalid) == (
        n,
        expected_valid,
        n - expected_valid,
    )
    assert expected_valid == 301
    assert summary.reason == "no messages for 2 s"
    # One duration: the session's line shows what is stored.
    assert query(
        db,
        "SELECT duration_s, epoch(finished_at - started_at) FROM ingestion_runs "
        f"WHERE run_id = {summary.run_id}",
    ) == [(summary.duration_s, summary.duration_s)]
    # Exactly the produced (partition, offset) pairs, each once, in processed_data xor errors.
    assert stored_coordinates(db) == sorted(sent.coordinates)
    assert query(
        db,
        "SELECT (SELECT count(*) FROM raw_data), (SELECT count(*) FROM processed_data), "
        "(SELECT count(*) FROM ingestion_errors), (SELECT count(DISTINCT row_number) FROM raw_data), "
        "(SELECT count(*) FROM processed_data JOIN ingestion_errors USING (run_id, row_number))",
    ) == [(n, expected_valid, n - expected_valid, n, 0)]
    # Valid rows are exactly the messages Pydantic accepts.
    valid = query(
        db,
        "SELECT k.kafka_partition, k.kafka_offset FROM processed_data JOIN kafka_lineage k "
        "USING (run_id, row_number) ORDER BY 1, 2",
    )
    by_coordinate = sent.by_coordinate()
    assert [(int(p), int(o)) for p, o in valid] == sorted(  # type: ignore[call-overload]
        c for c, r in by_coordinate.items() if pydantic_accepts(r.value)
    )
    # Lineage: key, headers, timestamp and raw text exactly as sent.
    lineage = query(
        db,
        "SELECT kafka_topic, kafka_partition, kafka_offset, kafka_key, kafka_headers, "
        "kafka_timestamp, raw FROM raw_data JOIN kafka_lineage USING (run_id, row_number) ORDER BY kafka_partition, kafka_offset",
    )
    for topic_name, partition, offset, key, headers, timestamp, raw in lineage:
        record = by_coordinate[(partition, offset)]  # type: ignore[index]
        assert topic_name == topic
        assert key == (None if record.key is None else record.key.decode())
        expected_headers = (
            None
            if not record.headers
            else json.dumps([[k, v.decode()] for k, v in record.headers], ensure_ascii=False)
        )
        assert headers == expected_headers
        if record.timestamp is not None:
            assert timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
        assert isinstance(timestamp, datetime)
        assert raw == (
            None
            if record.value is None
            else record.value.decode("utf-8", errors="backslashreplace")
        )
    # Row-level errors of the broken messages.
    errors = query(
        db,
        "SELECT r.raw, d.type, d.msg FROM error_details d JOIN raw_data r USING (run_id, row_number) "
        "JOIN kafka_lineage k USING (run_id, row_number) "
        "WHERE d.loc = '' ORDER BY k.kafka_partition, k.kafka_offset",
    )
    assert sorted(errors, key=str) == sorted(
        [
            ("not json", "json_invalid", "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
            (
                '{"external_id": "T-1005", ',
                "json_invalid",
                "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 27 (char 26)",
            ),
            (
                '{"external_id": "\\xff\\xfe", "amount": 1}',
                "invalid_utf8",
                "Invalid UTF-8: byte 0xff at position 17 of the message",
            ),
            ("", "json_invalid", "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
            (None, "json_invalid", "Invalid JSON: the message has no value"),
            ("[1, 2]", "model_type", MODEL_TYPE),
            ("42", "model_type", MODEL_TYPE),
        ],
        key=str,
    )
    # Offsets: the next offset of every partition, stored with the rows; also committed to Kafka.
    per_partition = {p: sum(1 for q, _ in sent.coordinates if q == p) for p in range(3)}
    assert query(db, 'SELECT "partition", next_offset FROM kafka_offsets ORDER BY 1') == sorted(
        per_partition.items()
    )
    assert kafka.committed(topic, group) == per_partition
    # The session is one run, with the figures of its rows.
    assert query(
        db,
        "SELECT source_kind, source_path, format, schema_name, target_table, status, rows_total, "
        "rows_valid, rows_invalid, message FROM ingestion_runs",
    ) == [
        (
            "kafka",
            f"{topic} (group {group})",
            "json",
            "Transaction",
            "processed_data",
            "completed",
            n,
            expected_valid,
            n - expected_valid,
            "stopped: no messages for 2 s",
        )
    ]
    batches = [e for e in events if isinstance(e, BatchWritten)]
    assert sum(b.records for b in batches) == n and all(b.records <= 50 for b in batches)
    assert [b.number for b in batches] == list(range(1, len(batches) + 1))
    assert batches[-1].lag == 0
    first = next(e for e in events if isinstance(e, Assigned))
    assert sorted(first.partitions, key=lambda s: s.partition) == [
        PartitionStart(topic, p, None, "reset") for p in range(3)
    ]


class SimulatedCrash(BaseException):
    """Stands for a kill between the DuckDB commit and the Kafka commit."""


def test_crash_after_the_duckdb_commit_stores_nothing_twice(
    kafka: Kafka, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = kafka.topic(), kafka.group()
    sent = kafka.send(topic, [Record(transaction(i)) for i in range(600)])

    def crash(*args: object, synchronous: bool) -> None:
        raise SimulatedCrash("killed before committing to Kafka")

    with monkeypatch.context() as patch:
        patch.setattr(consumer_module, "commit_offsets", crash)
        with Store(db) as store, pytest.raises(SimulatedCrash):
            # Batches are flushed full, never by the clock, whatever the machine's load.
            settings = kafka.settings(topic, group, max_records=100, max_wait_ms=600_000)
            consume(store, Transaction, settings)
    kept = int(query(db, "SELECT count(*) FROM raw_data")[0][0])  # type: ignore[call-overload]
    assert kept >= 100 and kept % 100 == 0
    assert kafka.committed(topic, group) == {0: -1001, 1: -1001, 2: -1001}
    events: list[Event] = []
    with Store(db) as store:
        consume(
            store,
            Transaction,
            kafka.settings(topic, group, max_records=100, stop_when_idle_s=IDLE_UNDER_LOAD),
            on_event=events.append,
        )
    assert stored_coordinates(db) == sorted(sent.coordinates)
    assert query(db, 'SELECT "partition", next_offset FROM kafka_offsets ORDER BY 1') == [
        (0, 200),
        (1, 200),
        (2, 200),
    ]
    starts = [s for e in events if isinstance(e, Assigned) for s in e.partitions]
    assert sum(s.offset or 0 for s in starts if s.start_from == "duckdb") == kept
    assert query(
        db, "SELECT run_id, status, rows_total, message FROM ingestion_runs ORDER BY run_id"
    ) == [
        (
            1,
            "failed",
            kept,
            "SimulatedCrash: killed before committing to Kafka; its committed micro-batches are kept",
        ),
        (2, "completed", 600 - kept, f"stopped: no messages for {IDLE_UNDER_LOAD:g} s"),
    ]
    assert kafka.committed(topic, group) == {0: 200, 1: 200, 2: 200}


def test_dead_letters_carry_the_message_and_its_errors(kafka: Kafka, db: Path) -> None:
    topic, dead, group = kafka.topic(), kafka.topic(partitions=1), kafka.group()
    records = [
        Record(transaction(1)),
        Record(transaction(2, amount=-1), key=b"k2", headers=[("trace", b"abc")]),
        Record(b"oops"),
        Record(transaction(4)),
    ]
    sent = kafka.send(topic, records)
    settings = "SELECT current_setting('threads'), current_setting('checkpoint_threshold')"
    with Store(db) as store:
        before = store.rows(settings)
        summary = consume(
            store,
            Transaction,
            kafka.settings(topic, group, stop_when_idle_s=2.0, dead_letter_topic=dead),
        )
        assert store.rows(settings) == before  # the session's DuckDB settings are put back
    assert (summary.tally.valid, summary.tally.invalid) == (2, 2)
    letters = sorted(kafka.read(dead, 2, partitions=1), key=lambda m: m.value() or b"")
    assert [m.value() for m in letters] == [b"oops", transaction(2, amount=-1)]
    negative = dict(letters[1].headers() or [])
    coordinate = sent.coordinates[1]
    assert letters[1].key() == b"k2"
    assert negative["trace"] == b"abc"
    assert negative["ingest.error.type"] == b"greater_than"
    assert negative["ingest.error.loc"] == b"amount"
    assert negative["ingest.error.msg"] == b"Input should be greater than 0"
    assert negative["ingest.source"] == f"{topic}/{coordinate[0]}/{coordinate[1]}".encode()
    assert negative["ingest.run_id"] == b"1"
    assert json.loads(negative["ingest.errors"] or b"") == [
        {
            "type": "greater_than",
            "loc": ["amount"],
            "msg": "Input should be greater than 0",
            "input": "-1",
        }
    ]
    assert dict(letters[0].headers() or [])["ingest.error.type"] == b"json_invalid"


def test_start_errors_are_one_line(kafka: Kafka, db: Path) -> None:
    with Store(db) as store:
        with pytest.raises(StreamError) as caught:
            consume(store, Transaction, kafka.settings("no-such-topic", kafka.group()))
        assert str(caught.value) == (
            "kafka topic 'no-such-topic': no such topic (create it first; the consumer never "
            "creates topics)"
        )
        port = free_port()
        settings = ConsumerSettings(
            KafkaSettings(f"127.0.0.1:{port}"), ("t",), "g", broker_timeout_s=1.0
        )
        with pytest.raises(StreamError) as caught:
            consume(store, Transaction, settings)
        assert str(caught.value).startswith(
            f"kafka: cannot reach the brokers at 127.0.0.1:{port} ("
        )
        assert str(caught.value).endswith("(check bootstrap_servers and that the cluster is up)")
        assert caught.value.render(cli_spelling).endswith(
            "(check --bootstrap-servers and that the cluster is up)"
        )
        with pytest.raises(ConfigError) as bad:
            consume(
                store,
                Transaction,
                kafka.settings("t", "g", kafka_config={"no.such.property": "1"}),
            )
        assert str(bad.value) == (
            'invalid Kafka configuration: No such configuration property: "no.such.property"'
        )
    assert query(db, "SELECT count(*) FROM ingestion_runs") == [(0,)]


def test_produce_and_consume_commands_match_a_file_run(
    kafka: Kafka, tmp_path: Path, run_cli: Callable[..., Result]
) -> None:
    """`produce` then `consume` keeps what `run` keeps for the same NDJSON and CSV rows."""
    topic, group = kafka.topic(), kafka.group()
    streamed, filed = tmp_path / "streamed.duckdb", tmp_path / "filed.duckdb"
    for sample in ("transactions_sample.ndjson", "transactions_sample.csv"):
        result = run_cli(
            "produce",
            str(DATA / sample),
            "--bootstrap-servers",
            kafka.bootstrap_servers,
            "--topic",
            topic,
        )
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[-1].startswith(
            f"sent {15 if sample.endswith('ndjson') else 21} messages to {topic} in "
        )
        assert run_cli("run", str(DATA / sample), "--db", str(filed), "--quiet").exit_code == 0
    texts = {(m.value() or b"").decode("utf-8", "replace") for m in kafka.read(topic, 36)}
    assert (
        '{"external_id":"TXN-1","amount":"120.50","currency":"USD","source_channel":"CHANNEL1",'
        '"timestamp":"2024-03-01T09:15:00"}'
    ) in texts
    assert (
        '{"external_id":"TXN-4","amount":"2500","currency":"AUD","source_channel":"CHANNEL4"}'
        in texts
    )
    assert "TXN-16,77.10,USD,CHANNEL1,2024-03-01T09:26:00,extra" in texts
    result = run_cli(
        "consume",
        "--bootstrap-servers",
        kafka.bootstrap_servers,
        "--topic",
        topic,
        "--group",
        group,
        "--db",
        str(streamed),
        "--stop-when-idle",
        "1",
        "--kafka-config",
        "session.timeout.ms=2000",
        "--kafka-config",
        "heartbeat.interval.ms=300",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"assigned: {topic}[")
    assert lines[1].startswith("batch 1: 36 records, ")
    assert lines[-1].startswith("run 1: 1 batch, 36 records, ")
    assert lines[-1].endswith(" (stopped: no messages for 1 s)")
    same = "SELECT external_id, amount, currency, source_channel FROM processed_data ORDER BY ALL"
    assert query(streamed, same) == query(filed, same)
    errors = (
        "SELECT raw, errors[1].type, errors::VARCHAR FROM ingestion_errors "
        "WHERE run_id = {} ORDER BY ALL"
    )

    def rows(db: Path, run_id: int) -> list[tuple[str, str, str]]:
        return [(str(r), str(k), str(e)) for r, k, e in query(db, errors.format(run_id))]

    got = rows(streamed, 1)
    filed_json, filed_csv = rows(filed, 1), rows(filed, 2)
    assert len(got) == len(filed_json) + len(filed_csv)
    # An NDJSON line is sent as it is: the same raw text, the same errors.
    json_raws = {raw for raw, _, _ in filed_json}
    assert [row for row in got if row[0] in json_raws] == filed_json
    from_csv = [row for row in got if row[0] not in json_raws]
    # A CSV row that could not be split is sent as its raw text, which is not JSON ...
    unsplit = {"csv_unterminated_quote", "csv_too_few_fields", "csv_too_many_fields"}
    unsplit.add("invalid_utf8")
    assert sorted((raw, kind) for raw, kind, _ in from_csv if kind == "json_invalid") == sorted(
        (raw, "json_invalid") for raw, kind, _ in filed_csv if kind in unsplit
    )
    # ... the others as a JSON object of their cells (strings): the same errors.
    assert sorted(e for _, kind, e in from_csv if kind != "json_invalid") == sorted(
        e for _, kind, e in filed_csv if kind not in unsplit
    )
    assert query(streamed, "SELECT count(*) FROM raw_data") == [(36,)]


def test_a_failed_write_fails_the_session_and_keeps_what_committed(
    kafka: Kafka, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = kafka.topic(), kafka.group()
    sent = kafka.send(topic, [Record(transaction(i)) for i in range(500)])
    real = pipeline.store_batch

    def failing(store: Store, run_id: int, validated: Validated, *args: Any) -> Tally:
        # The third batch (rows 201-300) cannot be written, whatever it is stored with.
        if validated.lineage.get_column("row_number").is_between(201, 300).any():
            raise OSError("disk on fire")
        return real(store, run_id, validated, *args)

    with monkeypatch.context() as patch:
        patch.setattr(workers, "store_batch", failing)
        with Store(db) as store, pytest.raises(OSError, match="disk on fire"):
            settings = kafka.settings(topic, group, max_records=100, max_wait_ms=600_000)
            consume(store, Transaction, settings)
    # Batches 1 and 2 committed, unless they were ready when batch 3 was: the writer then
    # puts them in one transaction with it (group commit), which the failure rolls back
    # whole (seen in CI, on a loaded machine). Either way, what is kept is whole batches,
    # and the offsets and the figures say the same.
    [(kept,)] = query(db, "SELECT count(*) FROM raw_data")
    assert kept in (0, 100, 200)
    assert query(db, "SELECT coalesce(sum(next_offset), 0) FROM kafka_offsets") == [(kept,)]
    assert query(db, "SELECT status, rows_total, message FROM ingestion_runs") == [
        ("failed", kept, "OSError: disk on fire; its committed micro-batches are kept")
    ]
    with Store(db) as store:
        consume(store, Transaction, kafka.settings(topic, group, stop_when_idle_s=IDLE_UNDER_LOAD))
    assert stored_coordinates(db) == sorted(sent.coordinates)


def test_after_a_rebalance_only_owned_partitions_past_their_start_are_kept(db: Path) -> None:
    """Messages fetched before a rebalance may be handed over after it: filter them."""
    with Store(db) as store:
        session = ConsumerSession(
            store, Transaction, ConsumerSettings(KafkaSettings("127.0.0.1:1"), ("t",), "g")
        )
        session.partitions.assign(("t", 0), 5)
        session.partitions.assign(("t", 2), None)
        fetched = [
            Message(topic="t", partition=p, offset=o, value=b"{}")
            for p, o in [(0, 3), (0, 5), (1, 0), (0, 4), (0, 6), (2, 9)]
        ]
        session.rebalanced = True
        kept = session._accept(fetched)
        assert [(m.partition(), m.offset()) for m in kept] == [(0, 5), (0, 6), (2, 9)]
        # Each kept message moved its partition's start past it: the same fetch again,
        # handed over after another rebalance, keeps nothing.
        assert session._accept(fetched) == []
        session.rebalanced = False
        assert session._accept(fetched) == fetched  # no rebalance: no per-message check
        assert session.run_id is None  # made by run(), with the consumer and the workers


def test_at_start_give_up_after_waits_for_the_brokers(db: Path) -> None:
    """It printed "retrying, giving up after 30 s" and stopped after one broker timeout with
    exit code 2 (independent attack): with --give-up-after, brokers not up yet at start are
    waited for that long, then the documented give-up, exit code 1."""
    port = free_port()
    settings = ConsumerSettings(
        KafkaSettings(f"127.0.0.1:{port}"), ("t",), "g", broker_timeout_s=1.0, give_up_after_s=3
    )
    started = time.monotonic()
    with Store(db) as store, pytest.raises(BrokersUnreachableError) as caught:
        consume(store, Transaction, settings)
    waited = time.monotonic() - started
    assert 3 <= waited < 8
    assert caught.value.exit_code == 1
    assert str(caught.value).startswith(
        f"kafka: the brokers at 127.0.0.1:{port} stayed unreachable for 3 s ("
    )
    assert str(caught.value).endswith(
        "; gave up (the batches written so far are kept; start the consumer again once the "
        "brokers are back)"
    )
