"""`consume --lake`: consumers of one group share one lake, exactly once across them, and a
replayed batch is skipped by whichever writer meets it."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import BaseModel, Field, field_validator

import engine
from engine.lake.location import Lake
from engine.lake.stream import consume_into_lake
from engine.schemas import load_schema
from engine.store.store import Store
from engine.streaming.consumer import consume
from engine.streaming.events import Assigned, BatchWritten, Event
from engine.streaming.workers import BatchWorkers, ParsedBatch
from schemas.transactions import Transaction
from tests.conftest import ROOT
from tests.lake.conftest import db_rows, lake_rows
from tests.store.lifecycle import MODELS
from tests.streaming.conftest import FAST_GROUP, Kafka, Record, Sent
from tests.streaming.processes import ConsumerProcess
from tests.streaming.test_recovery import records, valid

PARTITIONS = 4
# A member killed during a rebalance holds the group until the rebalance times out
# (max.poll.interval.ms, 5 minutes by default): shortened, as the loop polls often.
GROUP = {**FAST_GROUP, "max.poll.interval.ms": "10000"}


def assert_stored_once(lake: Lake, sent: Sent) -> None:
    pairs = lake_rows(lake, "SELECT kafka_partition, kafka_offset FROM kafka_lineage ORDER BY 1, 2")
    assert pairs == sorted(sent.coordinates)
    n_valid = sum(valid(r) for r in sent.records)
    assert lake_rows(
        lake,
        "SELECT (SELECT count(*) FROM processed_data JOIN raw_data USING (run_id, row_number)), "
        "(SELECT count(*) FROM ingestion_errors JOIN raw_data USING (run_id, row_number)), "
        "(SELECT count(*) FROM raw_data)",
    ) == [(n_valid, len(sent.records) - n_valid, len(sent.records))]
    per_partition = {p: sum(1 for q, _ in sent.coordinates if q == p) for p in range(PARTITIONS)}
    assert lake_rows(lake, 'SELECT "partition", next_offset FROM kafka_offsets ORDER BY 1') == (
        sorted(per_partition.items())
    )
    # Polars and deltalake alone: the committed batches' lineage, through the manifest.
    manifest = pl.read_delta(lake.table_uri("ingestion_batches"))
    committed = manifest.filter(pl.col("status") != "failed").select("run_id", "batch")
    lineage = pl.scan_delta(lake.table_uri("kafka_lineage")).collect()
    kept = lineage.join(committed, on=["run_id", "batch"], how="semi")
    assert kept.height == len(sent.records)
    assert kept.select("kafka_partition", "kafka_offset").n_unique() == len(sent.records)


def finished(consumer: ConsumerProcess, timeout: float) -> int:
    try:
        return consumer.finish(timeout)
    except subprocess.TimeoutExpired:
        consumer.send(signal.SIGKILL)
        consumer.finish(10)
        raise AssertionError(f"consumer still running: {consumer.output()}") from None


def test_two_consumers_of_a_group_share_a_lake_exactly_once_through_kills(
    kafka: Kafka, tmp_path: Path
) -> None:
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    lake = Lake(str(tmp_path / "lake"))
    sent = kafka.send(topic, records(3_000), PARTITIONS)
    options = ("--lake", lake.uri, "--max-records", "150", "--max-wait-ms", "100")

    def start(name: str, *more: str) -> ConsumerProcess:
        return ConsumerProcess(
            kafka.bootstrap_servers,
            topic,
            group,
            tmp_path / f"unused-{name}.duckdb",
            *options,
            *more,
            kafka_config=GROUP,
        )

    rng = random.Random(20261204)
    a, b = start("a"), start("b", "--stop-when-idle", "8")
    pair = (a, b)

    def split() -> bool:
        owned = [c.owned() for c in pair]
        return all(owned) and not owned[0] & owned[1]

    a.wait_for(split, 90, "the split")
    more = kafka.send(topic, records(3_000, 3_000), PARTITIONS)
    sent.records += more.records
    sent.coordinates += more.coordinates
    wanted = len(a.batches()) + rng.randint(1, 3)
    a.wait_for(lambda: len(a.batches()) >= wanted, 90, "batches of the consumer to kill")
    time.sleep(rng.uniform(0, 0.1))  # places the kill; wherever it lands, all is checked
    a.send(signal.SIGKILL)
    assert a.finish(10) == -signal.SIGKILL
    # The survivor takes the dead one's partitions over from where the lake says.
    assert finished(b, 180) == 0, b.output()
    c = start("c", "--stop-when-idle", "3")
    assert finished(c, 120) == 0, c.output()
    restarts = [line for x in (b, c) for line in x.lines if "(stored in the lake)" in line]
    assert restarts, (b.output(), c.output())
    assert_stored_once(lake, sent)
    assert not (tmp_path / "unused-b.duckdb").exists()  # --lake, not --db


def replay_from_zero(kafka: Kafka, topic: str, group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's committed offsets reset to 0, and the lake not asked where to start: the
    next writer of the group reads every message again."""
    resetting = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    resetting.commit(
        offsets=[TopicPartition(topic, p, 0) for p in range(PARTITIONS)], asynchronous=False
    )
    resetting.close()
    assert kafka.committed(topic, group, PARTITIONS) == dict.fromkeys(range(PARTITIONS), 0)
    monkeypatch.setattr("engine.lake.stream.LakeSink.positions", lambda *args: {})


def test_a_replayed_batch_is_skipped_by_the_writer_that_meets_it(
    kafka: Kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    lake = Lake(str(tmp_path / "lake"))
    sent = kafka.send(topic, records(900), PARTITIONS)
    settings = kafka.settings(topic, group, max_records=100, max_wait_ms=100, stop_when_idle_s=2)
    first = consume_into_lake(lake, Transaction, settings)
    assert first.tally.rows == 900
    more = kafka.send(topic, records(300, 900), PARTITIONS)
    sent.records += more.records
    sent.coordinates += more.coordinates
    # A writer that knows nothing of what was stored (a zombie, a reset group) replays the
    # partitions from offset 0: the lake's records make it skip what is there.
    replay_from_zero(kafka, topic, group, monkeypatch)
    events: list[Event] = []
    again = kafka.settings(topic, group, max_records=100, max_wait_ms=100, stop_when_idle_s=2)
    second = consume_into_lake(lake, Transaction, again, on_event=events.append)
    assert second.tally.rows == 300
    # It read all 1,200 messages (it used to start where the group had committed, at 900).
    starts = {start.offset for e in events if isinstance(e, Assigned) for start in e.partitions}
    assert starts == {0}
    assert_stored_once(lake, sent)
    assert lake_rows(lake, "SELECT status, rows_total FROM ingestion_runs ORDER BY run_id") == [
        ("completed", 900),
        ("completed", 300),
    ]


def test_consumers_append_to_the_generation_of_their_model(kafka: Kafka, tmp_path: Path) -> None:
    """After a run widened a type (a new generation of the table), a consumer on the widened
    model appends to it and one still on the old model to the old generation, each value as
    its model stored it."""
    spec, lake = tmp_path / "models.py", Lake(str(tmp_path / "lake"))
    spec.write_text(MODELS)
    for name, text in (("V1", "rid,value\na,1\n"), ("V2", "rid,value\nb,1.5\n")):
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        engine.ingest(path, db=lake, schema=f"{spec}:{name}")
    for name, values in (("V2", [2.25, 3.5, "x"]), ("V1", [4, 5, 6.5])):
        topic = kafka.topic(2)
        sent = [
            Record(json.dumps({"rid": f"{name}-{i}", "value": v}).encode())
            for i, v in enumerate(values)
        ]
        kafka.send(topic, sent, 2)
        settings = kafka.settings(topic, kafka.group(), max_wait_ms=100, stop_when_idle_s=2)
        done = consume_into_lake(lake, load_schema(f"{spec}:{name}"), settings)
        assert (done.tally.rows, done.tally.valid) == (3, 2)
    assert lake_rows(lake, "SELECT rid, value FROM readings ORDER BY rid") == [
        ("V1-0", 4.0),
        ("V1-1", 5.0),
        ("V2-0", 2.25),
        ("V2-1", 3.5),
        ("a", 1.0),
        ("b", 1.5),
    ]
    old = pl.read_delta(lake.table_uri("readings"))
    new = pl.read_delta(lake.table_uri("readings__g2"))
    assert sorted(old["rid"]) == ["V1-0", "V1-1", "a"]
    assert sorted(new["rid"]) == ["V2-0", "V2-1", "b"]
    assert not Path(lake.table_uri("readings__g3")).exists()


# A consumer that SIGKILLs itself right after its second batch is in the lake, before the
# Kafka commit of that batch's offsets: the window where a lake-less consumer would store the
# batch a second time after a restart.
KILLED_AFTER_LAKE_COMMIT = """
import os, runpy, signal, sys
import engine.lake.stream as stream
original = stream.LakeSink.publish
published = []
def publish(self, *args, **kwargs):
    kept = original(self, *args, **kwargs)
    published.append(1)
    if len(published) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return kept
stream.LakeSink.publish = publish
sys.argv = ["cli.py", *sys.argv[1:]]
runpy.run_path("cli.py", run_name="__main__")
"""


def test_a_kill_between_the_lake_commit_and_the_kafka_commit_stores_nothing_twice(
    kafka: Kafka, tmp_path: Path
) -> None:
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    lake = Lake(str(tmp_path / "lake"))
    sent = kafka.send(topic, records(2_000), PARTITIONS)
    argv = ["consume", "--bootstrap-servers", kafka.bootstrap_servers, "--topic", topic]
    argv += ["--group", group, "--lake", lake.uri, "--max-records", "300", "--max-wait-ms", "2000"]
    for key, value in GROUP.items():
        argv += ["--kafka-config", f"{key}={value}"]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_LAKE_COMMIT, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The lake holds the batches; Kafka never got the last one's offsets: the window was hit.
    offsets = lake_rows(lake, 'SELECT "partition", next_offset FROM kafka_offsets')
    in_lake = {int(str(p)): int(str(n)) for p, n in offsets}
    stored = int(str(lake_rows(lake, "SELECT count(*) FROM kafka_lineage")[0][0]))
    in_kafka = {p: max(o, 0) for p, o in kafka.committed(topic, group, PARTITIONS).items()}
    assert 0 < stored == sum(in_lake.values()) < 2_000
    behind = {p: n for p, n in in_lake.items() if n > in_kafka.get(p, 0)}
    assert behind, (in_lake, in_kafka)
    after = ConsumerProcess(
        kafka.bootstrap_servers,
        topic,
        group,
        tmp_path / "unused.duckdb",
        "--lake",
        lake.uri,
        "--max-records",
        "300",
        "--max-wait-ms",
        "100",
        "--stop-when-idle",
        "3",
        kafka_config=GROUP,
    )
    assert finished(after, 180) == 0, after.output()
    # It starts each such partition where the lake says, and reads only the rest.
    assigned = next(line for line in after.lines if line.startswith("assigned: "))
    from_lake = next(g for g in assigned.split("; ") if g.endswith(" (stored in the lake)"))
    for partition, offset in behind.items():
        assert f"{topic}[{partition}] at {offset}" in from_lake, assigned
    assert after.records() == 2_000 - stored
    assert_stored_once(lake, sent)


class Checked(BaseModel):
    """Transactions as ``records`` makes them, with a validator only Pydantic runs."""

    external_id: str
    amount: float = Field(gt=0)

    @field_validator("external_id")
    @classmethod
    def named(cls, value: str) -> str:
        return value


def test_a_writer_that_meets_published_rows_reports_and_dead_letters_only_its_own(
    kafka: Kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches stored and published together, some of whose rows another writer published:
    each batch's line counts its own kept rows, and its kept invalid rows, only those, go to
    the dead-letter topic (the first batch of a group used to carry the group's figures and
    send its rows another writer had published, the others none of theirs)."""
    topic, dead, group = kafka.topic(PARTITIONS), kafka.topic(partitions=1), kafka.group()
    lake = Lake(str(tmp_path / "lake"))
    kafka.send(topic, records(900), PARTITIONS)
    first = consume_into_lake(
        lake,
        Checked,
        kafka.settings(topic, group, max_records=100, max_wait_ms=100, stop_when_idle_s=2),
    )
    assert first.tally.rows == 900
    more = kafka.send(topic, records(300, 900), PARTITIONS)
    replay_from_zero(kafka, topic, group, monkeypatch)
    groups: list[int] = []
    write = BatchWorkers._write

    def slow_write(self: BatchWorkers, batches: Sequence[ParsedBatch]) -> Any:
        groups.append(len(batches))
        time.sleep(0.3)  # closed batches wait meanwhile, and are then stored together
        return write(self, batches)

    monkeypatch.setattr(BatchWorkers, "_write", slow_write)
    events: list[Event] = []
    second = consume_into_lake(
        lake,
        Checked,
        kafka.settings(
            topic,
            group,
            max_records=100,
            max_wait_ms=100,
            stop_when_idle_s=2,
            dead_letter_topic=dead,
        ),
        on_event=events.append,
    )
    assert max(groups) > 1, groups
    new_invalid = sorted(r.value or b"" for r in more.records if not valid(r))
    assert len(new_invalid) == 36
    assert (second.tally.rows, second.tally.invalid) == (300, 36)
    # Its figures beyond rows (they were 0 and empty whenever another writer had published
    # part of a group): every JSON object is decided by Pydantic (a validator of its own).
    assert (second.tally.python_rows, second.tally.errors) == (
        300 - 12,
        Counter({("", "json_invalid"): 12, ("amount", "greater_than"): 24}),
    )
    assert lake_rows(
        lake, f"SELECT rows_python FROM ingestion_runs WHERE run_id = {second.run_id}"
    ) == [(288,)]
    written = [event for event in events if isinstance(event, BatchWritten)]
    assert sum(event.records for event in written) == 300
    assert sum(event.invalid for event in written) == 36
    assert [event.dead_letters for event in written] == [event.invalid for event in written]
    assert all(event.valid + event.invalid == event.records for event in written)
    # Every message of the dead-letter topic (one more than 36 would be read within 2 s).
    letters = kafka.read(dead, 37, partitions=1, attempts=10)
    assert sorted(m.value() or b"" for m in letters) == new_invalid


class Keyed(BaseModel):
    __table_name__ = "keyed"
    __unique__: ClassVar[tuple[str, ...]] = ("key",)
    key: int
    name: str
    qty: int = Field(ge=0)


def keyed_records(count: int, seed: int) -> list[Record]:
    """Messages of repeated keys, a few not an int, some with a negative quantity."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        key: object = rng.randrange(120) if rng.random() > 0.05 else "x"
        value = {"key": key, "name": f"n{rng.randrange(1000)}", "qty": rng.randint(-2, 30)}
        out.append(Record(json.dumps(value).encode()))
    return out


def test_a_session_checks_the_key_against_the_lake_as_a_database_does(
    kafka: Kafka, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sessions of a keyed model, batches stored together: a row whose key the lake shows
    (an earlier session's or an earlier group's) is a duplicate naming that row, as in a
    DuckDB file (before 2026-12-06 a lake session checked each batch group's own rows only)."""
    topic = kafka.topic(1)  # one partition: both consumers read the messages in one order
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    groups: list[int] = []
    write = BatchWorkers._write

    def slow_write(self: BatchWorkers, batches: Sequence[ParsedBatch]) -> Any:
        groups.append(len(batches))
        time.sleep(0.1)
        return write(self, batches)

    monkeypatch.setattr(BatchWorkers, "_write", slow_write)
    events: list[Event] = []
    for seed, count in ((1, 400), (2, 250)):
        kafka.send(topic, keyed_records(count, seed), 1)
        options: dict[str, Any] = {"max_records": 40, "max_wait_ms": 50, "stop_when_idle_s": 2.0}
        consume_into_lake(
            lake, Keyed, kafka.settings(topic, "lake", **options), on_event=events.append
        )
        with Store(db) as store:
            consume(store, Keyed, kafka.settings(topic, "file", **options))
    assert max(groups) > 1, groups
    run = "(SELECT count(*) FROM ingestion_runs AS o WHERE o.run_id <= {col})"
    queries = {
        "keyed": f"SELECT {run.format(col='t.run_id')}, row_number, key, name, qty "
        "FROM keyed AS t ORDER BY ALL",
        "runs": "SELECT rows_total, rows_valid, rows_invalid FROM ingestion_runs ORDER BY run_id",
        "errors": f"SELECT {run.format(col='e.run_id')}, row_number, type, input, CASE WHEN "
        "type = 'duplicate' THEN regexp_replace(msg, 'run [0-9]+,', 'run ' || "
        + run.format(col="TRY_CAST(regexp_extract(msg, 'run ([0-9]+),', 1) AS BIGINT)")
        + " || ',') ELSE msg END FROM error_details AS e ORDER BY ALL",
    }
    for name, query in queries.items():
        assert lake_rows(lake, query) == db_rows(db, query), name
    assert lake_rows(lake, "SELECT count(*) - count(DISTINCT key) FROM keyed") == [(0,)]
    duplicates = lake_rows(
        lake, "SELECT count(*) > 300 FROM error_details WHERE type = 'duplicate'"
    )
    assert duplicates == [(True,)]
    # Each batch's line counts its duplicates: the lines add up to the runs' figures.
    written = [event for event in events if isinstance(event, BatchWritten)]
    assert (sum(e.valid for e in written), sum(e.invalid for e in written)) == tuple(
        lake_rows(lake, "SELECT sum(rows_valid), sum(rows_invalid) FROM ingestion_runs")[0]
    )
