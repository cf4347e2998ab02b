"""Ctrl-C and SIGTERM sent to a real `cli.py run`, at points from start-up to the commit.

It used to end three ways (130 with one line; 1 with a ``RuntimeError: Query interrupted``
traceback; "Aborted!" and 1). Now every signal ends the same way: exit code 128 + the signal
(130, 143), exactly one line on stderr, and no row of the interrupted run kept. Signals are
placed by delays (fractions of an uninterrupted run's length); only outcomes are asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.generate import generate
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from tests.conftest import ROOT, query

ROWS = 400_000
# Where in a run the signal lands: 0 is just after the handlers exist (imports, start-up);
# the run reads and stores until about 0.9 of its length, then commits.
PLACES = (0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "big.csv"
    generate(path, ROWS, seed=11)
    return path


def start(db: Path, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "run", str(data), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def handling_signals(process: subprocess.Popen[str]) -> bool:
    """True once the process catches SIGTERM: cli.py's handlers are installed (Python itself
    only catches SIGINT)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except FileNotFoundError:
            return False
        caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    raise AssertionError("cli.py never installed its signal handlers")


def test_an_uninterrupted_run_then_signals_at_every_stage(big: Path, tmp_path: Path) -> None:
    began = time.monotonic()
    done = start(tmp_path / "whole.duckdb", big)
    assert handling_signals(done)
    out, err = done.communicate(timeout=300)
    length = time.monotonic() - began
    assert (done.returncode, err) == (0, ""), err
    assert f": {ROWS:,} rows, " in out

    signalled = finished = 0
    outcomes: list[str] = []
    for attempt, place in enumerate(PLACES * 2):
        sig = SIGNALS[attempt % 2]
        db = tmp_path / f"run{attempt}.duckdb"
        process = start(db, big)
        assert handling_signals(process)
        time.sleep(place * length)
        if process.poll() is not None:  # ended before the signal: nothing to check
            process.communicate()
            continue
        process.send_signal(sig)
        signalled += 1
        out, err = process.communicate(timeout=300)
        name = signal.Signals(sig).name
        if process.returncode == 0:
            # The signal came once the run was done, while the process exited: nothing was
            # interrupted (the signal is ignored from then on). Never during start-up.
            assert place > 0 and err == "" and f": {ROWS:,} rows, " in out, (place, out, err)
            finished += 1
        elif err.endswith("was committed (it is kept; nothing was rolled back)\n"):
            # Once the run was committing: it commits, its summary is printed, then it stops.
            assert (process.returncode, err) == (
                128 + sig,
                f"error: interrupted by {name} after run 1 was committed "
                "(it is kept; nothing was rolled back)\n",
            ) and f": {ROWS:,} rows, " in out, (place, out, err)
            finished += 1
        else:
            assert (process.returncode, err) == (
                128 + sig,
                f"error: interrupted by {name} (anything not yet committed was rolled back)\n",
            ), (place, out, err)
        if not db.exists():  # interrupted before the database was opened
            continue
        with Store(db) as store:  # the next writer: marks a run left 'running' failed
            mark_interrupted(store)
        for run_id, status, rows in query(
            db, "SELECT run_id, status, rows_total FROM ingestion_runs"
        ):
            stored = query(
                db,
                f"SELECT (SELECT count(*) FROM raw_data WHERE run_id = {run_id}), "
                f"(SELECT count(*) FROM processed_data WHERE run_id = {run_id}) + "
                f"(SELECT count(*) FROM ingestion_errors WHERE run_id = {run_id})",
            )
            # Failed with nothing kept; or, when the signal came just after the commit,
            # completed with everything.
            outcomes.append(f"{place}:{signal.Signals(sig).name}:{status}")
            expected = (0, 0) if status == "failed" else (ROWS, ROWS)
            assert (status in ("failed", "completed"), rows, stored[0]) == (
                True,
                expected[0],
                expected,
            ), (place, status)
    print(f"\n{signalled} signalled, {finished} after the run was done; runs: {outcomes}")
    assert signalled - finished >= 2  # at least the two sent during start-up interrupted


def waiting_in(process: subprocess.Popen[str], *waits: str) -> bool:
    """True once one of the process's threads waits in the kernel in one of ``waits``
    (``/proc/<pid>/task/*/wchan``)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            try:
                if (task / "wchan").read_text() in waits:
                    return True
            except OSError:
                continue
        time.sleep(0.01)
    raise AssertionError(f"the run never waited in {waits}")


def waiting_for_a_writer(process: subprocess.Popen[str]) -> bool:
    """True once one of the process's threads waits in a FIFO's open for its writer."""
    return waiting_in(process, "wait_for_partner")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_run_waiting_for_a_fifos_writer(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """Opening a FIFO waits for its writer; with the open blocked in the main thread, a
    signal the kernel gave another thread went unseen: Ctrl-C did nothing until a writer
    came (independent attack)."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    process = start(tmp_path / "f.duckdb", fifo)
    assert waiting_for_a_writer(process)
    process.send_signal(sig)
    _, err = process.communicate(timeout=30)
    name = signal.Signals(sig).name
    assert (process.returncode, err) == (
        code,
        f"error: interrupted by {name} (anything not yet committed was rolled back)\n",
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_a_run_whose_fifo_writer_stalled(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    """The writer sends a record and stalls, keeping the FIFO open: the reading thread is
    blocked in read(), and closing the input waited for that read to end (the process
    stayed until the writer closed). A stream being read is now left to the exit."""
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    process = start(tmp_path / "s.duckdb", fifo)
    writer = os.open(fifo, os.O_WRONLY)  # the run has opened it
    try:
        record = {"external_id": "T1", "amount": 1.5, "currency": "USD", "source_channel": "w"}
        os.write(writer, (json.dumps(record) + "\n").encode())
        assert waiting_in(process, "pipe_read", "anon_pipe_read", "pipe_wait")
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
    finally:
        os.close(writer)
    name = signal.Signals(sig).name
    assert (process.returncode, err) == (
        code,
        f"error: interrupted by {name} (anything not yet committed was rolled back)\n",
    )


def run_from_stdin(
    tmp_path: Path, fmt: str, preexec_fn: Callable[[], object] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """``cli.py run -`` reading a pipe: the process, and the pipe's write end (to close)."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "run", "-", "--format", fmt, "--db", str(tmp_path / "i.duckdb")],
        stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=preexec_fn,
    )  # fmt: skip
    os.close(read_end)
    return process, write_end


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_signal_ends_a_run_whose_stdin_writer_stalled(
    tmp_path: Path, sig: signal.Signals, code: int, fmt: str
) -> None:
    """``run -`` while its writer stalls: the reading thread blocked in a read of
    ``sys.stdin.buffer`` held its lock, and Python aborted at exit trying to take it (exit
    134 and a "Fatal Python error" under the line; independent README audit). Standard
    input is now read by its descriptor."""
    process, write_end = run_from_stdin(tmp_path, fmt)
    try:
        if fmt == "csv":
            os.write(write_end, b"external_id,amount,currency,source_channel\nT1,1.5,USD,web\n")
        else:
            os.write(write_end, b'{"external_id": "T1", "amount": 1.5}\n')
        assert waiting_in(process, "pipe_read", "anon_pipe_read", "pipe_wait")
        process.send_signal(sig)
        _, err = process.communicate(timeout=30)
    finally:
        os.close(write_end)
    name = signal.Signals(sig).name
    assert (process.returncode, err) == (
        code,
        f"error: interrupted by {name} (anything not yet committed was rolled back)\n",
    )


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        (signal.SIGTERM, signal.SIGINT, "SIGINT after SIGTERM"),
        (signal.SIGINT, signal.SIGINT, "SIGINT again"),
        (signal.SIGINT, signal.SIGTERM, "SIGTERM after SIGINT"),
    ],
)
def test_a_second_signal_says_which_it_is(
    monkeypatch: pytest.MonkeyPatch, first: signal.Signals, second: signal.Signals, said: str
) -> None:
    """A SIGINT after a SIGTERM said "SIGTERM again" (independent README audit)."""
    from engine import interrupts

    written: list[bytes] = []
    monkeypatch.setattr(interrupts, "_received", [first])
    monkeypatch.setattr(os, "write", lambda fd, data: written.append(data))

    def exit_now(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", exit_now)
    with pytest.raises(SystemExit) as exited:
        interrupts._handle(second, None)
    assert (exited.value.code, written) == (
        128 + second,
        [f"error: {said}: exiting now\n".encode()],
    )


def test_a_signal_the_process_was_started_ignoring_stays_ignored(tmp_path: Path) -> None:
    """A job a script runs in the background (``cmd &``) starts with SIGINT ignored; the
    engine handled it anyway, so a Ctrl-C meant for the script stopped the job (independent
    attack). SIGTERM, not ignored, still stops it."""
    process, write_end = run_from_stdin(
        tmp_path, "csv", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    try:
        os.write(write_end, b"external_id,amount,currency,source_channel\nT1,1.5,USD,web\n")
        assert waiting_in(process, "pipe_read", "anon_pipe_read", "pipe_wait")
        process.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        os.close(write_end)
    assert (process.returncode, err) == (
        143,
        "error: interrupted by SIGTERM (anything not yet committed was rolled back)\n",
    )


# Lands the signal at a chosen place of a real ``cli.py run`` (as cli.py runs it): just after
# the run's commit (in ``finish_run``), or as its summary is printed.
LANDING = textwrap.dedent(
    """
    import os, signal, sys
    import engine.pipeline, engine.ui
    from engine import interrupts

    place, _, nth = sys.argv[1].partition("@")  # "@2": at the second call
    module, name = {"finish_run": (engine.pipeline, "finish_run"),
                    "print_run": (engine.ui, "print_run"),
                    "a_run_ends": (engine.pipeline, "_previous_run")}[place]
    original = getattr(module, name)
    calls = []

    def signalled(*args, **kwargs):
        calls.append(1)
        if len(calls) == int(nth or 1):
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        return original(*args, **kwargs)

    setattr(module, name, signalled)
    from engine.cli import main
    interrupts.exit_after(lambda: main.main(["run", *sys.argv[4:], "--db", sys.argv[3]]))
    """
)


@pytest.mark.parametrize("place", ["finish_run", "print_run"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_just_after_the_commit_says_the_run_is_kept(
    tmp_path: Path, place: str, sig: signal.Signals, code: int
) -> None:
    """A signal just after the commit said "interrupted ... (anything not yet committed was
    rolled back)" and printed no summary, while the run was stored completed. Now the run's
    summary is printed, and the one line names the run kept; a second file is not started."""
    data = tmp_path / "a.csv"
    generate(data, 1000, seed=3)
    other = tmp_path / "b.csv"
    generate(other, 10, seed=4)
    db = tmp_path / "k.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", LANDING, place, sig.name, str(db), str(data), str(other)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        code,
        f"error: interrupted by {sig.name} after run 1 was committed "
        "(it is kept; nothing was rolled back)\n",
    ), done
    assert f"run 1 {data}: 1,000 rows, " in done.stdout, done.stdout
    assert query(db, "SELECT run_id, status, rows_total FROM ingestion_runs") == [
        (1, "completed", 1000)
    ]


def test_a_query_duckdb_ends_for_a_signal_records_the_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal that interrupts a DuckDB query ends it with DuckDB's error, and the run was
    recorded failed with "RuntimeError: Query interrupted"; it now says which signal, as an
    interrupt elsewhere does. (DuckDB notices a signal only now and then: the error it raises
    is stood in for, with the signal taken as handled.)"""
    import engine
    import engine.pipeline
    from engine import interrupts

    def interrupted_query(*args: object, **kwargs: object) -> None:
        interrupts._received.append(signal.SIGTERM)
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(interrupts, "_received", [])
    monkeypatch.setattr(engine.pipeline, "store_batch", interrupted_query)
    data = tmp_path / "a.csv"
    generate(data, 100, seed=3)
    with pytest.raises(RuntimeError, match="Query interrupted"):
        engine.ingest(data, db=tmp_path / "q.duckdb", schema="transactions")
    assert query(tmp_path / "q.duckdb", "SELECT status, message FROM ingestion_runs") == [
        ("failed", "Interrupted: interrupted by SIGTERM")
    ]


def test_a_signal_in_the_next_files_run_names_the_run_kept(tmp_path: Path) -> None:
    """A signal while the second file's run is under way (before its commit; ``_previous_run`` is
    called twice a run, the second time once the file is read): the first run
    is kept and named, the second rolled back (its line said nothing of the first before)."""
    data, other = tmp_path / "a.csv", tmp_path / "b.csv"
    generate(data, 1000, seed=3)
    generate(other, 10, seed=4)
    db = tmp_path / "k.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", LANDING, "a_run_ends@4", "SIGINT", str(db), str(data),
         str(other)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        130,
        "error: interrupted by SIGINT after run 1 was committed "
        "(it is kept; the next file was not stored)\n",
    ), done
    assert f"run 1 {data}: 1,000 rows, " in done.stdout, done.stdout
    assert query(db, "SELECT run_id, status, rows_total FROM ingestion_runs ORDER BY 1") == [
        (1, "completed", 1000),
        (2, "failed", 0),
    ]


AFTER_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    import engine.cli.tables, engine.store.retention
    from engine import interrupts

    module, name = {"retention": (engine.store.retention, "_finish"),
                    "replay": (engine.cli.tables, "_report_replay")}[sys.argv[1]]
    original = getattr(module, name)

    def signalled(*args, **kwargs):  # the transaction has committed
        os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    setattr(module, name, signalled)
    from engine.cli import main
    interrupts.exit_after(lambda: main.main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize(
    ("place", "command", "kept"),
    [
        ("retention", ["delete-run", "1"], "the deletion of run 1"),
        ("retention", ["prune", "--raw-older-than", "0"], "the prune"),
        ("replay", ["replay", "--all-failed"], "replay 1"),
        ("retention", ["compact"], "the compaction"),
    ],
)
def test_a_signal_after_a_change_commits_says_it_is_kept(
    tmp_path: Path, place: str, command: list[str], kept: str
) -> None:
    """`delete-run`, `prune` and `replay` said "(anything not yet committed was rolled back)"
    and printed nothing for a signal just after their commit, though it was kept (a fifth
    attack), and so did `compact` once its copy had replaced the file, unrecorded (a sixth).
    Now their --json is printed and the line names what was kept."""
    data, db = tmp_path / "a.csv", tmp_path / "k.duckdb"
    generate(data, 1000, seed=3)
    first = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(data), "--db", str(db), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    done = subprocess.run(
        [sys.executable, "-c", AFTER_COMMIT, place, *command, "--db", str(db), "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        130,
        f"error: interrupted by SIGINT after {kept} was committed "
        "(it is kept; nothing was rolled back)\n",
    ), done
    printed = json.loads(done.stdout)
    if command[0] == "replay":
        assert (printed["replay_id"], query(db, "SELECT count(*) FROM replays")) == (1, [(1,)])
    else:
        assert printed["action"] == command[0]
        assert query(db, "SELECT count(*) FROM store_actions") == [(1,)]


@pytest.mark.parametrize("place", ["_start_watcher", "settle"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_the_handlers_are_set_or_settled_is_one_line(
    place: str, sig: signal.Signals, code: int
) -> None:
    """CI once signalled a run while its watcher thread started, just after the first handler
    was set: the handler's exception came out of ``install`` with a traceback and exit 1. The
    same held once the command was done, up to the moment ``settle`` ignores signals."""
    script = textwrap.dedent(
        """
        import os, signal, sys, time
        from engine import interrupts

        original = getattr(interrupts, sys.argv[1])

        calls = []

        def signalled():
            calls.append(1)
            if len(calls) == 1:
                os.kill(os.getpid(), getattr(signal, sys.argv[2]))
                time.sleep(0.2)  # the handler runs here, before the original does anything
            return original()

        setattr(interrupts, sys.argv[1], signalled)
        interrupts.exit_after(lambda: print("the command ran"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, place, sig.name],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        code,
        "" if place == "_start_watcher" else "the command ran\n",
        f"error: interrupted by {sig.name} (anything not yet committed was rolled back)\n",
    )
