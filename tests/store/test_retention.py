"""``delete-run``, ``prune`` and ``compact`` through the real CLI: what each removes, exactly,
what it keeps, and the space it reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

import engine
from engine.store.retention import prune_raw
from engine.store.store import Store
from tests.conftest import DATA, query
from tests.store.lifecycle import cli, models

SAMPLE = DATA / "transactions_sample.csv"  # 21 rows: 7 valid, 14 invalid
PUBLIC = {
    "runs": "SELECT run_id, status, rows_total FROM ingestion_runs ORDER BY ALL",
    "raw": "SELECT * FROM raw_data ORDER BY ALL",
    "errors": "SELECT * FROM ingestion_errors ORDER BY run_id, row_number",
    "processed": "SELECT * FROM processed_data ORDER BY ALL",
}


def used_bytes(db: Path) -> int:
    """The database's used blocks after a checkpoint, read by DuckDB itself."""
    with duckdb.connect(str(db)) as con:
        con.execute("CHECKPOINT")
        block_size, used = con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()"
        ).fetchone() or (0, 0)
    return int(block_size) * int(used)


def three_runs(tmp_path: Path) -> Path:
    db = tmp_path / "t.duckdb"
    for _ in range(3):
        assert cli("run", SAMPLE, "--db", db, "--force", "--quiet").returncode == 0
    return db


def test_delete_run_removes_every_row_of_the_run_and_nothing_else(tmp_path: Path) -> None:
    db = three_runs(tmp_path)
    before = {name: query(db, sql) for name, sql in PUBLIC.items()}
    used_before = used_bytes(db)
    done = cli("delete-run", "2", "--db", db, "--json")
    assert (done.returncode, done.stderr) == (0, "")
    found = json.loads(done.stdout)
    assert found["note"] == "deleted run 2: 21 raw rows, 7 valid rows, 14 invalid rows"
    # The figures are the file's as DuckDB and the file system see them, the action's own
    # record included (it takes a block); a deletion that frees no whole block reclaims 0.
    assert (found["used_bytes_before"], found["file_bytes_after"]) == (
        used_before,
        db.stat().st_size,
    )
    assert found["bytes_reclaimed"] == max(0, used_before - found["used_bytes_after"])
    after = {name: query(db, sql) for name, sql in PUBLIC.items()}
    for name in ("raw", "errors", "processed"):
        assert after[name] == [row for row in before[name] if row[0] != 2], name
    assert [r[:2] for r in after["runs"]] == [(1, "completed"), (2, "deleted"), (3, "completed")]
    assert query(db, "SELECT action, run_id, note FROM store_actions") == [
        ("delete-run", 2, "deleted run 2: 21 raw rows, 7 valid rows, 14 invalid rows")
    ]
    summary = json.loads(cli("summary", "--db", db, "--json").stdout)
    assert (summary["runs_completed"], summary["rows_total"]) == (2, 42)
    again = cli("delete-run", "2", "--db", db)
    assert (again.returncode, again.stderr) == (2, f"error: {db}: run 2 is deleted\n")
    unknown = cli("delete-run", "7", "--db", db)
    assert (unknown.returncode, unknown.stderr) == (2, f"error: {db}: no run 7 in this database\n")


def test_a_run_that_replaced_rows_is_not_deleted(tmp_path: Path) -> None:
    db, spec = tmp_path / "m.duckdb", models(tmp_path)
    (tmp_path / "a.csv").write_text("rid,value\na,1\nb,2\n")
    (tmp_path / "b.csv").write_text("rid,value\na,3\n")
    for name, mode in (("a", "append"), ("b", "merge")):
        cli("run", tmp_path / f"{name}.csv", "--db", db, "--schema", f"{spec}:V1", "--mode", mode)
    refused = cli("delete-run", "2", "--db", db)
    assert (refused.returncode, refused.stderr) == (
        2,
        f"error: {db}: run 2 replaced rows of earlier runs (1 by merge); deleting it would not "
        "bring them back (only their raw text is kept) (ingest the earlier content again after "
        "deleting it, or keep the run)\n",
    )
    # The replaced run itself can go: its replaced row's record goes with it.
    assert cli("delete-run", "1", "--db", db).returncode == 0
    assert query(db, "SELECT count(*) FROM replaced_rows") == [(0,)]
    assert query(db, "SELECT run_id, rid, value FROM readings") == [(2, "a", 3)]


def test_prune_keeps_a_hash_of_old_valid_rows_raw_text_and_invalid_rows_whole(
    tmp_path: Path,
) -> None:
    db = three_runs(tmp_path)
    raw = dict(
        ((r, n), text) for r, n, _, text in query(db, "SELECT * FROM raw_data WHERE run_id = 1")
    )
    valid = {(r, n) for r, n in query(db, "SELECT run_id, row_number FROM processed_data")}
    young = cli("prune", "--raw-older-than", "1", "--db", db)
    assert young.stdout.startswith("pruned the raw text of 0 valid rows of runs finished before ")
    with Store(db) as store:  # runs 1 and 2 finished two days ago, as far as prune knows
        store.execute(
            "UPDATE ingestion_runs SET finished_at = finished_at - INTERVAL 2 DAY WHERE run_id < 3"
        )
    done = cli("prune", "--raw-older-than", "1", "--db", db, "--json")
    assert json.loads(done.stdout)["note"].startswith("pruned the raw text of 14 valid rows of ")
    hashes = query(db, "SELECT run_id, row_number, raw_sha256 FROM pruned_raw WHERE run_id = 1")
    con = duckdb.connect()
    assert sorted((r, n, h) for r, n, h in hashes) == sorted(
        (r, n, con.execute("SELECT sha256(?)", [raw[(r, n)]]).fetchone()[0])  # type: ignore[index]
        for r, n in raw
        if (r, n) in valid
    )
    assert query(db, "SELECT run_id, count(*) FROM raw_data WHERE raw IS NULL GROUP BY 1") == [
        (1, 7),
        (2, 7),
    ]
    # Invalid rows keep their raw text: replay still reads it.
    assert query(db, "SELECT count(*) FROM ingestion_errors WHERE raw IS NULL") == [(0,)]
    negative = cli("prune", "--raw-older-than", "-1", "--db", db)
    assert (negative.returncode, negative.stderr) == (
        2,
        "error: --raw-older-than must be 0 days or more\n",
    )


def test_compact_rewrites_a_smaller_file_that_reads_the_same(tmp_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    data = tmp_path / "g.csv"
    assert cli("generate", "--rows", "60000", "-o", data).returncode == 0
    for _ in range(2):
        assert cli("run", data, "--db", db, "--force", "--quiet").returncode == 0
    assert cli("delete-run", "1", "--db", db).returncode == 0
    before = {name: query(db, sql) for name, sql in PUBLIC.items()}
    size = db.stat().st_size
    done = cli("compact", "--db", db, "--json")
    found = json.loads(done.stdout)
    assert (done.returncode, found["action"], found["file_bytes_before"]) == (0, "compact", size)
    assert found["file_bytes_after"] == db.stat().st_size  # its own record included
    assert found["bytes_reclaimed"] == size - db.stat().st_size > size // 3
    assert {name: query(db, sql) for name, sql in PUBLIC.items()} == before
    # Sequences carry on: the next run is run 3.
    summary = engine.ingest(SAMPLE, db=db, schema="transactions", force=True)
    assert summary.run_id == 3
    assert not list(tmp_path.glob(".c.duckdb.compacting*"))


def test_prune_counts_from_the_time_given(tmp_path: Path) -> None:
    db = three_runs(tmp_path)
    with Store(db) as store:
        later = prune_raw(store, 1, now=datetime.now(UTC) + timedelta(days=2))
    assert later.note.startswith("pruned the raw text of 21 valid rows of runs finished before ")


def test_raw_compression_is_a_setting_of_the_database(tmp_path: Path) -> None:
    db = tmp_path / "z.duckdb"
    done = cli("run", SAMPLE, "--db", db, "--raw-compression", "zstd", "--quiet")
    assert (done.returncode, done.stderr) == (0, "")
    column = "SELECT sql FROM duckdb_tables() WHERE table_name = 'source_rows'"
    assert "raw VARCHAR USING COMPRESSION ZSTD" in str(query(db, column)[0][0])
    before = {name: query(db, sql) for name, sql in PUBLIC.items()}
    other = cli("run", SAMPLE, "--db", db, "--raw-compression", "uncompressed", "--force")
    assert (other.returncode, other.stderr) == (
        2,
        f"error: {db}: the database stores raw text zstd, not uncompressed (rewrite it with "
        "compact --raw-compression uncompressed, or leave out the option)\n",
    )
    size = db.stat().st_size
    changed = cli("compact", "--db", db, "--raw-compression", "auto")
    assert (changed.returncode, changed.stderr) == (0, "")
    after = db.stat().st_size

    def mb(n: float) -> str:
        return f"{n / 1e6:,.1f} MB"

    reclaimed = mb(size - after) if size - after >= 1e6 else f"{(size - after) / 1e3:,.1f} kB"
    assert changed.stdout == (
        f"rewrote the database; raw text now auto (was zstd); reclaimed "
        f"{reclaimed if size > after else 'nothing'} (the file went from {mb(size)} to "
        f"{mb(after)})\n"
    )
    assert str(query(db, column)[0][0]).endswith(" raw VARCHAR);")
    assert query(db, "SELECT * FROM store_settings") == [("raw_compression", "auto")]
    assert {name: query(db, sql) for name, sql in PUBLIC.items()} == before
    # A run without the option keeps the file's setting.
    assert cli("run", SAMPLE, "--db", db, "--force", "--quiet").returncode == 0


def test_an_action_that_frees_no_block_reclaims_nothing(tmp_path: Path) -> None:
    """Three small runs share their blocks: deleting one frees none of them, and DuckDB's
    checkpoint writes new ones for what it deleted. That is reported as nothing reclaimed
    with the growth shown, never as a negative amount; and a compact of a compact file."""
    db = three_runs(tmp_path)
    before = used_bytes(db)
    done = cli("delete-run", "2", "--db", db)
    after = used_bytes(db)
    assert after > before

    def mb(n: float) -> str:
        return f"{n / 1e6:,.1f} MB"

    assert (done.returncode, done.stdout) == (
        0,
        "deleted run 2: 21 raw rows, 7 valid rows, 14 invalid rows; reclaimed nothing (the "
        f"used blocks went from {mb(before)} to {mb(after)}: DuckDB frees a row group's blocks "
        "only once all of its rows are gone; `compact` rewrites the file)\n",
    )
    assert cli("compact", "--db", db).returncode == 0
    size = db.stat().st_size
    again = cli("compact", "--db", db, "--json")
    found = json.loads(again.stdout)
    assert (found["file_bytes_before"], found["file_bytes_after"]) == (size, db.stat().st_size)
    assert found["bytes_reclaimed"] == max(0, size - db.stat().st_size)


def test_a_compact_that_fails_leaves_no_copy_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted `compact` left its half-written `.<db>.compacting` (274 KB) until the
    next compact that succeeded (an independent attack); the database is untouched."""
    db = three_runs(tmp_path)
    before = db.read_bytes()
    original = Store.execute

    def failing(store: Store, sql: str, parameters: list[object] | None = None) -> None:
        if sql.endswith("TO __compacted (DATA)"):
            raise engine.errors.Interrupted(2, "SIGINT")
        original(store, sql, parameters)

    monkeypatch.setattr(Store, "execute", failing)
    with pytest.raises(engine.errors.Interrupted):
        engine.compact(db)

    assert sorted(p.name for p in tmp_path.iterdir() if "compacting" in p.name) == []
    assert db.read_bytes() == before


def test_compact_keeps_the_files_permissions(tmp_path: Path) -> None:
    """The copy DuckDB wrote had the umask's mode: a database of mode 600 became readable by
    everyone once compacted (a sixth attack)."""
    db = three_runs(tmp_path)
    db.chmod(0o600)

    engine.compact(db)

    assert oct(db.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("call", ["replay", "prune_raw", "delete_run"])
def test_the_python_calls_refuse_a_database_their_store_just_created(
    tmp_path: Path, call: str
) -> None:
    """A mistyped path in a script: ``engine.Store(path)`` creates the file, and replay and
    prune reported nothing done (delete_run said "no run 1"), where the commands say "no such
    database file" (independent review)."""
    from pydantic import BaseModel

    class Item(BaseModel):
        name: str

    typo = tmp_path / "typo.duckdb"
    with engine.Store(typo) as store, pytest.raises(engine.StoreError) as refused:
        if call == "replay":
            engine.replay(store, Item)
        elif call == "prune_raw":
            engine.prune_raw(store, 0)
        else:
            engine.delete_run(store, 1)
    assert str(refused.value) == (
        f"{typo}: no such database file (this Store's open created it) (check the path; open "
        "it with Store(path, create=False))"
    )
    typo.unlink()
    with pytest.raises(engine.StoreError) as unopened:
        engine.Store(typo, create=False)
    assert str(unopened.value) == (
        f"{typo}: no such database file (run an ingestion first or pass db)"
    )
    assert not typo.exists()


def test_a_store_that_created_its_database_and_ingested_may_prune(tmp_path: Path) -> None:
    path = tmp_path / "fresh.duckdb"
    with engine.Store(path) as store:
        run = engine.ingest(
            [{"external_id": "T1", "amount": 1.5, "currency": "USD", "source_channel": "web"}],
            db=store,
            schema="transactions",
        )
        assert store.created and run.tally.valid == 1
        assert engine.prune_raw(store, 0).note.startswith("pruned the raw text of 1 valid row")
