"""Consumer processes killed, stopped and restarted: every message stored exactly once."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engine.store.runs import KAFKA_INTERRUPTED
from tests.conftest import ROOT, query
from tests.streaming.conftest import Kafka, Record, Sent
from tests.streaming.processes import ConsumerProcess


def records(count: int, start: int = 0) -> list[Record]:
    """Every tenth record is invalid (negative amount), every 25th is not JSON at all."""
    out = []
    for i in range(start, start + count):
        if i % 25 == 0:
            out.append(Record(f"garbage {i}".encode()))
            continue
        amount = -1 if i % 10 == 0 else 1 + i
        value = {
            "external_id": f"T-{i}",
            "amount": amount,
            "currency": "USD",
            "source_channel": "web",
            "timestamp": "2024-05-01T10:00:00",
        }
        out.append(Record(json.dumps(value).encode(), key=str(i).encode()))
    return out


def valid(record: Record) -> bool:
    value = record.value or b""
    return value.startswith(b"{") and b'"amount": -1,' not in value


def assert_stored_exactly(db: Path, sent: Sent) -> None:
    """The stored (partition, offset) pairs are the produced ones: no gap, no duplicate."""
    pairs = query(db, "SELECT kafka_partition, kafka_offset FROM kafka_lineage ORDER BY 1, 2")
    assert pairs == sorted(sent.coordinates)
    n_valid = sum(valid(r) for r in sent.records)
    assert query(
        db,
        "SELECT (SELECT count(*) FROM processed_data JOIN raw_data USING (run_id, row_number)), "
        "(SELECT count(*) FROM ingestion_errors JOIN raw_data USING (run_id, row_number)), "
        "(SELECT count(*) FROM processed_data JOIN ingestion_errors USING (run_id, row_number))",
    ) == [(n_valid, len(sent.records) - n_valid, 0)]
    per_partition = {p: sum(1 for q, _ in sent.coordinates if q == p) for p in range(3)}
    assert query(db, 'SELECT "partition", next_offset FROM kafka_offsets ORDER BY 1') == sorted(
        per_partition.items()
    )
    # Each run's figures committed with its rows, so they add up even for killed runs.
    assert query(
        db,
        "SELECT count(*) FROM ingestion_runs r WHERE rows_total <> "
        "(SELECT count(*) FROM raw_data d WHERE d.run_id = r.run_id)",
    ) == [(0,)]


def test_killed_consumer_resumes_without_duplicates_or_gaps(kafka: Kafka, tmp_path: Path) -> None:
    topic, group, db = kafka.topic(), kafka.group(), tmp_path / "kills.duckdb"
    sent = kafka.send(topic, records(8_000))
    rng = random.Random(20261128)
    kills = 0
    for _ in range(5):
        consumer = ConsumerProcess(
            kafka.bootstrap_servers,
            topic,
            group,
            db,
            "--max-records",
            "100",
            "--max-wait-ms",
            "100",
        )
        seen = len(consumer.batches())
        wanted = seen + rng.randint(1, 3)
        consumer.wait_for(lambda: len(consumer.batches()) >= wanted, 60, "batches")  # noqa: B023
        time.sleep(rng.uniform(0, 0.05))  # places the kill; wherever it lands, all is checked
        consumer.send(signal.SIGKILL)
        assert consumer.finish(10) == -signal.SIGKILL
        kills += 1
    final = ConsumerProcess(kafka.bootstrap_servers, topic, group, db, "--stop-when-idle", "2")
    assert final.finish(120) == 0, final.output()
    assert final.lines[-1].endswith("(stopped: no messages for 2 s)")
    assert kills == 5
    assert_stored_exactly(db, sent)
    runs = query(db, "SELECT status, message FROM ingestion_runs ORDER BY run_id")
    assert runs == [("interrupted", KAFKA_INTERRUPTED)] * 5 + [
        ("completed", "stopped: no messages for 2 s")
    ]


def test_sigterm_writes_the_in_flight_batch_and_the_restart_resumes_after_it(
    kafka: Kafka, tmp_path: Path
) -> None:
    topic, group, db = kafka.topic(), kafka.group(), tmp_path / "term.duckdb"
    # The batch can only close on the signal: no size or time limit is reached.
    first = ConsumerProcess(
        kafka.bootstrap_servers,
        topic,
        group,
        db,
        "--max-records",
        "100000",
        "--max-wait-ms",
        "600000",
    )
    first.wait_for(lambda: first.owned() == {0, 1, 2}, 60, "the assignment")
    sent = kafka.send(topic, records(500))
    # Places the signal after the messages were most likely fetched; the outcome is checked
    # for however many were (the batch can only close on the signal).
    time.sleep(3)
    assert first.batches() == []
    # One writer per DuckDB file: a second consumer on it stops at once, in one line.
    second = subprocess.run(
        [
            sys.executable,
            "cli.py",
            "consume",
            "--bootstrap-servers",
            kafka.bootstrap_servers,
            "--topic",
            topic,
            "--group",
            group,
            "--db",
            str(db),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 2
    assert second.stderr == (
        f"error: {db}: database is locked by process {first.pid} (wait for it to finish or "
        "stop it, or use another --db file)\n"
    )
    first.send(signal.SIGTERM)
    assert first.finish(60) == 0, first.output()
    # The in-flight batch was written: whatever had been fetched, in one batch, with offsets.
    written = first.records()
    assert first.batches() == ([(1, written, 0)] if written else [])
    batches = len(first.batches())
    assert first.lines[-1].startswith(
        f"run 1: {batches} {'batch' if batches == 1 else 'batches'}, {written} records, "
    )
    assert first.lines[-1].endswith("(stopped: SIGTERM received)")
    stored = query(db, "SELECT kafka_partition, count(*) FROM kafka_lineage GROUP BY 1 ORDER BY 1")
    per_partition = {int(str(p)): int(str(n)) for p, n in stored}
    assert sum(per_partition.values()) == written
    assert query(db, 'SELECT "partition", next_offset FROM kafka_offsets ORDER BY 1') == stored
    assert kafka.committed(topic, group) == per_partition
    more = kafka.send(topic, records(300, start=500))
    restart = ConsumerProcess(kafka.bootstrap_servers, topic, group, db, "--stop-when-idle", "2")
    assert restart.finish(120) == 0, restart.output()
    assigned = [line for line in restart.lines if line.startswith("assigned: ")]
    starts = {int(p): int(o) for p, o in re.findall(r"\[(\d+)\] at (\d+)", assigned[0])}
    assert {p: o for p, o in starts.items() if o} == per_partition
    if len(per_partition) == 3:  # every partition had records in the batch: all start from DuckDB
        assert assigned[0].endswith(" (stored in DuckDB)") and ";" not in assigned[0]
    assert restart.records() == 800 - written
    assert_stored_exactly(
        db, Sent(sent.records + more.records, sent.coordinates + more.coordinates)
    )
    assert query(db, "SELECT run_id, status, rows_total FROM ingestion_runs ORDER BY 1") == [
        (1, "completed", written),
        (2, "completed", 800 - written),
    ]
    print(f"\n{written} of 500 records were in flight when SIGTERM came")


def test_a_second_signal_exits_at_once() -> None:
    code = textwrap.dedent(
        """
        import os, signal, time
        from engine.streaming.shutdown import stop_on_signals
        with stop_on_signals() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)
            print(stop.reason, flush=True)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
            print("not reached")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        130,
        "SIGTERM received\n",
        "SIGINT again: exiting now; the in-flight batch is not written\n",
    )
