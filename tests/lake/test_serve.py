"""`serve --lake`: the REST API over a lake, beside a `run` process writing the same lake."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from engine.lake.location import Lake
from engine.streaming.local_broker import LocalBroker
from tests.api.conftest import start_server
from tests.lake.conftest import ROOT, lake_rows
from tests.streaming.conftest import FAST_GROUP, Kafka
from tests.streaming.test_recovery import records

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = ROOT / "data" / "transactions_sample.csv"


def test_the_api_serves_a_lake_shared_with_other_writers(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SAMPLE, data / "sample.csv")
    server = start_server(tmp_path, "--lake", lake, "--data-dir", str(data))
    try:
        with server.client() as client:
            assert client.get("/api/v1/summary").json()["rows_total"] == 0
            first = client.post("/api/v1/ingest", params={"file_path": "sample.csv"}).json()
            assert (first["status"], first["rows_total"], first["rows_valid"]) == (
                "completed",
                21,
                7,
            )
            again = client.post("/api/v1/ingest", params={"file_path": "sample.csv"}).json()
            assert (again["status"], again["previous_run"]) == ("skipped", first["run_id"])
            # Another process writes the same lake meanwhile: the server sees its run.
            other = tmp_path / "other.csv"
            other.write_bytes(SAMPLE.read_bytes().replace(b"TXN-1,", b"TXN-X,"))
            assert cli("run", str(other), "--lake", lake, "-q").returncode == 0
            summary = client.get("/api/v1/summary").json()
            assert (summary["rows_total"], summary["rows_valid"]) == (42, 14)
            runs = client.get("/api/v1/runs").json()
            assert runs["total"] == 2
            detail = client.get(f"/api/v1/runs/{first['run_id']}").json()
            assert detail["rows_invalid"] == 14
            health = client.get("/api/v1/health").json()
            assert (health["status"], health["database"]) == ("ok", lake)
    finally:
        assert server.stop() == -signal.SIGTERM  # uvicorn exits by the signal, shut down
    assert not (tmp_path / "api.duckdb").exists()


def test_the_servers_consumer_publishes_into_the_lake(tmp_path: Path, broker: LocalBroker) -> None:
    kafka = Kafka(broker)
    topic, group = kafka.topic(partitions=2), kafka.group()
    sent = kafka.send(topic, records(40), partitions=2)
    lake = Lake(str(tmp_path / "lake"))
    config = [arg for k, v in FAST_GROUP.items() for arg in ("--kafka-config", f"{k}={v}")]
    server = start_server(
        tmp_path,
        "--lake",
        lake.uri,
        "--consume-topic",
        topic,
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--group",
        group,
        "--max-records",
        "10",
        "--max-wait-ms",
        "200",
        *config,
    )
    try:
        with server.client() as client:
            deadline = time.monotonic() + 60
            while client.get("/api/v1/health").json()["consumer"]["batches"] < 4:
                assert time.monotonic() < deadline, server.log_text()
                time.sleep(0.1)
            run_id = client.get("/api/v1/health").json()["consumer"]["run_id"]
    finally:
        assert server.stop() == -signal.SIGTERM
    assert lake_rows(lake, "SELECT run_id, status, rows_total FROM ingestion_runs") == [
        (run_id, "completed", 40)
    ]
    pairs = lake_rows(lake, "SELECT kafka_partition, kafka_offset FROM kafka_lineage ORDER BY 1, 2")
    assert pairs == sorted(sent.coordinates)
    # The session's schema version is recorded, and every row it stored traces to it.
    assert lake_rows(
        lake, "SELECT schema_name, target_table, version, changes FROM schema_versions"
    ) == [("Transaction", "processed_data", 1, "created table processed_data")]
    assert lake_rows(
        lake,
        "SELECT count(*), count(DISTINCT s.schema_fingerprint) FROM row_versions "
        "JOIN schema_versions s USING (schema_fingerprint)",
    ) == [(40, 1)]
