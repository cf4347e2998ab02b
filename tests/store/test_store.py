"""The Store's bulk-load settings and the columns' compression chosen by a model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pydantic import BaseModel

from engine.errors import SchemaError
from engine.pipeline import RunOptions, ingest_file
from engine.store.ddl import RUNS_DDL
from engine.store.layout import LAYOUT_1_DDL
from engine.store.store import Store
from engine.validation.compiler import compile_schema
from schemas.transactions import Transaction
from tests.conftest import DATA, ROOT, query
from tests.store.lifecycle import cli
from tests.wording import assert_wraps


def settings(store: Store) -> tuple[str, str, str]:
    threads, memory, checkpoint = store.rows(
        "SELECT current_setting('threads'), current_setting('memory_limit'), "
        "current_setting('checkpoint_threshold')"
    )[0]
    return str(threads), str(memory), str(checkpoint)


def test_bulk_load_keeps_every_thread_and_restores_the_settings(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb", memory_limit="300MB") as store:
        before = settings(store)
        assert before == (str(os.cpu_count()), "286.1 MiB", "16.0 MiB")
        with store.bulk_load():
            assert settings(store) == (before[0], "122.0 MiB", "16.0 MiB")
        assert settings(store) == before
        with pytest.raises(RuntimeError), store.bulk_load():
            raise RuntimeError("boom")
        assert settings(store) == before


def test_a_writer_keeps_memory_for_its_blocks_a_reader_does_not(tmp_path: Path) -> None:
    query = "SELECT current_setting('block_allocator_memory')"
    with Store(tmp_path / "s.duckdb") as store:
        assert store.rows(query) == [("122.0 MiB",)]
    with Store(tmp_path / "s.duckdb", read_only=True) as reader:
        assert reader.rows(query) == [("0 bytes",)]


def test_run_id_is_stored_with_rle_in_every_table_with_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        tables = store.rows(
            "SELECT table_name, sql FROM duckdb_tables() WHERE table_name <> 'ingestion_runs' "
            "ORDER BY table_name"
        )
        assert [name for name, _ in tables] == [
            "error_rules",
            "invalid_rows",
            "kafka_lineage",
            "kafka_offsets",
            "layout_versions",
            "processed_data",
            "pruned_raw",
            "replaced_rows",
            "replayed_rows",
            "replays",
            "schema_versions",
            "source_rows",
            "store_actions",
            "store_settings",
        ]
        without_run_id = ("kafka_offsets", "error_rules", "layout_versions", "schema_versions")
        for name, sql in tables:
            if name not in (*without_run_id, "replays", "store_actions", "store_settings"):
                assert "run_id BIGINT USING COMPRESSION RLE NOT NULL" in sql, name
        store.execute("CHECKPOINT")
        assert store.rows(
            "SELECT DISTINCT compression FROM pragma_storage_info('source_rows') "
            "WHERE column_name = 'run_id' AND segment_type <> 'VALIDITY'"
        ) == [("Constant",)]


def test_a_database_made_before_run_id_used_rle_still_ingests(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute((RUNS_DDL + LAYOUT_1_DDL).replace(" USING COMPRESSION rle", ""))
    con.execute(
        "CREATE TABLE processed_data (run_id BIGINT NOT NULL, row_number BIGINT NOT NULL, "
        "external_id VARCHAR, amount DOUBLE, currency VARCHAR, source_channel VARCHAR, "
        '"timestamp" TIMESTAMP WITH TIME ZONE)'
    )
    con.close()
    with Store(path) as store:
        summary = ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        assert (summary.status, summary.tally.rows) == ("completed", 21)
        assert store.rows("SELECT count(*) FROM raw_data") == [(21,)]


CONSUMER = {"threads": "1", "checkpoint_threshold": "256MB"}


def test_overlapping_sessions_end_in_any_order(tmp_path: Path) -> None:
    """A consumer (on a cursor, as in the API server) and a file run overlap; whichever ends
    first, the other keeps its settings, and the last one out puts back the originals."""
    with Store(tmp_path / "o.duckdb", memory_limit="300MB") as store:
        reader = store.cursor()
        before = settings(store)
        threads = before[0]
        consumer = reader.overriding({**CONSUMER, "threads": "3"})
        consumer.__enter__()
        assert settings(store) == ("3", "286.1 MiB", "244.1 MiB")
        with store.bulk_load():
            assert settings(reader) == ("3", "122.0 MiB", "244.1 MiB")
            consumer.__exit__(None, None, None)  # the consumer stops first
            assert settings(store) == (threads, "122.0 MiB", "16.0 MiB")
        assert settings(store) == before
        with store.bulk_load():
            with reader.overriding(CONSUMER):
                assert settings(store) == ("1", "122.0 MiB", "244.1 MiB")
            assert settings(store) == (threads, "122.0 MiB", "16.0 MiB")
        assert settings(reader) == (threads, "286.1 MiB", "16.0 MiB")
        reader.close()


def test_a_model_chooses_a_columns_compression(tmp_path: Path) -> None:
    with Store(tmp_path / "c.duckdb") as store:
        summary = ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        assert summary.tally.valid == 7
        store.execute("CHECKPOINT")  # a small run sits in the WAL until then
        used = store.rows(
            "SELECT column_name, list(DISTINCT compression ORDER BY compression) "
            "FROM pragma_storage_info('processed_data') "
            "WHERE segment_type = 'VARCHAR' GROUP BY 1 ORDER BY 1"
        )
    chosen = dict(used)
    assert chosen["external_id"] == ["ZSTD"]
    assert chosen["currency"] != ["ZSTD"]


class BadMethod(BaseModel):
    __compression__ = {"key": "squeeze"}
    key: str


class ZstdFloat(BaseModel):
    __compression__ = {"price": "zstd"}
    price: float


@pytest.mark.parametrize(
    ("model", "before", "mentions"),
    [
        (
            BadMethod,
            "schema BadMethod: __compression__ for 'key': DuckDB cannot store VARCHAR with 'squeeze' (",
            "squeeze",
        ),
        (
            ZstdFloat,
            "schema ZstdFloat: __compression__ for 'price': DuckDB cannot store DOUBLE with 'zstd' (",
            "DOUBLE",
        ),
    ],
)
def test_a_compression_duckdb_refuses_is_a_compile_error(
    model: type[BaseModel], before: str, mentions: str
) -> None:
    """Our message around DuckDB's reason (its wording is DuckDB's to change)."""
    with pytest.raises(SchemaError) as raised:
        compile_schema(model, typed=False)
    assert_wraps(str(raised.value), before, ")", mentions=(mentions,))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_a_data_file_given_as_the_database_is_refused(tmp_path: Path, fmt: str) -> None:
    """DuckDB opens an existing CSV, Parquet or JSON file as an in-memory view of it: a run
    there "completed" and kept nothing, and ran again as if new (independent attack). It is
    refused in one line, and the file is left as it was."""
    data = tmp_path / f"old_export.{fmt}"
    target = str(data).replace("'", "''")
    duckdb.sql(f"COPY (SELECT 1 AS a, 'x' AS b) TO '{target}' (FORMAT {fmt})")
    before = data.read_bytes()
    expected = (
        f"error: {data}: not a DuckDB database file (a CSV, Parquet or JSON file there would be "
        "opened as a view of its data in memory, and nothing written would be kept) (--db "
        "names the database; give a data file as the input)\n"
    )
    for argv in (["run", str(DATA / "transactions_sample.csv")], ["summary"]):
        done = cli(*argv, "--db", data)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected)
    assert data.read_bytes() == before


def test_commands_on_what_is_stored_do_not_create_a_database(tmp_path: Path) -> None:
    """prune, compact, delete-run and replay on a mistyped --db created an empty database and
    exited 0 (or said "no run 1" about it); on an empty file the read commands printed
    DuckDB's own wording (independent attack)."""
    missing = tmp_path / "typo.duckdb"
    commands = (
        ["prune", "--raw-older-than", "1"],
        ["compact"],
        ["delete-run", "1"],
        ["replay", "--run", "1"],
    )
    for argv in commands:
        done = cli(*argv, "--db", missing)
        assert (done.returncode, done.stderr) == (
            2,
            f"error: {missing}: no such database file (run an ingestion first or pass --db)\n",
        ), argv
        assert not missing.exists(), argv
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    for argv in (["summary"], ["sql", "SELECT 1"], *commands):
        done = cli(*argv, "--db", empty)
        assert (done.returncode, done.stderr) == (
            2,
            f"error: {empty}: an empty file, not a DuckDB database\n",
        ), argv
    assert empty.stat().st_size == 0


def _tables(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.sql(
            "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name"
        ).fetchall()
        return [(str(n), str(t)) for n, t in rows]
    finally:
        con.close()


STORED_DATA = (
    ["prune", "--raw-older-than", "1"],
    ["compact"],
    ["delete-run", "1"],
    ["replay", "--run", "1"],
)
READS = (
    ["summary"],
    ["sql", "SELECT 1"],
    ["export", "processed", "-o", "out.csv"],
    ["report", "-o", "out.html"],
)


def test_someone_elses_duckdb_database_is_never_written_nor_read_as_ours(tmp_path: Path) -> None:
    """A DuckDB file holding other tables got the engine's tables added by run, prune,
    compact and delete-run, and summary, export and report failed with a traceback
    (independent README audit). Every command refuses it in one line, and it is unchanged."""
    for ddl, shown in (
        ("CREATE TABLE foo (a INTEGER); CREATE VIEW bar AS SELECT 1", "bar, foo"),
        ("CREATE TABLE ingestion_runs (a INTEGER)", "ingestion_runs"),
        # Anywhere, of any kind (a second attack found other schemas and objects taken).
        ("CREATE SCHEMA s; CREATE TABLE s.foo (a INTEGER)", "s, s.foo"),
        ("CREATE SCHEMA s; CREATE VIEW s.v AS SELECT 1", "s, s.v"),
        ("CREATE SEQUENCE sq", "sq"),
        ("CREATE MACRO m(x) AS x + 1", "m"),
        ("CREATE TYPE mood AS ENUM ('a', 'b')", "mood"),
        ("CREATE TABLE layout_versions (a INTEGER)", "layout_versions"),
        (
            "CREATE TABLE layout_versions (version VARCHAR, applied_at TIMESTAMPTZ, note "
            "VARCHAR); INSERT INTO layout_versions VALUES ('abc', now(), 'x')",
            "layout_versions",
        ),
    ):
        other = tmp_path / "theirs.duckdb"
        other.unlink(missing_ok=True)
        con = duckdb.connect(str(other))
        con.execute(ddl)
        con.close()
        before = _tables(other)
        expected = (
            f"error: {other}: not a database of this engine: it holds other objects ({shown}) "
            "(give --db a file of its own (a new name creates one))\n"
        )
        run = ["run", str(DATA / "transactions_sample.csv")]
        for argv in (run, *STORED_DATA, *READS):
            done = cli(*argv, "--db", other, cwd=tmp_path)
            assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), argv
        assert _tables(other) == before
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.html").exists()
    # A table named like layout 1's, with other columns: refused, never read as ours.
    other.unlink()
    con = duckdb.connect(str(other))
    con.execute(
        "CREATE TABLE raw_data (x INTEGER, y VARCHAR); INSERT INTO raw_data VALUES (1, 'a')"
    )
    con.close()
    expected = (
        f"error: {other}: table raw_data has columns x, y, not those of any layout this engine "
        "can migrate (ingest into another --db file; read this one with the engine that made "
        "it)\n"
    )
    for argv in (["run", str(DATA / "transactions_sample.csv")], *STORED_DATA, *READS):
        done = cli(*argv, "--db", other, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), argv


def test_a_database_without_tables_is_taken_only_by_a_run(tmp_path: Path) -> None:
    """A run stopped before it made its tables (SIGTERM at start-up) leaves a DuckDB file with
    none: the read commands failed on it with a traceback. They and the commands on what is
    stored say so in one line; a run takes it as a new database."""
    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()
    expected = (
        f"error: {bare}: the database has no tables yet (no run has been stored in it) (run an "
        "ingestion first or pass another --db)\n"
    )
    for argv in (*STORED_DATA, *READS):
        done = cli(*argv, "--db", bare, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), argv
    assert _tables(bare) == []
    done = cli("run", str(DATA / "transactions_sample.csv"), "--db", bare, "-q")
    assert done.returncode == 0, done.stderr
    assert ("ingestion_runs", "BASE TABLE") in _tables(bare)


def test_the_read_commands_refuse_a_newer_layout(tmp_path: Path) -> None:
    db = tmp_path / "newer.duckdb"
    assert cli("run", str(DATA / "transactions_sample.csv"), "--db", db, "-q").returncode == 0
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO layout_versions VALUES (5, now(), 'from the future')")
    con.close()
    expected = (
        f"error: {db}: the database has layout 5, made by a newer version of the engine (this "
        "one knows layouts up to 4) (use the engine that made it, or another --db file)\n"
    )
    for argv in READS:
        done = cli(*argv, "--db", db, cwd=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", expected), argv


WAL_ONLY = """
import os, sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET checkpoint_threshold = '1TB'")
con.execute("CREATE MACRO m(x) AS x + 1")
os._exit(0)  # no checkpoint: the macro is only in the log
"""


def test_someone_elses_database_is_refused_however_its_path_is_spelled(tmp_path: Path) -> None:
    """``~/...`` and ``file:``, which DuckDB reads and Python's Path did not, once let a run
    write into someone else's database (independent attack): the path is read as DuckDB
    reads it, and whether the file holds nothing is asked of the opened connection (a file
    whose objects are only in its log must not pass for a new one)."""
    other = tmp_path / "theirs.duckdb"
    subprocess.run([sys.executable, "-c", WAL_ONLY, str(other)], check=True)
    assert Path(f"{other}.wal").stat().st_size > 0
    expected = (
        "not a database of this engine: it holds other objects (m) "
        "(give --db a file of its own (a new name creates one))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for spelling in ("~/theirs.duckdb", f"file:{other}", f"file://{other}"):
        done = subprocess.run(
            [sys.executable, "cli.py", "run", str(DATA / "transactions_sample.csv")],
            cwd=ROOT,
            env={**env, "INGEST_DB": spelling},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: {other}: {expected}",  # the file DuckDB would open
        ), spelling
    con = duckdb.connect(str(other), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM duckdb_tables()").fetchall() == [(0,)]
    finally:
        con.close()


def test_a_database_path_is_read_as_duckdb_reads_it(tmp_path: Path) -> None:
    """``run`` wrote through ``~/x`` or ``file:`` and ``summary`` then said no such file."""
    db = tmp_path / "ours.duckdb"
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    for spelling in ("~/ours.duckdb", f"file:{db}", f"file://{db}"):
        for argv in (["run", str(DATA / "transactions_sample.csv"), "-q"], ["summary"]):
            done = subprocess.run(
                [sys.executable, "cli.py", *argv, "--db", spelling],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert (done.returncode, done.stderr) == (0, ""), (spelling, argv)
    assert [p.name for p in tmp_path.iterdir()] == ["ours.duckdb"]
    con = duckdb.connect(str(db), read_only=True)
    try:
        # One run: the same file again through another spelling is the same content.
        assert con.sql("SELECT run_id, status FROM ingestion_runs").fetchall() == [(1, "completed")]
    finally:
        con.close()


def test_a_transaction_a_signal_left_to_the_collector_ends_quietly(tmp_path: Path) -> None:
    """A signal landing while ``with store.transaction()`` entered or left left the generator
    to the garbage collector, which ran it once the connection was closed: `prune` printed
    "Exception ignored in: <generator object Store.transaction>" and a traceback (the
    rollback on a closed connection). Closing the connection rolled the transaction back."""
    store = Store(tmp_path / "t.duckdb")
    block = store.transaction()
    block.__enter__()
    store.execute("CREATE TABLE scratch AS SELECT 1 AS x")
    store.close()

    block.gen.close()  # what the collector does: no ConnectionException any more

    assert query(tmp_path / "t.duckdb", "SELECT count(*) FROM duckdb_tables() WHERE "
                 "table_name = 'scratch'") == [(0,)]  # fmt: skip
