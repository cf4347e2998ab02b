"""kill -9 in the middle of a replace run and of a compact: the database is as before."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import engine
from engine.generate import generate
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from tests.conftest import ROOT, query
from tests.store.lifecycle import cli

REPLACING = """
import sys
import engine

def progress(p):
    print("batch", flush=True)

engine.ingest(sys.argv[2], db=sys.argv[1], schema="transactions", mode="replace",
              force=True, block_size=1 << 16, progress=progress)
"""

COMPACTING = """
import os, sys, time
from engine.store import retention
from engine.store.runs import mark_interrupted
from engine.store.store import Store

where = sys.argv[2]
if where == "copy":
    execute = Store.execute
    def slow(self, query, parameters=None):
        if "(DATA)" in query:
            print("copying", flush=True)
        return execute(self, query, parameters)
    Store.execute = slow
else:
    def stuck(src, dst):
        print("copied", flush=True)
        time.sleep(600)
    retention.os.replace = stuck
retention.compact(sys.argv[1])
"""

COUNTS = (
    "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM raw_data), "
    "(SELECT count(*) FROM ingestion_errors), (SELECT list(DISTINCT run_id ORDER BY run_id) "
    "FROM processed_data)"
)


def killed_at(tmp_path: Path, code: str, marker: str, *args: str, after: int = 1) -> None:
    script = tmp_path / "child.py"
    script.write_text(code)
    child = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    seen = 0
    for line in child.stdout:
        seen += line.startswith(marker)
        if seen == after:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL


def stored(tmp_path: Path) -> tuple[Path, Path]:
    db, data = tmp_path / "k.duckdb", tmp_path / "g.csv"
    generate(data, 100_000, seed=5)
    engine.ingest(data, db=db, schema="transactions")
    return db, data


def test_a_replace_run_killed_midway_leaves_the_table_as_it_was(tmp_path: Path) -> None:
    db, data = stored(tmp_path)
    before = query(db, COUNTS)
    killed_at(tmp_path, REPLACING, "batch", str(db), str(data), after=3)
    assert query(db, COUNTS) == before
    assert query(db, "SELECT count(*) FROM replaced_rows") == [(0,)]
    with Store(db) as store:  # the next run marks the dead one failed
        assert mark_interrupted(store) == 1
    assert query(db, "SELECT status FROM ingestion_runs WHERE run_id = 2") == [("failed",)]


def test_a_compact_killed_midway_leaves_the_database_whole(tmp_path: Path) -> None:
    db, data = stored(tmp_path)
    engine.ingest(data, db=db, schema="transactions", force=True)
    with Store(db) as store:
        engine.delete_run(store, 1)
    before = query(db, COUNTS)
    for where, marker in (("copy", "copying"), ("replace", "copied")):
        killed_at(tmp_path, COMPACTING, marker, str(db), where)
        assert query(db, COUNTS) == before, where
    assert (tmp_path / ".k.duckdb.compacting").exists()  # left by the kill before the swap
    done = cli("compact", "--db", db)
    assert done.returncode == 0, done.stderr
    assert query(db, COUNTS) == before
    assert sorted(p.name for p in tmp_path.iterdir() if "compacting" in p.name) == []
