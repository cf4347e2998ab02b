"""Load modes through the real CLI and ``engine.ingest``: replace (atomic, lineage kept),
merge (the latest valid row of a key wins, the replaced row is recorded), and a generated
check that a merged table is a dict of the latest valid rows by key."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine.schemas import load_schema
from engine.store.store import Store
from tests.conftest import query
from tests.store.lifecycle import cli, models

FIRST = "rid,value\na,1\nb,2\nc,x\n"
SECOND = "rid,value\nb,20\nd,4\nb,21\nbad,\n"


def two_runs(tmp_path: Path, mode: str) -> tuple[Path, Path]:
    db, spec = tmp_path / "m.duckdb", models(tmp_path)
    (tmp_path / "one.csv").write_text(FIRST)
    (tmp_path / "two.csv").write_text(SECOND)
    for name, run_mode in (("one", "append"), ("two", mode)):
        done = cli(
            "run", tmp_path / f"{name}.csv", "--db", db, "--schema", f"{spec}:V1",
            "--mode", run_mode, "--quiet",
        )  # fmt: skip
        assert (done.returncode, done.stderr) == (0, "")
    return db, spec


def test_replace_keeps_only_the_run_s_valid_rows_and_the_lineage_of_earlier_runs(
    tmp_path: Path,
) -> None:
    db, _ = two_runs(tmp_path, "replace")
    # Run 2 in replace mode: its own duplicate of b (row 3) is invalid, as in append.
    assert query(db, "SELECT run_id, row_number, rid, value FROM readings ORDER BY ALL") == [
        (2, 1, "b", 20),
        (2, 2, "d", 4),
    ]
    assert query(db, "SELECT * FROM replaced_rows ORDER BY ALL") == [
        ("readings", 1, 1, 2, None, "replace"),
        ("readings", 1, 2, 2, None, "replace"),
    ]
    assert query(db, "SELECT run_id, count(*) FROM raw_data GROUP BY 1 ORDER BY 1") == [
        (1, 3),
        (2, 4),
    ]
    assert query(db, "SELECT run_id, load_mode FROM ingestion_runs ORDER BY 1") == [
        (1, "append"),
        (2, "replace"),
    ]


def test_a_replace_run_that_fails_leaves_the_table_as_it_was(tmp_path: Path) -> None:
    db, spec = two_runs(tmp_path, "append")
    before = query(db, "SELECT * FROM readings ORDER BY ALL")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(("rid,value\n" + "z,1\n" * 50_000).encode())[:-20])
    done = cli("run", cut, "--db", db, "--schema", f"{spec}:V1", "--mode", "replace")
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {cut}: the gzip data ends before its end marker (a truncated file?)\n",
    )
    assert query(db, "SELECT * FROM readings ORDER BY ALL") == before
    assert query(db, "SELECT count(*) FROM replaced_rows") == [(0,)]
    assert query(db, "SELECT status FROM ingestion_runs WHERE run_id = 3") == [("failed",)]


def test_merge_upserts_on_the_unique_key_and_records_what_it_replaced(tmp_path: Path) -> None:
    db, _ = two_runs(tmp_path, "merge")
    assert query(db, "SELECT run_id, row_number, rid, value FROM readings ORDER BY rid") == [
        (1, 1, "a", 1),
        (2, 3, "b", 21),
        (2, 2, "d", 4),
    ]
    # b of run 1 was replaced by run 2's row 3 (the later of its two b rows), which also
    # replaced its own row 1.
    assert query(db, "SELECT * FROM replaced_rows ORDER BY ALL") == [
        ("readings", 1, 2, 2, 3, "merge"),
        ("readings", 2, 1, 2, 3, "merge"),
    ]
    # Every input row is in the table, in invalid_rows, or replaced (with its raw text).
    assert query(
        db,
        "SELECT count(*) FROM raw_data r WHERE (SELECT count(*) FROM readings t "
        "WHERE (t.run_id, t.row_number) = (r.run_id, r.row_number)) + (SELECT count(*) FROM "
        "invalid_rows i WHERE (i.run_id, i.row_number) = (r.run_id, r.row_number)) + "
        "(SELECT count(*) FROM replaced_rows p WHERE (p.run_id, p.row_number) = "
        "(r.run_id, r.row_number)) <> 1",
    ) == [(0,)]


def test_merge_needs_a_unique_key_and_a_mode_is_one_of_three(tmp_path: Path) -> None:
    db, spec = tmp_path / "k.duckdb", models(tmp_path)
    (tmp_path / "k.csv").write_text("rid,value\na,1\n")
    done = cli(
        "run", tmp_path / "k.csv", "--db", db, "--schema", f"{spec}:Keyless", "--mode", "merge"
    )
    assert (done.returncode, done.stderr) == (
        2,
        "error: mode merge upserts on the model's unique key, and schema Keyless has none "
        "(declare __unique__ = ('field',) in the model, or use mode append or replace)\n",
    )
    with pytest.raises(engine.ConfigError) as raised:
        engine.ingest(
            tmp_path / "k.csv", db=db, schema=load_schema(f"{spec}:Keyless"), mode="upsert"
        )
    assert str(raised.value) == "unknown load mode 'upsert' (use append, replace or merge)"


def test_the_same_content_again_is_skipped_in_replace_mode_only_while_it_is_the_latest(
    tmp_path: Path,
) -> None:
    db, spec = two_runs(tmp_path, "replace")
    first = tmp_path / "one.csv"
    again = cli("run", first, "--db", db, "--schema", f"{spec}:V1", "--mode", "replace", "--json")
    ran = json.loads(again.stdout)  # run 1 is no longer what the table holds
    assert (ran["run_id"], ran["status"], ran["previous_run"], ran["message"]) == (
        3,
        "completed",
        None,
        "",
    )
    assert query(db, "SELECT DISTINCT run_id FROM readings") == [(3,)]
    same = cli("run", first, "--db", db, "--schema", f"{spec}:V1", "--mode", "replace", "--json")
    skipped = json.loads(same.stdout)
    assert (skipped["run_id"], skipped["status"], skipped["previous_run"]) == (None, "skipped", 3)
    assert skipped["message"] == (
        "already ingested as run 3 with the same schema; pass --force to ingest it again"
    )


KEYS = st.sampled_from(["k1", "k2", "k3", "k4", "k5"])
ROWS = st.lists(
    st.tuples(KEYS, st.one_of(st.integers(-5, 1000).map(str), st.just("oops"))),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ROWS, min_size=1, max_size=5))
def test_a_merged_table_is_the_latest_valid_row_of_each_key(
    tmp_path: Path, runs: list[list[tuple[str, str]]]
) -> None:
    model = load_schema(f"{models(tmp_path)}:V1")
    db = tmp_path / f"g{abs(hash(repr(runs)))}.duckdb"
    expected: dict[str, tuple[int, int, int]] = {}
    valid_rows = 0
    with Store(db) as store:
        for number, rows in enumerate(runs):
            # odd runs as rows in memory, even ones as CSV files read in blocks of 16 bytes
            # (several batches per run: a key replaced across batches of one run)
            data = tmp_path / f"run{number}.csv"
            data.write_text("rid,value\n" + "".join(f"{k},{v}\n" for k, v in rows))
            summary = engine.ingest(
                [{"rid": key, "value": value} for key, value in rows] if number % 2 else data,
                db=store,
                schema=model,
                mode="merge",
                force=True,
                block_size=16,
            )
            assert summary.run_id is not None
            for number, (key, value) in enumerate(rows, 1):
                if value != "oops":
                    expected[key] = (summary.run_id, number, int(value))
                    valid_rows += 1
        found = store.rows("SELECT rid, run_id, row_number, value FROM readings")
        assert {rid: (r, n, int(v)) for rid, r, n, v in found} == expected
        assert len(found) == len(expected)
        replaced = store.rows("SELECT count(*) FROM replaced_rows WHERE how = 'merge'")
        assert replaced == [(valid_rows - len(expected),)]
    db.unlink()
