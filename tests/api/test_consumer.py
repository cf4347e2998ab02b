"""``serve --consume-topic``: the Kafka consumer runs in the server's lifespan.

Messages produced to the test broker show up in /summary while the API keeps working (an
upload is ingested in between, on the same DuckDB connection); stopping the server writes
the in-flight micro-batch before it exits.
"""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

import duckdb
import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine.streaming.local_broker import LocalBroker
from tests.api.conftest import ServerFactory, stable
from tests.conftest import DATA
from tests.streaming.conftest import FAST_GROUP, Kafka, Record

GOOD = {
    "external_id": "K-1",
    "amount": 12.5,
    "currency": "EUR",
    "source_channel": "kafka",
    "timestamp": "2024-05-01T10:00:00Z",
}


def messages() -> list[Record]:
    """12 messages: 9 valid, 3 invalid (an amount of 0, not JSON, an unknown currency)."""
    values = [json.dumps({**GOOD, "external_id": f"K-{i}"}).encode() for i in range(1, 13)]
    values[3] = json.dumps({**GOOD, "external_id": "K-4", "amount": 0}).encode()
    values[6] = b"not json"
    values[10] = json.dumps({**GOOD, "external_id": "K-11", "currency": "XXX"}).encode()
    return [Record(value) for value in values]


def wait_for(client: httpx.Client, check: Any, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        health: dict[str, Any] = client.get("/api/v1/health").json()
        if check(health["consumer"]):
            return health
        if time.monotonic() > deadline:
            raise AssertionError(f"consumer never got there: {health}")
        time.sleep(0.1)


def test_consumer_in_lifespan(servers: ServerFactory, broker: LocalBroker) -> None:
    kafka = Kafka(broker)
    topic, group = kafka.topic(partitions=1), kafka.group()
    kafka.send(topic, messages(), partitions=1)
    config = [
        arg for key, value in FAST_GROUP.items() for arg in ("--kafka-config", f"{key}={value}")
    ]
    server = servers(
        "--consume-topic",
        topic,
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--group",
        group,
        "--max-records",
        "5",
        "--max-wait-ms",
        "600000",  # the last two messages stay in flight until the server stops
        *config,
    )
    with server.client() as client:
        health = wait_for(client, lambda c: c["batches"] == 2 and c["in_flight"] == 2)
        assert health == {
            "status": "ok",
            "database": str(server.db),
            "database_error": None,
            "database_reopened": None,
            "schema_name": "Transaction",
            "data_dir": None,
            "writer": None,
            "consumer": {
                "state": "running",
                "topics": [topic],
                "group": group,
                "run_id": 1,
                "batches": 2,
                "in_flight": 2,
                "error": None,
            },
        }
        # The API works while consuming: an upload is ingested on the same connection.
        upload = client.post(
            "/api/v1/ingest",
            files={"file": ("sample.csv", (DATA / "transactions_sample.csv").read_bytes())},
        )
        assert (upload.status_code, upload.json()["run_id"]) == (200, 2)
        summary = stable(client.get("/api/v1/summary").json())
        # Totals count completed runs; the session is running with its first ten messages.
        assert (summary["runs_completed"], summary["rows_total"]) == (1, 21)
        assert summary["runs"][0] == {
            "run_id": 1,
            "source_kind": "kafka",
            "source_path": f"{topic} (group {group})",
            "format": "json",
            "schema_name": "Transaction",
            "status": "running",
            "started_at": "<timestamp>",
            "duration_s": "<seconds>",
            "rows_total": 10,
            "rows_valid": 8,
            "rows_invalid": 2,
            "success_rate": 0.8,
            "rows_per_s": "<rate>",
            "message": None,
        }
        run = client.get("/api/v1/runs/1").json()
        assert run["errors"] == [
            {"field": "", "type": "json_invalid", "count": 1},
            {"field": "amount", "type": "greater_than", "count": 1},
        ]
        metrics = {
            sample.name: sample.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for sample in family.samples
            if sample.name.startswith("ingest_kafka") or sample.labels.get("source") == "kafka"
        }
        assert {
            name: metrics[name]
            for name in (
                "ingest_rows_total",
                "ingest_rows_valid_total",
                "ingest_rows_invalid_total",
                "ingest_kafka_batches_total",
                "ingest_kafka_batch_latency_seconds_count",
                "ingest_kafka_in_flight_messages",
                "ingest_kafka_lag_messages",
            )
        } == {
            "ingest_rows_total": 10.0,
            "ingest_rows_valid_total": 8.0,
            "ingest_rows_invalid_total": 2.0,
            "ingest_kafka_batches_total": 2.0,
            "ingest_kafka_batch_latency_seconds_count": 2.0,
            "ingest_kafka_in_flight_messages": 2.0,
            "ingest_kafka_lag_messages": 2.0,
        }
    # uvicorn shuts down gracefully, then lets the signal end the process as it would have.
    assert server.stop(signal.SIGTERM) == -signal.SIGTERM
    con = duckdb.connect(str(server.db), read_only=True)
    try:
        run_row = con.execute(
            "SELECT status, rows_total, rows_valid, rows_invalid, message FROM ingestion_runs "
            "WHERE run_id = 1"
        ).fetchone()
        raw = con.execute(
            "SELECT kafka_offset, raw FROM raw_data JOIN kafka_lineage USING (run_id, row_number) WHERE run_id = 1 ORDER BY row_number"
        ).fetchall()
        offsets = con.execute(
            'SELECT topic, "partition", next_offset FROM kafka_offsets WHERE group_id = ?', [group]
        ).fetchall()
    finally:
        con.close()
    assert run_row == (
        "completed",
        12,
        9,
        3,
        "stopped: server shutting down",
    )
    assert [offset for offset, _ in raw] == list(range(12))
    assert raw[11][1] == messages()[11].value.decode()  # type: ignore[union-attr]
    assert offsets == [(topic, 0, 12)]
    # The last batch, written on the way down: its latency and write time vary, nothing else.
    lines = server.log_text().splitlines()
    pattern = (
        r"INFO:     batch 3: 2 records, 1 valid, 1 invalid, latency [0-9,]+ ms "
        r"\(write [0-9,]+ ms\), lag 0"
    )
    (batch_3,) = (n for n, line in enumerate(lines) if re.fullmatch(pattern, line))
    assert batch_3 < lines.index("INFO:     Application shutdown complete.")


def test_a_consumer_that_cannot_start_leaves_the_api_up(
    servers: ServerFactory, broker: LocalBroker
) -> None:
    server = servers(
        "--consume-topic",
        "no-such-topic",
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--group",
        "g",
    )
    with server.client() as client:
        health = wait_for(client, lambda c: c["state"] == "failed")
        assert health["status"] == "degraded"
        assert health["consumer"] == {
            "state": "failed",
            "topics": ["no-such-topic"],
            "group": "g",
            "run_id": None,
            "batches": 0,
            "in_flight": 0,
            "error": "kafka topic 'no-such-topic': no such topic "
            "(create it first; the consumer never creates topics)",
        }
        upload = client.post(
            "/api/v1/ingest",
            files={"file": ("sample.csv", (DATA / "transactions_sample.csv").read_bytes())},
        )
        assert (upload.status_code, upload.json()["rows_total"]) == (200, 21)
    assert (
        "ERROR:    consumer stopped: kafka topic 'no-such-topic': no such topic (create it "
        "first; the consumer never creates topics)"
    ) in server.log_text().splitlines()
