"""``--db`` is read as DuckDB reads it, by every command alike; paths DuckDB cannot use as a
database file are refused in one line (independent attacks, 2026-12-05)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from engine.api.settings import ApiSettings
from engine.errors import StoreError
from engine.store.paths import database_path
from tests.conftest import DATA, ROOT


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "cli.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("plain.duckdb", "plain.duckdb"),
        ("/abs/x.duckdb", "/abs/x.duckdb"),
        ("file:/abs/x.duckdb", "/abs/x.duckdb"),
        ("file:///abs/x.duckdb", "/abs/x.duckdb"),
        ("file://localhost/abs/x.duckdb", "/abs/x.duckdb"),
        ("file:/abs/e%20x.duckdb", "/abs/e%20x.duckdb"),  # DuckDB does not decode
        ("~/x.duckdb", "HOME/x.duckdb"),
    ],
)
def test_database_path_reads_a_path_as_duckdb_does(
    given: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert database_path(given) == Path(expected.replace("HOME", str(tmp_path)))


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (":memory:", "an in-memory database keeps nothing (give --db a file)"),
        (":memory:x", "an in-memory database keeps nothing (give --db a file)"),
        (
            "~nosuch/x.duckdb",
            "a ~user path is not read (DuckDB reads ~ only as your own home directory) "
            "(give the path in full)",
        ),
    ],
)
def test_what_duckdb_would_not_keep_in_a_file_is_refused(given: str, said: str) -> None:
    with pytest.raises(StoreError) as caught:
        database_path(given)
    assert str(caught.value) == f"{given}: {said}"
    done = cli(ROOT, "run", str(DATA / "transactions_sample.csv"), "--db", given, "-q")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {given}: {said}\n")


def test_a_fifo_or_an_unusable_name_is_refused_in_one_line(tmp_path: Path) -> None:
    """DuckDB waited forever on a FIFO; a name too long for the file system was a
    traceback."""
    fifo = tmp_path / "f.duckdb"
    os.mkfifo(fifo)
    long = tmp_path / ("a" * 300 + ".duckdb")
    for argv in (["summary"], ["run", str(DATA / "transactions_sample.csv"), "-q"]):
        done = cli(tmp_path, *argv, "--db", str(fifo))
        assert (done.returncode, done.stderr) == (
            2,
            f"error: {fifo}: not a regular file (a FIFO, a device or a socket)\n",
        ), argv
        done = cli(tmp_path, *argv, "--db", str(long))
        assert (done.returncode, done.stderr) == (
            2,
            f"error: {long}: cannot use this path: File name too long\n",
        ), argv


def test_export_and_report_never_overwrite_the_database_however_spelled(
    tmp_path: Path,
) -> None:
    """``export -o ~/x.duckdb --db '~/x.duckdb'`` replaced the database with a CSV (the check
    that -o is not the database compared the path as typed)."""
    db = tmp_path / "x.duckdb"
    done = cli(tmp_path, "run", str(DATA / "transactions_sample.csv"), "--db", "~/x.duckdb", "-q")
    assert done.returncode == 0, done.stderr
    size = db.stat().st_size
    said = f"error: {db}: is the database itself ({db}) (-o takes another file)\n"
    for argv in (
        ["export", "processed", "-o", str(db), "--format", "csv", "--db", "~/x.duckdb"],
        ["report", "-o", str(db), "--db", f"file:{db}"],
        ["export", "errors", "-o", str(db), "--format", "csv", "--db", f"file://{db}"],
    ):
        done = cli(tmp_path, *argv)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", said), argv
    assert db.stat().st_size == size
    done = cli(tmp_path, "summary", "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr


def test_compact_however_spelled_and_through_a_symlink(tmp_path: Path) -> None:
    """``compact --db '~/x'`` failed with a traceback and left a full copy behind; through a
    symlink it replaced the link with a copy, leaving the linked file as it was."""
    real = tmp_path / "real.duckdb"
    done = cli(tmp_path, "run", str(DATA / "transactions_sample.csv"), "--db", str(real), "-q")
    assert done.returncode == 0, done.stderr
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    for spelling in ("~/real.duckdb", f"file:{real}", str(link)):
        done = cli(tmp_path, "compact", "--db", spelling)
        assert done.returncode == 0, (spelling, done.stderr)
        assert done.stdout.startswith("rewrote the database"), spelling
    assert link.is_symlink() and link.resolve() == real
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.duckdb", "real.duckdb"]
    con = duckdb.connect(str(real), read_only=True)
    try:
        assert con.sql("SELECT count(*) FROM ingestion_runs").fetchall() == [(1,)]
    finally:
        con.close()


def test_the_server_reads_its_database_path_as_duckdb_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``serve --db '~/x'`` put its spool in ./~ and failed with a traceback."""
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = ApiSettings(db=Path("~/s.duckdb"))
    assert settings.db == tmp_path / "s.duckdb"
    assert settings.spool_root == tmp_path


def test_a_file_recording_a_layout_without_its_tables_is_not_taken(tmp_path: Path) -> None:
    """A file whose ``layout_versions`` looked like the engine's, beside tables of its own,
    was read as the engine's: summary, export and report gave tracebacks."""
    other = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(other))
    con.execute(
        "CREATE TABLE layout_versions (version INTEGER, applied_at TIMESTAMPTZ, note VARCHAR);"
        "INSERT INTO layout_versions VALUES (3, now(), 'x'); CREATE TABLE foo (a INTEGER)"
    )
    con.close()
    said = (
        f"error: {other}: the database records layout 3 but has no table ingestion_runs, table "
        "source_rows, table invalid_rows, table error_rules, view raw_data, view "
        "ingestion_errors, view error_details (made by something else, or damaged) (give --db "
        "a file of its own (a new name creates one))\n"
    )
    for argv in (
        ["summary"],
        ["sql", "SELECT 1"],
        ["report", "-o", str(tmp_path / "r.html")],
        ["run", str(DATA / "transactions_sample.csv")],
        ["compact"],
    ):
        done = cli(tmp_path, *argv, "--db", str(other))
        assert (done.returncode, done.stdout, done.stderr) == (2, "", said), argv
    assert not (tmp_path / "r.html").exists()
