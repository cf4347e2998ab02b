"""A consumer on a full disk stops with the one line a file run gives, exit code 1 (it was a
58-line DuckDB traceback; independent attack), and what it committed before is intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import query
from tests.streaming.conftest import Kafka, Record
from tests.streaming.processes import ConsumerProcess


def test_a_full_disk_is_one_line(kafka: Kafka, small_disk: Callable[[str], Path]) -> None:
    disk = small_disk("3m")
    topic, group, db = kafka.topic(), kafka.group(), disk / "full.duckdb"
    note = "x" * 400
    records = [
        Record(json.dumps({"external_id": f"T{i}", "amount": 1.5, "note": note}).encode())
        for i in range(12_000)
    ]
    kafka.send(topic, records)
    consumer = ConsumerProcess(
        kafka.bootstrap_servers, topic, group, db, "--stop-when-idle", "5", "--max-records", "500"
    )
    assert consumer.finish(120) == 1, consumer.output()
    assert consumer.errors[-1] == (
        f"error: {db}: cannot write the database: the disk is full (free some space on its "
        "disk and run again; what was committed before is intact)"
    ), consumer.output()
    assert not any("Traceback" in line for line in consumer.errors), consumer.output()
    # A batch's line comes after its commit: the disk may fill before the last one is said.
    said = sum(records for _, records, _ in consumer.batches())
    stored = int(str(query(db, "SELECT count(*) FROM raw_data")[0][0]))
    assert said <= stored < 12_000 and stored % 500 == 0
    # What is stored is what the stored offsets say: the next session resumes after it.
    assert query(db, "SELECT sum(next_offset) FROM kafka_offsets") == [(stored,)]
