"""Kafka into a lake over a model's life: each consumer session goes through `run --lake`'s
decisions (the table its rows go to, refusals, `--new-table`), records its schema version,
and every row it stored traces to that version, exactly as the same sessions into a DuckDB
file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import engine
from engine.lake.location import Lake
from engine.lake.stream import consume_into_lake
from engine.schemas import load_schema
from engine.store.store import Store
from engine.store.versions import SchemaChangeError
from engine.streaming.consumer import consume
from engine.streaming.events import Assigned, Event
from engine.validation.compiler import fingerprint
from tests.lake.conftest import db_rows, lake_rows
from tests.streaming.conftest import FAST_GROUP, Kafka, Record

MODELS = """
from pydantic import BaseModel


class V1(BaseModel):
    __table_name__ = "events"
    rid: str
    value: int


class V2(BaseModel):  # adds note (optional)
    __table_name__ = "events"
    rid: str
    value: int
    note: str | None = None


class Required(BaseModel):  # a new required field
    __table_name__ = "events"
    rid: str
    value: int
    note: str | None = None
    code: str


class Keyed(BaseModel):  # V1 with a unique key
    __table_name__ = "events"
    __unique__ = ("rid",)
    rid: str
    value: int
"""

PARTITIONS = 2
# (model of the session, the messages sent before it)
SESSIONS: list[tuple[str, list[dict[str, object]]]] = [
    ("V1", [{"rid": "a", "value": 1}, {"rid": "b", "value": "x"}, {"rid": "c", "value": 3}]),
    ("V2", [{"rid": "d", "value": 4, "note": "n"}, {"rid": "e", "value": 5}]),
]
REFUSED = [{"rid": "f", "value": 6, "note": "m", "code": "c1"}]
FOLLOWING = [{"rid": "g", "value": 7, "code": "c2"}, {"rid": "h", "value": 8}]
REFUSAL = (
    "table 'events'{where} cannot take schema Required as it is: new required field code "
    "(VARCHAR, no default) would be NULL in the 4 stored rows (pass --new-table to store this "
    "model's rows in a new table events_v3, or give the model another __table_name__)"
)
VERSIONS = (
    "SELECT schema_fingerprint, schema_name, declared_table, target_table, version, "
    "json_schema, context, columns, unique_key, changes FROM schema_versions ORDER BY version"
)
# Each input row (valid or not), the schema version that validated it.
ROW_VERSIONS = (
    "SELECT r.raw, s.schema_name, s.version, s.target_table FROM raw_data r "
    "JOIN row_versions v USING (run_id, row_number) "
    "JOIN schema_versions s USING (schema_fingerprint) ORDER BY r.raw"
)
# Each typed row with the version that validated it.
TYPED = (
    "SELECT t.rid, t.value, t.note, s.schema_name, s.version FROM events t "
    "JOIN row_versions v USING (run_id, row_number) "
    "JOIN schema_versions s USING (schema_fingerprint) ORDER BY t.rid"
)
TYPED_V3 = (
    "SELECT t.rid, t.value, t.note, t.code, s.schema_name, s.version FROM events_v3 t "
    "JOIN row_versions v USING (run_id, row_number) "
    "JOIN schema_versions s USING (schema_fingerprint) ORDER BY t.rid"
)
RUNS = (
    "SELECT schema_name, schema_fingerprint, target_table, status, rows_total, rows_valid "
    "FROM ingestion_runs ORDER BY started_at"
)


def messages(rows: list[dict[str, object]]) -> list[Record]:
    return [Record(json.dumps(row).encode()) for row in rows]


def fingerprints(spec: Path) -> dict[str, str]:
    return {
        name: fingerprint(load_schema(f"{spec}:{name}"), {}) for name in ("V1", "V2", "Required")
    }


@pytest.mark.parametrize("store", ["lake", "db"])
def test_consumer_sessions_record_versions_refuse_and_follow_new_tables(
    store: str,
    kafka: Kafka,
    tmp_path: Path,
    cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """Two sessions (a model, then the model with an added field), a refused one (a new
    required field: one line, exit 2, nothing consumed or recorded), one with --new-table and
    one that follows it there without the option; then every row names its version."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "events.duckdb"
    target = ("--lake", lake.uri) if store == "lake" else ("--db", str(db))
    topic, group = kafka.topic(PARTITIONS), kafka.group()

    def session(name: str) -> None:
        model = load_schema(f"{spec}:{name}")
        settings = kafka.settings(topic, group, max_wait_ms=100, stop_when_idle_s=2)
        if store == "lake":
            done = consume_into_lake(lake, model, settings)
        else:
            with Store(db) as opened:
                done = consume(opened, model, settings)
        assert done.tally.rows > 0

    def consume_cli(name: str, *more: str) -> subprocess.CompletedProcess[str]:
        argv = ["consume", "--bootstrap-servers", kafka.bootstrap_servers, "--topic", topic]
        argv += ["--group", group, *target, "--schema", f"{spec}:{name}", "--max-wait-ms", "100"]
        argv += ["--stop-when-idle", "2", *more]
        for key, value in FAST_GROUP.items():
            argv += ["--kafka-config", f"{key}={value}"]
        return cli(*argv)

    def rows(query: str) -> list[tuple[object, ...]]:
        return lake_rows(lake, query) if store == "lake" else db_rows(db, query)

    for name, sent in SESSIONS:
        kafka.send(topic, messages(sent), PARTITIONS)
        session(name)
    offsets = kafka.committed(topic, group, PARTITIONS)
    assert sum(offsets.values()) == 5
    batches = pl.read_delta(lake.table_uri("ingestion_batches")).height if store == "lake" else 0

    # A new required field over stored rows: refused in one line before anything is consumed.
    kafka.send(topic, messages(REFUSED), PARTITIONS)
    refused = consume_cli("Required")
    where = " of the lake" if store == "lake" else ""
    place = lake.uri if store == "lake" else str(db)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == f"error: {place}: {REFUSAL.format(where=where)}\n"
    assert kafka.committed(topic, group, PARTITIONS) == offsets
    assert len(rows(RUNS)) == 2
    if store == "lake":
        assert pl.read_delta(lake.table_uri("ingestion_batches")).height == batches

    # --new-table starts events_v3 for it; a later session of it follows without the option.
    moved = consume_cli("Required", "--new-table")
    assert moved.returncode == 0, moved.stderr
    kafka.send(topic, messages(FOLLOWING), PARTITIONS)
    session("Required")

    prints = fingerprints(spec)
    assert [r[:4] for r in rows(RUNS)] == [
        ("V1", prints["V1"], "events", "completed"),
        ("V2", prints["V2"], "events", "completed"),
        ("Required", prints["Required"], "events_v3", "completed"),
        ("Required", prints["Required"], "events_v3", "completed"),
    ]
    assert [r[4:] for r in rows(RUNS)] == [(3, 2), (2, 2), (1, 1), (2, 1)]
    versions = rows(VERSIONS)
    assert [(r[1], r[3], r[4], r[9]) for r in versions] == [
        ("V1", "events", 1, "created table events"),
        ("V2", "events", 2, "added note VARCHAR (old rows NULL)"),
        ("Required", "events_v3", 3, "created table events_v3 (a new table for events)"),
    ]
    for row in versions:
        model = load_schema(f"{spec}:{row[1]}")
        assert row[0] == prints[str(row[1])]
        assert json.loads(str(row[5])) == model.model_json_schema()
    assert rows(ROW_VERSIONS) == [
        ('{"rid": "a", "value": 1}', "V1", 1, "events"),
        ('{"rid": "b", "value": "x"}', "V1", 1, "events"),
        ('{"rid": "c", "value": 3}', "V1", 1, "events"),
        ('{"rid": "d", "value": 4, "note": "n"}', "V2", 2, "events"),
        ('{"rid": "e", "value": 5}', "V2", 2, "events"),
        ('{"rid": "f", "value": 6, "note": "m", "code": "c1"}', "Required", 3, "events_v3"),
        ('{"rid": "g", "value": 7, "code": "c2"}', "Required", 3, "events_v3"),
        ('{"rid": "h", "value": 8}', "Required", 3, "events_v3"),
    ]
    assert rows(TYPED) == [
        ("a", 1, None, "V1", 1),
        ("c", 3, None, "V1", 1),
        ("d", 4, "n", "V2", 2),
        ("e", 5, None, "V2", 2),
    ]
    assert rows(TYPED_V3) == [
        ("f", 6, "m", "c1", "Required", 3),
        ("g", 7, None, "c2", "Required", 3),
    ]
    assert sum(kafka.committed(topic, group, PARTITIONS).values()) == 8


def test_the_lake_and_a_database_record_the_same_versions_for_the_same_sessions(
    kafka: Kafka, tmp_path: Path
) -> None:
    """The same sessions (a model, then the model with an added field) into a lake and into a
    DuckDB file: the same schema_versions, ingestion_runs and row_versions content."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "events.duckdb"
    topic = kafka.topic(PARTITIONS)
    lake_group, db_group = kafka.group(), kafka.group()
    for name, sent in SESSIONS:
        kafka.send(topic, messages(sent), PARTITIONS)
        model = load_schema(f"{spec}:{name}")
        for group in (lake_group, db_group):
            settings = kafka.settings(topic, group, max_wait_ms=100, stop_when_idle_s=2)
            if group == lake_group:
                consume_into_lake(lake, model, settings)
            else:
                with Store(db) as opened:
                    consume(opened, model, settings)
    for query in (
        VERSIONS,
        ROW_VERSIONS,
        TYPED,
        "SELECT schema_name, schema_fingerprint, target_table, status, rows_total, rows_valid, "
        "rows_invalid FROM ingestion_runs ORDER BY started_at",
        "SELECT e.rid, v.schema_fingerprint, v.replay_id FROM row_versions v "
        "JOIN events e USING (run_id, row_number) ORDER BY 1",
    ):
        found = lake_rows(lake, query)
        assert found == db_rows(db, query), query
        assert found
    assert len(lake_rows(lake, VERSIONS)) == 2


def test_a_change_made_by_another_writer_meanwhile_is_refused_at_publish(
    kafka: Kafka, tmp_path: Path
) -> None:
    """A session whose model fitted when it started, but not once another writer gave the
    table a unique key: its batch is refused at publish, nothing of it is committed."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    lake = Lake(str(tmp_path / "lake"))
    keyed = tmp_path / "keyed.csv"
    keyed.write_text("rid,value\nk1,1\nk2,2\n")
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    kafka.send(topic, messages(SESSIONS[0][1]), PARTITIONS)

    def meanwhile(event: Event) -> None:
        if isinstance(event, Assigned):  # started, nothing fetched yet
            engine.ingest(keyed, db=lake, schema=f"{spec}:Keyed")

    settings = kafka.settings(topic, group, max_wait_ms=100, stop_when_idle_s=2)
    with pytest.raises(SchemaChangeError) as refused:
        consume_into_lake(lake, load_schema(f"{spec}:V1"), settings, on_event=meanwhile)
    assert str(refused.value) == (
        f"{lake.uri}: table 'events' of the lake cannot take schema V1 as it is: the unique "
        "key changes from (rid) to (none) over stored rows (pass new_table=True to store this "
        "model's rows in a new table events_v2, or give the model another __table_name__)"
    )
    assert lake_rows(lake, "SELECT rid FROM events ORDER BY rid") == [("k1",), ("k2",)]
    assert lake_rows(lake, "SELECT count(*) FROM kafka_lineage") == [(0,)]
    assert lake_rows(lake, "SELECT schema_name, status FROM ingestion_runs ORDER BY 1") == [
        ("Keyed", "completed"),
        ("V1", "failed"),
    ]
    assert lake_rows(lake, "SELECT schema_name FROM schema_versions") == [("Keyed",)]
    assert kafka.committed(topic, group, PARTITIONS) == {0: -1001, 1: -1001}
