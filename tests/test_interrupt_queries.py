"""Ctrl-C and SIGTERM end a long DuckDB query, which the main thread waits in.

Python runs signal handlers only between bytecodes, and DuckDB, which runs them while a query
runs, at times dropped what they raised and went on: `sql` of a long aggregate (a result
streamed to Arrow) ignored SIGINT and SIGTERM until the query ended, and so did a long
statement in 5 of 6 tries. A watcher thread now interrupts the query (``engine.interrupts``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.generate import generate
from engine.store.store import Store
from tests.conftest import ROOT, query

# Hours of work for DuckDB: only a signal ends it.
ENDLESS = "SELECT sum(a.range * b.range) FROM range(100000000) a, range(1000) b"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("queries")
    data, path = folder / "small.csv", folder / "small.duckdb"
    generate(data, 100, seed=3)
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(data), "--db", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signalled_in_query(argv: list[str], signum: int) -> subprocess.CompletedProcess[str]:
    """Start ``argv``, send ``signum`` once the process has spent a second of CPU more than
    its start-up (so inside the query, which keeps both cores busy), and wait for it."""
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # Python's default: a child started from a shell script may inherit SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler),
    )
    try:
        deadline = time.monotonic() + 120
        while cpu_seconds(process.pid) < 2.5:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the query never started"
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)  # before: hours
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("form", ["table", "json"])
def test_a_signal_ends_a_long_sql_query(db: Path, signum: int, form: str) -> None:
    argv = [sys.executable, str(ROOT / "cli.py"), "sql", ENDLESS, "--db", str(db)]
    done = signalled_in_query([*argv, "--format", form], signum)

    name = signal.Signals(signum).name
    assert done.returncode == 128 + signum
    assert done.stderr == (
        f"error: interrupted by {name} (anything not yet committed was rolled back)\n"
    )
    assert done.stdout == ""


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_ends_a_long_statement(db: Path, tmp_path: Path, signum: int) -> None:
    """A writer's statement (as `replay`, a merge or `compact` run them), through the command
    line's own handling (``exit_after``); the database opens for writing after it."""
    program = textwrap.dedent(
        f"""
        from engine import interrupts
        from engine.store.store import Store

        def command():
            with Store({str(db)!r}, create=False) as store:
                store.execute("CREATE TEMP TABLE t AS {ENDLESS}")

        interrupts.exit_after(command)
        """
    )
    done = signalled_in_query([sys.executable, "-c", program], signum)

    name = signal.Signals(signum).name
    assert (done.returncode, done.stdout) == (128 + signum, "")
    assert done.stderr == (
        f"error: interrupted by {name} (anything not yet committed was rolled back)\n"
    )
    # The database is whole and writable: the interrupted statement left nothing behind.
    assert query(db, "SELECT count(*), sum(rows_total) FROM ingestion_runs") == [(1, 100)]
    with Store(db, create=False) as store:
        assert store.rows("SELECT count(*) FROM duckdb_temporary_files()") == [(0,)]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_command_that_handles_signals_itself_keeps_its_queries(
    db: Path, tmp_path: Path, signum: int
) -> None:
    """The consumer handles SIGINT/SIGTERM itself: the first asks the session to stop, and it
    writes its in-flight batch (on the writer thread, the main thread waiting) before it exits 0.
    The watcher interrupted that write all the same (CI: ``cannot write the database
    (INTERRUPT Error: Interrupted!)``, exit 1); it now leaves a signal it does not handle alone."""
    program = textwrap.dedent(
        f"""
        import threading
        import time
        from engine import interrupts
        from engine.store.store import Store
        from engine.streaming.shutdown import stop_on_signals

        BUSY = "SELECT count(*) FROM range(20000000) WHERE hash(range) % 7 = 0"

        def command():
            with stop_on_signals() as stop, Store({str(db)!r}, create=False) as store:
                writes = []

                def write():  # the consumer's writer: batches until asked to stop, then
                    while not stop.is_set():  # its last one (a second of queries)
                        store.rows(BUSY)
                    end = time.monotonic() + 1
                    while time.monotonic() < end:
                        store.rows(BUSY)
                    writes.append(True)

                writer = threading.Thread(target=write)
                writer.start()
                writer.join()  # the main thread waits, on one instruction
                print(stop.reason, len(writes))

        interrupts.exit_after(command)
        """
    )
    done = signalled_in_query([sys.executable, "-c", program], signum)

    name = signal.Signals(signum).name
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{name} received 1\n", "")
