"""A full disk under the database, through the real CLI on a small tmpfs.

It used to end with a 30-line traceback (and the next run with a TransactionException and
another). Now: one line naming the database and the cause, exit code 1 (a runtime failure),
the runs committed before intact, and the next run working once there is space again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.generate import generate
from tests.conftest import ROOT, query


def run(db: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(path), "--db", str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
        timeout=300,
    )


def fill(directory: Path) -> None:
    """Write until the disk is full."""
    with (directory / "filler").open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass


def test_a_full_disk_is_one_line_and_exit_1_and_the_next_run_works(
    small_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    disk = small_disk("8m")
    db = disk / "d.duckdb"
    first, big, later = tmp_path / "first.csv", tmp_path / "big.csv", tmp_path / "later.csv"
    generate(first, 100, seed=1)
    generate(big, 200_000, seed=2)  # about 10 MB of CSV: more than the disk holds
    generate(later, 50, seed=3)
    line = (
        f"error: {db}: cannot write the database: the disk is full (free some space on its "
        "disk and run again; what was committed before is intact)\n"
    )
    done = run(db, first)
    assert (done.returncode, done.stderr) == (0, "")
    done = run(db, big)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line)
    fill(disk)
    done = run(db, later)  # not a byte free: not even a run can be started
    assert (done.returncode, done.stdout, done.stderr) == (1, "", line)
    (disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
    done = run(db, later)
    assert (done.returncode, done.stderr) == (0, "")
    # Opening a current database writes nothing, so the attempt on the full disk may have
    # drawn run id 3 (DuckDB's sequences do not roll back), and even recorded its start, before
    # a write failed: then the next run is 4, and run 3, if recorded, is failed.
    later_id = 3 if done.stdout.startswith("run 3 ") else 4
    assert done.stdout.startswith(f"run {later_id} {later}: 50 rows, ")
    # The big run is failed: recorded so at once if the failure could still be written, else
    # by the next run that could write (the run left 'running' by a failed process).
    runs = query(db, "SELECT run_id, status, rows_total FROM ingestion_runs ORDER BY run_id")
    attempt = [run for run in runs if run[0] == 3 and later_id == 4]
    assert attempt in ([], [(3, "failed", 0)])
    assert runs == [(1, "completed", 100), (2, "failed", 0), *attempt, (later_id, "completed", 50)]
    assert query(db, "SELECT run_id, count(*) FROM raw_data GROUP BY 1 ORDER BY 1") == [
        (1, 100),
        (later_id, 50),
    ]


def test_a_database_that_cannot_be_created_leaves_no_file(
    small_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    """Creating the database on a full disk left a 0-byte file (exit 2, "cannot open"), which
    DuckDB then refused for good ("not a valid DuckDB database file") until removed by hand
    (independent attack). Now: the disk-full line and exit 1, no file, and once there is
    space the same command works; a 0-byte file left by an older version is taken as new."""
    disk = small_disk("1m")
    data = tmp_path / "t.csv"
    generate(data, 20, seed=4)
    fill(disk)
    db = disk / "new.duckdb"
    done = run(db, data)
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        f"error: {db}: cannot write the database: the disk is full (free some space on its "
        "disk and run again; what was committed before is intact)\n",
    )
    assert not db.exists()
    (disk / "filler").unlink()
    left = disk / "left.duckdb"
    left.touch()
    for path in (db, left):
        done = run(path, data)
        assert (done.returncode, done.stderr) == (0, ""), path
        assert query(path, "SELECT rows_total FROM ingestion_runs") == [(20,)]
        path.unlink()


def test_the_run_after_a_full_disk_has_the_space_the_failed_one_took(
    small_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    """The blocks a failed run took stayed in the file until a later checkpoint: the next
    run, as the message suggests, failed once more on the space they held (independent
    attack). Now they are given back as the failed run ends."""
    disk = small_disk("8m")
    db = disk / "d.duckdb"
    first, big, later = tmp_path / "first.csv", tmp_path / "big.csv", tmp_path / "later.csv"
    generate(first, 100, seed=1)
    generate(big, 200_000, seed=2)
    generate(later, 50, seed=3)
    assert run(db, first).returncode == 0
    assert run(db, big).returncode == 1
    done = run(db, later)  # nothing freed meanwhile
    assert (done.returncode, done.stderr) == (0, "")
    assert query(db, "SELECT run_id, status, rows_total FROM ingestion_runs ORDER BY 1") == [
        (1, "completed", 100),
        (2, "failed", 0),
        (3, "completed", 50),
    ]
