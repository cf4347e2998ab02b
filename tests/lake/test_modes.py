"""``--mode replace`` and ``--mode merge`` on a lake: the same tables as on a DuckDB file,
the latest valid row of each key (checked against a dict built in Python), and writers at
once that neither lose nor duplicate a row."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.lake import runs
from engine.lake.location import Lake
from engine.lake.writer import commit_batch
from tests.lake.conftest import CLI, ROOT, db_rows, lake_rows

Cli = Callable[..., subprocess.CompletedProcess[str]]

MODEL = """
from pydantic import BaseModel, Field


class Item(BaseModel):
    __table_name__ = "items"
    __unique__ = ("key",)
    key: int
    name: str
    qty: int = Field(ge=0)
"""
# A run's index among the runs (lake run ids and a file's both grow with each run).
RUN = "(SELECT count(*) FROM ingestion_runs AS o WHERE o.run_id <= {col})"
COMPARED = {
    "items": f"SELECT {RUN.format(col='t.run_id')}, row_number, key, name, qty FROM items AS t "
    "ORDER BY ALL",
    "replaced_rows": f"SELECT target_table, {RUN.format(col='r.run_id')}, row_number, "
    f"{RUN.format(col='r.by_run_id')}, by_row_number, how FROM replaced_rows AS r ORDER BY ALL",
    "ingestion_runs": "SELECT load_mode, status, rows_total, rows_valid, rows_invalid "
    "FROM ingestion_runs ORDER BY run_id",
}


def write_items(path: Path, rows: int, seed: int, keys: int = 40) -> list[dict[str, str]]:
    """CSV rows with repeated keys, some not an int, some with a negative quantity."""
    rng = random.Random(seed)
    records = []
    for _ in range(rows):
        key = str(rng.randrange(keys)) if rng.random() > 0.05 else "x"
        records.append(
            {"key": key, "name": f"n{rng.randrange(1000)}", "qty": str(rng.randint(-2, 30))}
        )
    path.write_text(
        "key,name,qty\n" + "".join(f"{r['key']},{r['name']},{r['qty']}\n" for r in records)
    )
    return records


def latest_valid(runs: list[tuple[str, list[dict[str, str]]]]) -> dict[int, tuple[str, int]]:
    """What the table must hold: per key the latest valid row of a merge; a replace starts
    over and, as an append, keeps a key's first valid row (a later one is a duplicate)."""
    table: dict[int, tuple[str, int]] = {}
    for mode, records in runs:
        if mode == "replace":
            table = {}
        for r in records:
            valid = r["key"].isdigit() and int(r["qty"]) >= 0
            if valid and (mode == "merge" or int(r["key"]) not in table):
                table[int(r["key"])] = (r["name"], int(r["qty"]))
    return table


def passes(record: dict[str, str]) -> bool:
    return record["key"].isdigit() and int(record["qty"]) >= 0


def valid_rows(mode: str, records: list[dict[str, str]]) -> int:
    """A run's valid rows: in a merge all that pass the model, else the first of each key."""
    keys = [r["key"] for r in records if r["key"].isdigit() and int(r["qty"]) >= 0]
    return len(keys) if mode == "merge" else len(set(keys))


def test_replace_and_merge_store_what_a_database_stores(tmp_path: Path, cli: Cli) -> None:
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    plan = ["merge", "merge", "replace", "merge", "merge"]
    runs = []
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    for n, mode in enumerate(plan):
        data = tmp_path / f"part{n}.csv"
        runs.append((mode, write_items(data, 150 + 10 * n, seed=n)))
        for target in (["--db", str(db)], ["--lake", lake.uri]):
            done = cli("run", str(data), *target, "--schema", f"{spec}:Item", "--mode", mode, "-q")
            assert (done.returncode, done.stderr) == (0, ""), done.stderr
    for name, query in COMPARED.items():
        assert lake_rows(lake, query) == db_rows(db, query), name
    expected = latest_valid(runs)
    found = lake_rows(lake, "SELECT key, name, qty FROM items ORDER BY key")
    assert found == [(k, *v) for k, v in sorted(expected.items())]
    assert lake_rows(lake, "SELECT how, count(*) FROM replaced_rows GROUP BY 1 ORDER BY 1") == (
        db_rows(db, "SELECT how, count(*) FROM replaced_rows GROUP BY 1 ORDER BY 1")
    )
    # The same content again: in these modes skipped only while its run is the latest.
    again = cli("run", str(tmp_path / "part4.csv"), "--lake", lake.uri, "--schema",
                f"{spec}:Item", "--mode", "merge")  # fmt: skip
    assert again.stdout.startswith(f"skipped {tmp_path / 'part4.csv'}: already ingested as run")
    redo = cli("run", str(tmp_path / "part2.csv"), "--lake", lake.uri, "--schema",
               f"{spec}:Item", "--mode", "replace", "--json")  # fmt: skip
    assert json.loads(redo.stdout)["status"] == "completed"
    expected = latest_valid([runs[2]])
    found = lake_rows(lake, "SELECT key, name, qty FROM items ORDER BY key")
    assert found == [(k, *v) for k, v in sorted(expected.items())]


# Each error, its run and the run its message names as indices among the runs.
ERRORS = (
    f"SELECT {RUN.format(col='e.run_id')}, row_number, type, input, CASE WHEN type = "
    "'duplicate' THEN regexp_replace(msg, 'run [0-9]+,', 'run ' || "
    + RUN.format(col="TRY_CAST(regexp_extract(msg, 'run ([0-9]+),', 1) AS BIGINT)")
    + " || ',') ELSE msg END FROM error_details AS e ORDER BY ALL"
)


def test_appends_check_the_key_across_runs_as_a_database_does(tmp_path: Path, cli: Cli) -> None:
    """A row whose key an earlier run stored is a duplicate naming that row, on a lake as on a
    DuckDB file, through merges and replaces (before 2026-12-06 a lake checked a run's own
    rows only, and named a run's own duplicates by its staging file's run id)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    plan = ["append", "append", "merge", "append", "replace", "append", "append"]
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    for n, mode in enumerate(plan):
        data = tmp_path / f"part{n}.csv"
        write_items(data, 120, seed=100 + n, keys=90)
        for target in (["--db", str(db)], ["--lake", lake.uri]):
            done = cli("run", str(data), *target, "--schema", f"{spec}:Item", "--mode", mode, "-q")
            assert (done.returncode, done.stderr) == (0, ""), done.stderr
    for name, query in {**COMPARED, "errors": ERRORS}.items():
        assert lake_rows(lake, query) == db_rows(db, query), name
    # Duplicates across runs there are, and each names a row of an earlier run.
    across = "SELECT count(*) FROM error_details WHERE type = 'duplicate' AND msg NOT LIKE "
    found = lake_rows(lake, across + "'%run ' || run_id || ',%'")
    assert found == db_rows(db, across + "'%run ' || run_id || ',%'")
    assert int(str(found[0][0])) > 50
    assert lake_rows(lake, "SELECT count(*) - count(DISTINCT key) FROM items") == [(0,)]


def test_merge_needs_a_unique_key(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    sample = str(ROOT / "data" / "transactions_sample.csv")
    merged = cli("run", sample, "--lake", lake, "--mode", "merge")
    assert merged.returncode == 2
    assert merged.stderr.startswith("error: mode merge upserts on the model's unique key")


def conserved(lake: Lake) -> None:
    """No row lost, none counted twice: each run's valid rows are in the table or replaced."""
    assert lake_rows(
        lake,
        "SELECT count(*) FROM ingestion_runs AS r WHERE status <> 'completed' OR rows_valid <> "
        "(SELECT count(*) FROM items AS t WHERE t.run_id = r.run_id) + "
        "(SELECT count(*) FROM replaced_rows AS p WHERE p.run_id = r.run_id)",
    ) == [(0,)]
    for table in ("items", "replaced_rows"):
        assert lake_rows(
            lake, f"SELECT count(*) - count(DISTINCT (run_id, row_number)) FROM {table}"
        ) == [(0,)]


@pytest.mark.parametrize(
    "modes", [("merge", "append"), ("replace", "append"), ("merge", "merge"), ("append", "append")]
)
def test_writers_at_once_neither_lose_nor_duplicate_rows(
    tmp_path: Path, cli_env: dict[str, str], modes: tuple[str, str]
) -> None:
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    lake = Lake(str(tmp_path / "lake"))
    writers, written = [], []
    for w, mode in enumerate(modes):
        files = []
        for n in range(4):
            path = tmp_path / f"w{w}-{n}.csv"
            written.append((mode, write_items(path, 200, seed=10 * w + n, keys=60)))
            files.append(str(path))
        writers.append(
            subprocess.Popen(
                [
                    *CLI,
                    "run",
                    *files,
                    "--lake",
                    lake.uri,
                    "--schema",
                    f"{spec}:Item",
                    "--mode",
                    mode,
                    "-q",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli_env,
                cwd=ROOT,
            )
        )
    for writer in writers:
        _out, err = writer.communicate(timeout=300)
        assert (writer.returncode, err) == (0, ""), err
    assert lake_rows(lake, "SELECT count(*), sum(rows_total) FROM ingestion_runs") == [(8, 1_600)]
    conserved(lake)
    # Whoever commits first, a key is stored once (writers of a keyed table take turns).
    assert lake_rows(lake, "SELECT count(*) - count(DISTINCT key) FROM items") == [(0,)]
    passing = [r for _m, records in written for r in records if passes(r)]
    keys = len({r["key"] for r in passing})
    stored = int(str(lake_rows(lake, "SELECT count(*) FROM items")[0][0]))
    if "replace" in modes:  # what a replace removed, a later append may have stored again
        assert 0 < stored <= keys
    else:  # every key that passed the model, once
        assert stored == keys
    # A run's invalid rows: those that failed the model, and those repeating a stored key.
    assert lake_rows(
        lake,
        "SELECT count(DISTINCT (run_id, row_number)) FROM error_details WHERE type <> 'duplicate'",
    ) == [(1_600 - len(passing),)]
    assert lake_rows(
        lake, "SELECT count(*) FROM ingestion_runs WHERE rows_valid + rows_invalid <> rows_total"
    ) == [(0,)]
    if modes == ("append", "append"):  # each passing row stored, or a duplicate
        assert lake_rows(
            lake,
            "SELECT (SELECT sum(rows_valid) FROM ingestion_runs), "
            "(SELECT count(*) FROM error_details WHERE type = 'duplicate')",
        ) == [(keys, len(passing) - keys)]


def test_commands_a_lake_does_not_take_yet_refuse_in_one_line(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    for command in (
        ["delete-run", "1"],
        ["prune", "--raw-older-than", "3"],
        ["compact"],
    ):
        refused = cli(*command, "--lake", lake)
        name = " ".join(c for c in command[:2] if not c.startswith("-") and not c.isdigit())
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"error: {name} does not work on a lake yet (--lake {lake}): use it on a DuckDB "
            "file (--db); a lake's housekeeping is `lake compact` and `lake vacuum`\n",
        )
    assert not (tmp_path / "lake").exists() and not (ROOT / "reporting.duckdb").exists()


def test_the_api_merges_and_replaces_into_a_lake(tmp_path: Path) -> None:
    from tests.api.conftest import start_server

    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("key,name,qty\n1,a,1\n2,b,2\n")
    (data / "b.csv").write_text("key,name,qty\n2,bb,3\n3,c,-1\n3,cc,4\n")
    lake = Lake(str(tmp_path / "lake"))
    server = start_server(
        tmp_path, "--lake", lake.uri, "--data-dir", str(data), "--schema", f"{spec}:Item"
    )
    try:
        with server.client() as client:
            for name, mode in (("a.csv", "merge"), ("b.csv", "merge")):
                done = client.post("/api/v1/ingest", params={"file_path": name, "mode": mode})
                assert done.json()["status"] == "completed", done.text
            assert lake_rows(lake, "SELECT key, name, qty FROM items ORDER BY key") == [
                (1, "a", 1),
                (2, "bb", 3),
                (3, "cc", 4),
            ]
            replaced = client.post(
                "/api/v1/ingest", params={"file_path": "a.csv", "mode": "replace"}
            )
            assert replaced.json()["status"] == "completed", replaced.text
    finally:
        server.stop()
    assert lake_rows(lake, "SELECT key, name, qty FROM items ORDER BY key") == [
        (1, "a", 1),
        (2, "b", 2),
    ]
    assert lake_rows(
        lake,
        "SELECT load_mode, how, count(*) FROM replaced_rows JOIN ingestion_runs "
        "AS g ON by_run_id = g.run_id GROUP BY ALL ORDER BY ALL",
    ) == [("merge", "merge", 1), ("replace", "replace", 3)]


def test_an_empty_lake_is_refused_not_taken_for_the_default_database(
    tmp_path: Path, cli: Cli
) -> None:
    data = tmp_path / "one.csv"
    data.write_text(
        "external_id,amount,currency,source_channel,timestamp\nA1,1.5,USD,web,2024-01-01\n"
    )
    for command in (["run", str(data)], ["summary"], ["sql", "SELECT 1"]):
        for empty in ("", "  "):
            refused = cli(*command, "--lake", empty)
            assert (refused.returncode, refused.stdout, refused.stderr) == (
                2,
                "",
                "error: --lake is empty: give a directory or s3://bucket/prefix, or leave "
                "--lake out\n",
            )
    assert not (ROOT / "reporting.duckdb").exists()


def test_a_keyed_append_after_a_run_that_died_before_its_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that wrote its typed rows' files but died before its manifest commit leaves the
    table's files with no committed run: the next keyed append checks against no rows (it
    failed with "Table with name items does not exist" when writers ran at once)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    lake = Lake(str(tmp_path / "lake"))
    data = tmp_path / "a.csv"
    data.write_text("key,name,qty\n1,a,1\n2,b,2\n2,c,3\n")
    other = engine.ingest(ROOT / "data" / "transactions_sample.csv", db=lake, schema="transactions")
    assert other.status == "completed"  # the lake has a manifest, with no run into items

    def dies(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # as a kill between the data and the manifest commit

    with monkeypatch.context() as patched:
        patched.setattr(runs, "commit_batch", dies)
        with pytest.raises(KeyboardInterrupt):
            engine.ingest(data, db=lake, schema=f"{spec}:Item")
    assert (tmp_path / "lake" / "items").is_dir()
    assert lake_rows(lake, "SELECT count(*) FROM ingestion_runs") == [(1,)]
    done = engine.ingest(data, db=lake, schema=f"{spec}:Item")
    assert (done.status, done.tally.valid, done.tally.invalid) == ("completed", 2, 1)
    assert lake_rows(lake, "SELECT key, name FROM items ORDER BY key") == [(1, "a"), (2, "b")]


def test_a_keyed_append_that_loses_its_claim_to_a_replace_checks_its_rows_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replace committed between an append's key check and its commit removed the stored
    key: the append checks again from its rows as staged (its first check's duplicates are
    undone), so its row of that key is stored, as in the serial order replace then append.
    Before, the row stayed a duplicate of a row no longer shown: the key was stored nowhere
    (an independent review)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    lake = Lake(str(tmp_path / "lake"))
    files = {}
    for name, text in {"a": "1,a,1\n2,b,2\n", "b": "9,z,9\n", "c": "1,c,3\n3,d,4\n3,e,5\n"}.items():
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text("key,name,qty\n" + text)
    engine.ingest(files["a"], db=lake, schema=f"{spec}:Item")
    commit = commit_batch
    raced: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # the replace commits first, between the check and this commit
            raced.append(1)
            engine.ingest(files["b"], db=lake, schema=f"{spec}:Item", mode="replace")
        return commit(*args, **kwargs)

    monkeypatch.setattr(runs, "commit_batch", racing)
    done = engine.ingest(files["c"], db=lake, schema=f"{spec}:Item")
    assert raced == [1]
    assert (done.tally.valid, done.tally.invalid, dict(done.tally.errors)) == (
        2,
        1,
        {("key", "duplicate"): 1},
    )
    assert lake_rows(lake, "SELECT key, name FROM items ORDER BY key") == [
        (1, "c"),
        (3, "d"),
        (9, "z"),
    ]
    assert lake_rows(
        lake, f"SELECT row_number, msg FROM error_details WHERE run_id = {done.run_id}"
    ) == [(3, f"Duplicate key: first seen in run {done.run_id}, row 2")]


@pytest.mark.parametrize("table", ["moved", "firsts"])
def test_a_keyed_table_may_have_any_name(tmp_path: Path, table: str) -> None:
    """The key check reads frames by name: a table called the same was read instead (a
    table named ``moved`` lost a run's valid rows; an independent review)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODEL.replace('"items"', f'"{table}"'))
    lake = Lake(str(tmp_path / "lake"))
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    first.write_text("key,name,qty\n1,a,1\n2,b,2\n")
    second.write_text("key,name,qty\n1,a,1\n3,c,3\n4,d,4\n")
    for data in (first, second):
        engine.ingest(data, db=lake, schema=f"{spec}:Item")
    assert lake_rows(lake, f'SELECT key FROM "{table}" ORDER BY key') == [(1,), (2,), (3,), (4,)]
    assert lake_rows(
        lake, "SELECT rows_valid, rows_invalid FROM ingestion_runs ORDER BY started_at"
    ) == [(2, 0), (2, 1)]


def test_the_quality_gate_counts_the_duplicates_found_at_publish(tmp_path: Path) -> None:
    """As on a DuckDB file (before, a lake decided the gate before the publish's key check:
    an independent review)."""
    spec = tmp_path / "models.py"
    spec.write_text(MODEL)
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    data = tmp_path / "a.csv"
    data.write_text("key,name,qty\n1,a,1\n2,b,2\n")
    for target in (lake, db):
        engine.ingest(data, db=target, schema=f"{spec}:Item")
    gated = {
        str(target): engine.ingest(
            data, db=target, schema=f"{spec}:Item", force=True, max_invalid_rate=0.4
        )
        for target in (lake, db)
    }
    assert [g.gate for g in gated.values()] == [
        "quality gate failed: 100.00% of rows invalid, more than the 40.00% allowed"
    ] * 2
    assert lake_rows(lake, "SELECT message FROM ingestion_runs ORDER BY started_at") == db_rows(
        db, "SELECT message FROM ingestion_runs ORDER BY started_at"
    )
