"""Long values commit: DuckDB keeps a transaction's strings of more than about 55 KB pinned in
memory until it commits, so a run of valid rows with 100 KB ids failed its commit at the
run's memory limit ("failed to pin block"). Scaled down here: a 16 MB limit and 30 MB of
100 KB ids (60 MB with the raw rows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from engine.pipeline import RunOptions, ingest_file
from engine.store import long_values
from engine.store.long_values import ITEM, LONG, WIDE, long_bytes
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import ROOT, query

ROWS = 300
ID = 100_000


def test_long_bytes_counts_strings_and_strings_in_lists_from_long_on() -> None:
    frame = pl.DataFrame(
        {
            "n": [1, 2, 3],
            "text": ["a" * LONG, "b" * (LONG - 1), None],
            "inputs": [["c" * (2 * LONG), "d"], [], ["e" * LONG]],
        }
    )
    assert long_bytes(frame) == LONG + 2 * LONG + LONG
    assert long_bytes(frame.select("n")) == 0


def test_long_bytes_counts_the_items_of_long_lists() -> None:
    """Rows of 2,000 errors (2,000 extra columns a model forbids) made lists DuckDB appends
    in 64 MiB pieces, past a run's 128 MB."""
    frame = pl.DataFrame(
        {
            "rule_ids": [list(range(WIDE)), list(range(WIDE - 1)), []],
            "inputs": [["a"] * 300, [], []],
        }
    )
    assert long_bytes(frame) == (WIDE + 300) * ITEM


def write(path: Path) -> None:
    pad = "a" * (ID - 12)
    lines = ["external_id,amount,currency,source_channel,timestamp"]
    lines += [f"{i:012d}{pad},1.5,USD,web,2024-01-01T00:00:00" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_run_of_long_values_commits_and_the_limit_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.csv"
    write(path)
    db = tmp_path / "long.duckdb"
    monkeypatch.setattr(long_values, "ROOM", 16 << 20)
    with Store(db, bulk_settings={"memory_limit": "16MB"}) as store:
        before = store.rows("SELECT current_setting('memory_limit')")[0][0]
        summary = ingest_file(store, path, Transaction, RunOptions())
        after = store.rows("SELECT current_setting('memory_limit')")[0][0]
    assert (summary.tally.rows, summary.tally.valid) == (ROWS, ROWS)
    assert (before, after) == ("244.1 MiB", "244.1 MiB")
    assert query(db, "SELECT count(*), sum(length(external_id)) FROM processed_data") == [
        (ROWS, ROWS * ID)
    ]
    assert query(db, "SELECT count(*), sum(length(raw)) FROM raw_data") == [
        (ROWS, ROWS * (ID + 32))
    ]


def limit(store: Store) -> object:
    return store.rows("SELECT current_setting('memory_limit')")[0][0]


def test_the_limit_is_raised_inside_the_transaction_and_put_back(tmp_path: Path) -> None:
    with Store(tmp_path / "t.duckdb") as store:
        store.execute("CREATE TABLE t (v VARCHAR)")
        with store.transaction():
            store.append("t", pl.DataFrame({"v": ["short"]}))
            untouched = limit(store)
            store.append("t", pl.DataFrame({"v": ["x" * LONG] * 4}))
            raised = limit(store)
        after = limit(store)
    assert (untouched, raised, after) == ("244.1 MiB", "320.3 MiB", "244.1 MiB")


BESIDE = """
import sys, threading, time
import polars as pl
from engine.store.store import Store
with Store(sys.argv[1]) as store:
    store.execute("CREATE TABLE t (v VARCHAR)")
    def session() -> None:  # a session starting while the transaction runs
        with store.overriding({"threads": "1"}):
            pass
    with store.transaction():
        other = threading.Thread(target=session)
        other.start()
        time.sleep(0.3)  # it holds the settings' lock, waiting for the store's
        store.append("t", pl.DataFrame({"v": ["x" * 40_000] * 4}))
    other.join()
    print(store.rows("SELECT count(*) FROM t")[0][0])
"""


def test_long_values_beside_a_session_starting_do_not_deadlock(tmp_path: Path) -> None:
    """The limit was raised through the settings' lock, taken after the store's: a session
    starting meanwhile (the API server's upload beside its consumer) held the settings'
    lock waiting for the store's, and both waited for ever."""
    done = subprocess.run(
        [sys.executable, "-c", BESIDE, str(tmp_path / "b.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert (done.returncode, done.stdout) == (0, "4\n"), done.stderr


def test_a_failure_inside_the_transaction_is_the_error_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a failed commit DuckDB may refuse every statement, the SET that puts the limit
    back too: the transaction's own error is the one raised, not the SET's."""
    with Store(tmp_path / "t.duckdb") as store:
        store.execute("CREATE TABLE t (v VARCHAR)")
        execute = store.execute

        def refusing(query: str, parameters: list[object] | None = None) -> None:
            if query.startswith("SET memory_limit = '2"):  # putting back 244.1 MiB
                raise duckdb.FatalException("database has been invalidated")
            execute(query, parameters)

        monkeypatch.setattr(store, "execute", refusing)
        with pytest.raises(ValueError, match=r"^the run's own failure$"), store.transaction():
            store.append("t", pl.DataFrame({"v": ["x" * LONG] * 4}))
            raise ValueError("the run's own failure")
        monkeypatch.undo()
        assert store.rows("SELECT count(*) FROM t") == [(0,)]
