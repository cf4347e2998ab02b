"""Runs over streams and growing files: read exactly once, recorded as what was read.

A FIFO (``run <(zcat big.csv.gz)``) once ended with "file is empty" and its data thrown away;
a file that grew while it was read was recorded with its size and quick fingerprint from
before, so the same final file was not recognised and was ingested twice.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

from engine.generate import generate
from engine.pipeline import Progress, RunOptions, ingest_file
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import ROOT, query

SMALL_BLOCKS = RunOptions(block_size=64 * 1024)


def feed(fifo: Path, content: bytes) -> threading.Thread:
    """A writer that writes ``content`` into the FIFO once and closes it."""
    writer = threading.Thread(target=fifo.write_bytes, args=(content,), daemon=True)
    writer.start()
    return writer


def runs(db: Path) -> list[tuple[object, ...]]:
    return query(
        db,
        "SELECT run_id, status, source_path, file_size, content_hash, rows_total "
        "FROM ingestion_runs ORDER BY run_id",
    )


def test_a_fifo_is_ingested_once_and_recognised_by_what_was_read(tmp_path: Path, db: Path) -> None:
    data = tmp_path / "g.csv"
    generate(data, 30_000, seed=5)
    content = data.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with Store(db) as store:
        writer = feed(fifo, content)
        first = ingest_file(store, fifo, Transaction, SMALL_BLOCKS)
        writer.join()
        assert (first.status, first.path, first.tally.rows) == ("completed", str(fifo), 30_000)
        # The same bytes again through the FIFO: read, then rolled back at commit.
        writer = feed(fifo, content)
        again = ingest_file(store, fifo, Transaction, SMALL_BLOCKS)
        writer.join()
        # And the regular file holding them: recognised before it is read.
        as_file = ingest_file(store, data, Transaction, SMALL_BLOCKS)
    for skipped in (again, as_file):
        assert (skipped.status, skipped.run_id, skipped.previous_run) == ("skipped", None, 1)
        assert skipped.message == (
            "already ingested as run 1 with the same schema; use --force to ingest again"
        )
    assert runs(db) == [(1, "completed", str(fifo), len(content), digest, 30_000)]
    assert query(db, "SELECT count(*), count(DISTINCT row_number) FROM raw_data") == [
        (30_000, 30_000)
    ]


def test_a_fifo_with_other_content_is_a_new_run(tmp_path: Path, db: Path) -> None:
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    line = '{"external_id": "T%d", "amount": 1.5, "currency": "USD", "source_channel": "C1", "timestamp": "2024-01-01T00:00:00"}\n'
    contents = [("".join(line % i for i in range(n))).encode() for n in (3, 5)]
    with Store(db) as store:
        for content in contents:
            writer = feed(fifo, content)
            assert ingest_file(store, fifo, Transaction, RunOptions()).status == "completed"
            writer.join()
    assert [(r[0], r[1], r[3], r[5]) for r in runs(db)] == [
        (1, "completed", len(contents[0]), 3),
        (2, "completed", len(contents[1]), 5),
    ]


def test_a_file_that_grows_while_read_is_recorded_as_read(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "growing.csv"
    generate(path, 40_000, seed=6)
    extra = b"".join(
        f"TXN-X{i},1.0,USD,CHANNEL1,2024-01-01T00:00:00\n".encode() for i in range(1_000)
    )
    appended: list[int] = []

    def grow(progress: Progress) -> None:
        # After the first block is stored the reader is at most two blocks ahead, far from
        # the end: the appended rows are read by this run.
        if not appended:
            with path.open("ab") as fh:
                fh.write(extra)
            appended.append(progress.bytes_read)

    with Store(db) as store:
        first = ingest_file(store, path, Transaction, SMALL_BLOCKS, grow)
        assert (first.status, first.tally.rows) == ("completed", 41_000)
        again = ingest_file(store, path, Transaction, SMALL_BLOCKS)
        assert (again.status, again.previous_run) == ("skipped", first.run_id)
    final = path.read_bytes()
    assert runs(db) == [
        (1, "completed", str(path), len(final), hashlib.sha256(final).hexdigest(), 41_000)
    ]


def test_the_cli_reads_a_process_substitution(tmp_path: Path, db: Path) -> None:
    """``run <(cat file)``: bash hands the command a /dev/fd path to a pipe."""
    data = tmp_path / "g.csv"
    generate(data, 2_000, seed=7)
    command = (
        f"{sys.executable} {ROOT / 'cli.py'} run <(cat {data}) --format csv --db {db} && "
        f"{sys.executable} {ROOT / 'cli.py'} run <(cat {data}) --format csv --db {db} --quiet"
    )
    done = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    first = done.stdout.splitlines()[0]
    assert first.startswith("run 1 /dev/fd/")
    assert ": 2,000 rows, " in first
    assert query(db, "SELECT count(*), max(status), max(rows_total) FROM ingestion_runs") == [
        (1, "completed", 2_000)
    ]
