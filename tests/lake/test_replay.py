"""``replay --lake``: the same moves as on a DuckDB file (typed rows, errors left, run
counts), published as one batch; a second replay moves nothing, and replays at once move
each row once."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine
import engine.lake.replay as replaying_lake
from engine.lake.location import Lake
from engine.lake.writer import commit_batch
from engine.schemas import load_schema
from tests.inprocess import run_cli
from tests.lake.conftest import CLI, ROOT, db_rows, lake_rows

Cli = Callable[..., subprocess.CompletedProcess[str]]

MODELS = """
from pydantic import BaseModel, Field


class Strict(BaseModel):
    __table_name__ = "items"
    key: int
    name: str
    qty: int = Field(ge=0)


class Fixed(BaseModel):  # negative quantities down to -5 pass now
    __table_name__ = "items"
    key: int
    name: str
    qty: int = Field(ge=-5)


class Keyed(BaseModel):
    __table_name__ = "keyed"
    __unique__ = ("key",)
    key: int
    qty: int = Field(ge=0)


class KeyedFixed(BaseModel):
    __table_name__ = "keyed"
    __unique__ = ("key",)
    key: int
    qty: int = Field(ge=-5)
"""
# A run's index among the runs (lake run ids and a file's both grow with each run).
RUN = "(SELECT count(*) FROM ingestion_runs AS o WHERE o.run_id <= {col})"
COMPARED = {
    "items": f"SELECT {RUN.format(col='t.run_id')}, row_number, key, name, qty FROM items AS t "
    "ORDER BY ALL",
    "ingestion_errors": f"SELECT {RUN.format(col='e.run_id')}, row_number, raw "
    "FROM ingestion_errors AS e ORDER BY ALL",
    "error_details": f"SELECT {RUN.format(col='d.run_id')}, row_number, loc, type "
    "FROM error_details AS d ORDER BY ALL",
    "ingestion_runs": "SELECT status, rows_total, rows_valid, rows_invalid "
    "FROM ingestion_runs ORDER BY run_id",
    "replayed_rows": f"SELECT {RUN.format(col='p.run_id')}, row_number, raw "
    "FROM replayed_rows AS p ORDER BY ALL",
    "replays": "SELECT target_table, len(runs), where_sql, rows_checked, rows_moved "
    "FROM replays ORDER BY replayed_at",
}


def write_csv(path: Path, rows: int, seed: int) -> list[tuple[str, str, str]]:
    """Rows of which some have a key that is not an int, some a quantity from -9 to -1."""
    rng = random.Random(seed)
    records = [
        (
            str(rng.randrange(1000)) if rng.random() > 0.1 else "x",
            f"n{rng.randrange(100)}",
            str(rng.randint(-9, 30)),
        )
        for _ in range(rows)
    ]
    path.write_text("key,name,qty\n" + "".join(f"{k},{n},{q}\n" for k, n, q in records))
    return records


def write_ndjson(path: Path, rows: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    records = [(str(rng.randrange(1000)), f"j{i}", str(rng.randint(-9, 30))) for i in range(rows)]
    path.write_text(
        "".join(json.dumps({"key": int(k), "name": n, "qty": int(q)}) + "\n" for k, n, q in records)
    )
    return records


def passes(record: tuple[str, str, str], low: int) -> bool:
    key, _, qty = record
    return key.lstrip("-").isdigit() and int(qty) >= low


def setup(tmp_path: Path, cli: Cli) -> tuple[Path, Lake, Path, list[list[tuple[str, str, str]]]]:
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    files = [
        (tmp_path / "a.csv", write_csv(tmp_path / "a.csv", 300, 1)),
        (tmp_path / "b.ndjson", write_ndjson(tmp_path / "b.ndjson", 120, 2)),
        (tmp_path / "c.csv", write_csv(tmp_path / "c.csv", 200, 3)),
    ]
    for path, _ in files:
        for target in (["--db", str(db)], ["--lake", lake.uri]):
            done = cli("run", str(path), *target, "--schema", f"{spec}:Strict", "-q")
            assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return spec, lake, db, [records for _, records in files]


def lake_runs(lake: Lake) -> list[int]:
    return [int(str(r[0])) for r in lake_rows(lake, "SELECT run_id FROM ingestion_runs ORDER BY 1")]


def test_replay_moves_what_a_database_moves(tmp_path: Path, cli: Cli) -> None:
    spec, lake, db, files = setup(tmp_path, cli)
    runs = lake_runs(lake)
    before = lake_rows(lake, "SELECT rows_valid, rows_invalid FROM ingestion_runs ORDER BY run_id")
    assert before == [
        (sum(passes(r, 0) for r in f), sum(not passes(r, 0) for r in f)) for f in files
    ]
    # Run 1 only, then the rest with --where, then everything left.
    for args in (
        ["--run", str(runs[0])],
        ["--run", str(runs[1]), "--run", str(runs[2]), "--where", "raw LIKE '%,n1%'"],
        ["--all-failed"],
    ):
        outcomes = []
        for target in (["--db", str(db)], ["--lake", lake.uri]):
            db_args = args if target[0] == "--lake" else _db_args(args, runs)
            done = cli("replay", *db_args, *target, "--schema", f"{spec}:Fixed", "--json")
            assert (done.returncode, done.stderr) == (0, ""), done.stderr
            outcome = json.loads(done.stdout)
            outcomes.append((outcome["rows_checked"], outcome["rows_moved"], len(outcome["runs"])))
        assert outcomes[0] == outcomes[1]
        for name, query in COMPARED.items():
            assert lake_rows(lake, query) == db_rows(db, query), (args, name)
    # Exactly the rows Fixed accepts among those Strict refused are moved, in their rows.
    expected = [
        (n + 1, row + 1, int(r[0]), r[1], int(r[2]))
        for n, f in enumerate(files)
        for row, r in enumerate(f)
        if passes(r, -5)
    ]
    assert lake_rows(lake, COMPARED["items"]) == sorted(expected)
    # The version that validated the moved rows is recorded, as on a DuckDB file.
    versions = "SELECT schema_name, version FROM schema_versions ORDER BY version"
    assert lake_rows(lake, versions) == db_rows(db, versions) == [("Strict", 1), ("Fixed", 2)]
    fingerprints = "SELECT count(*) FROM replays JOIN schema_versions USING (schema_fingerprint)"
    assert lake_rows(lake, fingerprints) == [(3,)]
    assert lake_rows(
        lake, "SELECT rows_valid, rows_invalid FROM ingestion_runs ORDER BY run_id"
    ) == [(sum(passes(r, -5) for r in f), sum(not passes(r, -5) for r in f)) for f in files]
    # A second replay moves nothing (the rows left still fail).
    again = cli("replay", "--all-failed", "--lake", lake.uri, "--schema", f"{spec}:Fixed", "--json")
    left = sum(not passes(r, -5) for f in files for r in f)
    assert json.loads(again.stdout)["rows_moved"] == 0
    assert json.loads(again.stdout)["rows_checked"] == left
    assert lake_rows(lake, "SELECT count(*) FROM items") == [(len(expected),)]


def _db_args(args: list[str], runs: list[int]) -> list[str]:
    """The same replay on the DuckDB file, whose run ids are 1, 2, 3."""
    return [str(runs.index(int(a)) + 1) if a.isdigit() else a for a in args]


def test_a_replay_moves_nothing_the_second_time_and_stays_invisible_before_commit(
    tmp_path: Path, cli: Cli
) -> None:
    spec, lake, _db, files = setup(tmp_path, cli)
    run = lake_runs(lake)[0]
    first = cli("replay", "--run", str(run), "--lake", lake.uri, "--schema", f"{spec}:Fixed")
    moved = sum(passes(r, -5) and not passes(r, 0) for r in files[0])
    invalid = sum(not passes(r, 0) for r in files[0])
    assert first.returncode == 0, first.stderr
    assert first.stdout.endswith(
        f": {moved:,} of {invalid:,} invalid rows now pass, moved into items; "
        f"{invalid - moved:,} still invalid\n"
    )
    second = cli("replay", "--run", str(run), "--lake", lake.uri, "--schema", f"{spec}:Fixed")
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout.endswith(
        f": 0 of {invalid - moved:,} invalid rows now pass, moved into items; "
        f"{invalid - moved:,} still invalid\n"
    )
    assert lake_rows(lake, "SELECT count(*), count(DISTINCT row_number) FROM replayed_rows") == [
        (moved, moved)
    ]
    assert lake_rows(lake, "SELECT count(*) FROM replays") == [(2,)]


def test_a_replay_not_committed_shows_nothing(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows a replay appended whose manifest rows never committed (a writer that died
    between the two) are orphans: no view changes."""
    spec, lake, _db, _files = setup(tmp_path, cli)
    views = [*COMPARED.values(), "SELECT * FROM ingestion_runs ORDER BY run_id"]
    before = [lake_rows(lake, q) for q in views]
    monkeypatch.setattr(replaying_lake, "commit_batch", lambda *_a, **_k: {})
    died = engine.replay(lake, load_schema(f"{spec}:Fixed"), runs=lake_runs(lake)[:1])
    assert died.moved > 0
    assert [lake_rows(lake, q) for q in views] == before


def test_replays_at_once_move_each_row_once(tmp_path: Path, cli_env: dict[str, str]) -> None:
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    lake = Lake(str(tmp_path / "lake"))
    records = write_csv(tmp_path / "a.csv", 400, 7)
    done = run_cli(["run", str(tmp_path / "a.csv"), "--lake", lake.uri, "--schema",
                    f"{spec}:Strict"], env=cli_env, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = lake_runs(lake)[0]
    command = [*CLI, "replay", "--run", str(run), "--lake", lake.uri, "--schema",
               f"{spec}:Fixed", "--json"]  # fmt: skip
    procs = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outs]
    moved = sum(passes(r, -5) and not passes(r, 0) for r in records)
    assert sum(json.loads(o)["rows_moved"] for o, _ in outs) == moved
    assert lake_rows(lake, "SELECT count(*), count(DISTINCT row_number) FROM items") == [
        (sum(passes(r, -5) for r in records),) * 2
    ]
    assert lake_rows(lake, "SELECT rows_valid, rows_invalid FROM ingestion_runs") == [
        (sum(passes(r, -5) for r in records), sum(not passes(r, -5) for r in records))
    ]
    assert lake_rows(lake, "SELECT count(*) FROM ingestion_errors") == [
        (sum(not passes(r, -5) for r in records),)
    ]


def test_the_api_replays_a_lake_and_a_stored_key_stays_invalid(tmp_path: Path) -> None:
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    keyed, fixed = load_schema(f"{spec}:Keyed"), load_schema(f"{spec}:KeyedFixed")
    (tmp_path / "k.csv").write_text("key,qty\n1,5\n2,-1\n1,-2\n3,-9\n4,-3\n")
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "k.duckdb"
    for target in (lake, db):
        engine.ingest(tmp_path / "k.csv", db=target, schema=keyed)
    with engine.Store(db) as store:
        on_db = engine.replay(store, fixed, runs=None)
    on_lake = engine.replay(lake, fixed, runs=None)
    # 2 and 4 pass; 1 (its key stored) and 3 (-9) stay invalid.
    assert (on_lake.checked, on_lake.moved) == (on_db.checked, on_db.moved) == (4, 2)
    query = "SELECT row_number, key, qty FROM keyed ORDER BY ALL"
    assert lake_rows(lake, query) == db_rows(db, query) == [(1, 1, 5), (2, 2, -1), (5, 4, -3)]
    query = "SELECT row_number, raw FROM ingestion_errors ORDER BY ALL"
    assert lake_rows(lake, query) == db_rows(db, query) == [(3, "1,-2"), (4, "3,-9")]


def test_replay_from_an_edited_export(tmp_path: Path, cli: Cli) -> None:
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    (tmp_path / "k.csv").write_text("key,qty\n1,5\n2,-1\n3,-9\n")
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "k.duckdb"
    for target in (["--db", str(db)], ["--lake", lake.uri]):
        done = cli("run", str(tmp_path / "k.csv"), *target, "--schema", f"{spec}:Keyed", "-q")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
    for target, run in ((["--db", str(db)], 1), (["--lake", lake.uri], lake_runs(lake)[0])):
        edits = tmp_path / f"edits{run}.csv"
        edits.write_text(f'run_id,row_number,raw\n{run},3,"3,9"\n{run},1,"1,5"\n')
        done = cli("replay", "--from", str(edits), *target, "--schema", f"{spec}:Keyed", "--json")
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        outcome = json.loads(done.stdout)
        assert (outcome["rows_checked"], outcome["rows_moved"]) == (1, 1)
        assert outcome["edits_not_replayed"] == 1
    for query in (
        "SELECT row_number, key, qty FROM keyed ORDER BY ALL",
        "SELECT row_number, raw FROM ingestion_errors ORDER BY ALL",
        "SELECT row_number, raw FROM replayed_rows ORDER BY ALL",
        "SELECT rows_valid, rows_invalid FROM ingestion_runs",
    ):
        assert lake_rows(lake, query) == db_rows(db, query), query
    assert lake_rows(lake, "SELECT row_number, key, qty FROM keyed ORDER BY ALL") == [
        (1, 1, 5),
        (3, 3, 9),
    ]
    assert lake_rows(lake, "SELECT row_number, raw FROM replayed_rows") == [(3, "3,9")]


def test_a_key_moved_from_one_run_stays_invalid_in_the_next(tmp_path: Path) -> None:
    """One replay of two runs (an append, then a merge) sharing keys: as on a DuckDB file,
    a row of the second run whose key the first run's row moves in the same replay stays
    invalid (the lake once checked each run against the stored rows only, and moved both)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    keyed, fixed = load_schema(f"{spec}:Keyed"), load_schema(f"{spec}:KeyedFixed")
    (tmp_path / "a.csv").write_text("key,qty\n1,5\n2,-1\n3,-2\n4,-9\n5,-3\n")
    (tmp_path / "b.csv").write_text("key,qty\n2,-4\n3,7\n6,-1\n1,-2\n5,-3\n6,-5\n")
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "k.duckdb"
    for target in (lake, db):
        engine.ingest(tmp_path / "a.csv", db=target, schema=keyed)
        engine.ingest(tmp_path / "b.csv", db=target, schema=keyed, mode="merge")
    with engine.Store(db) as store:
        on_db = engine.replay(store, fixed, runs=None)
    on_lake = engine.replay(lake, fixed, runs=None)
    # a: 2 and 5 move (3's key is b's valid row, 4 fails); b: 6 (its first) moves; 2 and 5
    # (moved from a), 1 (stored) and its second 6 stay.
    assert (on_lake.checked, on_lake.moved) == (on_db.checked, on_db.moved) == (9, 3)
    assert sorted(on_lake.by_run.values()) == sorted(on_db.by_run.values()) == [(4, 2), (5, 1)]
    typed = f"SELECT {RUN.format(col='t.run_id')}, row_number, key, qty FROM keyed AS t"
    assert sorted(lake_rows(lake, typed)) == sorted(db_rows(db, typed)) == [
        (1, 1, 1, 5), (1, 2, 2, -1), (1, 5, 5, -3), (2, 2, 3, 7), (2, 3, 6, -1)
    ]  # fmt: skip
    errors = f"SELECT {RUN.format(col='e.run_id')}, row_number FROM ingestion_errors AS e"
    assert sorted(lake_rows(lake, errors)) == sorted(db_rows(db, errors)) == [
        (1, 3), (1, 4), (2, 1), (2, 4), (2, 5), (2, 6)
    ]  # fmt: skip
    counts = "SELECT rows_valid, rows_invalid FROM ingestion_runs ORDER BY run_id"
    assert lake_rows(lake, counts) == db_rows(db, counts) == [(3, 2), (2, 4)]
    assert lake_rows(lake, "SELECT count(*) FROM replayed_rows") == [(3,)]


def test_replays_of_runs_sharing_keys_at_once_move_each_key_once(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """Two replays at once, of the two runs of the test above: into a table with a unique
    key, one commits and the other reads again, so a key moves once (whichever runs first:
    3 rows moved in all, as one replay of both moves)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    keyed = load_schema(f"{spec}:Keyed")
    (tmp_path / "a.csv").write_text("key,qty\n1,5\n2,-1\n3,-2\n4,-9\n5,-3\n")
    (tmp_path / "b.csv").write_text("key,qty\n2,-4\n3,7\n6,-1\n1,-2\n5,-3\n6,-5\n")
    lake = Lake(str(tmp_path / "lake"))
    engine.ingest(tmp_path / "a.csv", db=lake, schema=keyed)
    engine.ingest(tmp_path / "b.csv", db=lake, schema=keyed, mode="merge")
    procs = [
        subprocess.Popen(
            [*CLI, "replay", "--run", str(run), "--lake", lake.uri, "--schema",
             f"{spec}:KeyedFixed", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env, cwd=ROOT,
        )
        for run in lake_runs(lake)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert sum(json.loads(o)["rows_moved"] for o, _ in outs) == 3
    assert lake_rows(lake, "SELECT count(*), count(DISTINCT key) FROM keyed") == [(5, 5)]
    assert lake_rows(lake, "SELECT sum(rows_valid), sum(rows_invalid) FROM ingestion_runs") == [
        (5, 6)
    ]


def test_a_merge_committed_during_a_replay_makes_it_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge run that commits between a replay's read and its commit (it computed what it
    replaces without the replay's rows): the replay finds the table's key moved on and
    reads again, so a key the merge stored stays invalid (it was stored twice before)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    keyed, fixed = load_schema(f"{spec}:Keyed"), load_schema(f"{spec}:KeyedFixed")
    (tmp_path / "a.csv").write_text("key,qty\n1,5\n2,-1\n3,-2\n4,-9\n5,-3\n")
    (tmp_path / "b.csv").write_text("key,qty\n2,-4\n3,7\n6,-1\n1,-2\n5,-3\n6,-5\n")
    lake = Lake(str(tmp_path / "lake"))
    engine.ingest(tmp_path / "a.csv", db=lake, schema=keyed)
    commits: list[object] = []

    def merge_first(*args: Any, **kwargs: Any) -> dict[str, int]:
        if not commits:
            engine.ingest(tmp_path / "b.csv", db=lake, schema=keyed, mode="merge")
        commits.append(args)
        return commit_batch(*args, **kwargs)

    monkeypatch.setattr(replaying_lake, "commit_batch", merge_first)
    done = engine.replay(lake, fixed, runs=lake_runs(lake)[:1])
    assert (len(commits), done.checked, done.moved) == (2, 4, 2)  # 3 is b's now, 4 fails
    typed = f"SELECT {RUN.format(col='t.run_id')}, row_number, key, qty FROM keyed AS t"
    assert sorted(lake_rows(lake, typed)) == [
        (1, 1, 1, 5),
        (1, 2, 2, -1),
        (1, 5, 5, -3),
        (2, 2, 3, 7),
    ]
