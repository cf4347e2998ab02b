"""Runs: lineage, counts, idempotency, atomicity (errors and kills)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import engine.pipeline as pipeline
from engine.api.errors import api_spelling
from engine.cli.words import cli_spelling
from engine.generate import generate
from engine.pipeline import RunOptions, ingest_file
from engine.store.runs import mark_interrupted
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import ROOT, query

SMALL_BLOCKS = RunOptions(block_size=64 * 1024)


def data_rows(db: Path, run_id: int) -> tuple[int, int, int]:
    counts = query(
        db,
        f"SELECT (SELECT count(*) FROM raw_data WHERE run_id = {run_id}), "
        f"(SELECT count(*) FROM processed_data WHERE run_id = {run_id}), "
        f"(SELECT count(*) FROM ingestion_errors WHERE run_id = {run_id})",
    )
    return counts[0]  # type: ignore[return-value]


def test_lineage_joins_and_counts(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "g.csv"
    generate(path, 20_000, seed=3, bad_fraction=0.1)
    with Store(db) as store:
        summary = ingest_file(store, path, Transaction, SMALL_BLOCKS)
    run = summary.run_id
    lines = path.read_text().count("\n")
    raw, valid, invalid = data_rows(db, run)  # type: ignore[arg-type]
    assert raw == 20_000 == lines - 1
    assert valid + invalid == raw
    assert (summary.tally.rows, summary.tally.valid, summary.tally.invalid) == (raw, valid, invalid)
    # Every processed and error row has exactly one raw row, and no raw row is in both.
    assert query(
        db, "SELECT count(*) FROM processed_data p JOIN raw_data r USING (run_id, row_number)"
    ) == [(valid,)]
    assert query(
        db, "SELECT count(*) FROM ingestion_errors e JOIN raw_data r USING (run_id, row_number)"
    ) == [(invalid,)]
    assert query(
        db,
        "SELECT count(*) FROM processed_data p JOIN ingestion_errors e USING (run_id, row_number)",
    ) == [(0,)]
    assert query(
        db,
        "SELECT count(DISTINCT row_number), min(row_number), max(row_number), "
        "bool_and(line_number = row_number + 1) FROM raw_data",
    ) == [(20_000, 1, 20_000, True)]
    # The raw text is the line exactly as in the file.
    with path.open() as fh:
        fh.readline()
        first_lines = [fh.readline().rstrip("\n") for _ in range(3)]
    assert [
        r[0] for r in query(db, "SELECT raw FROM raw_data ORDER BY row_number LIMIT 3")
    ] == first_lines
    recorded = query(
        db,
        f"SELECT status, rows_total, rows_valid, rows_invalid, format, schema_name, target_table "
        f"FROM ingestion_runs WHERE run_id = {run}",
    )
    assert recorded == [("completed", raw, valid, invalid, "csv", "Transaction", "processed_data")]


def test_second_run_is_a_no_op_and_force_adds_a_run(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "g.csv"
    generate(path, 2_000, seed=1)
    with Store(db) as store:
        first = ingest_file(store, path, Transaction, RunOptions())
        again = ingest_file(store, path, Transaction, RunOptions())
        forced = ingest_file(store, path, Transaction, RunOptions(force=True))
        other_context = ingest_file(
            store, path, Transaction, RunOptions(context={"allowed_currencies": "JPY"})
        )
        # The same bytes read as another format are another ingestion (a wrong --format
        # first, then the right one): not skipped.
        as_ndjson = ingest_file(store, path, Transaction, RunOptions(fmt="ndjson"))
        as_csv_again = ingest_file(store, path, Transaction, RunOptions(fmt="csv"))
    assert again.status == "skipped"
    assert again.run_id is None
    assert again.previous_run == first.run_id
    assert again.message == f"already ingested as run {first.run_id} with the same schema"
    # The fix, in each front end's words: the library's own, the command line's, the API's.
    assert again.explain() == (
        f"already ingested as run {first.run_id} with the same schema; "
        "pass force=True to ingest it again"
    )
    assert again.explain(cli_spelling).endswith("; pass --force to ingest it again")
    assert again.explain(api_spelling).endswith("; pass force=true to ingest it again")
    assert forced.status == "completed" and forced.run_id == first.run_id + 1  # type: ignore[operator]
    # Another validation context is another schema fingerprint: not a duplicate.
    assert other_context.status == "completed"
    assert (as_ndjson.status, as_ndjson.tally.invalid) == ("completed", 2_001)
    assert (as_csv_again.status, as_csv_again.previous_run) == ("skipped", first.run_id)
    assert query(db, "SELECT count(*), count(DISTINCT content_hash) FROM ingestion_runs") == [
        (4, 1)
    ]
    assert query(db, "SELECT count(*) FROM raw_data") == [(8_001,)]


def test_changed_content_is_ingested(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "g.csv"
    generate(path, 100, seed=1)
    with Store(db) as store:
        ingest_file(store, path, Transaction, RunOptions())
        with path.open("a") as fh:
            fh.write("TXN-X,1.0,USD,CHANNEL1,2024-01-01T00:00:00\n")
        second = ingest_file(store, path, Transaction, RunOptions())
    assert second.status == "completed"
    assert second.tally.rows == 101


def _stages() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "prefetch"]


def test_failure_mid_run_leaves_no_rows(
    tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.csv"
    generate(path, 20_000, seed=2)
    calls = {"n": 0}
    real = pipeline.store_batch

    def failing(*args: object, **kwargs: object) -> pipeline.Tally:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk on fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "store_batch", failing)
    with Store(db) as store, pytest.raises(OSError, match="disk on fire"):
        ingest_file(store, path, Transaction, SMALL_BLOCKS)
    assert calls["n"] == 3
    # The reading and the validating threads stopped with the run (an API server lives on).
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _stages():
        time.sleep(0.05)
    assert _stages() == []
    assert data_rows(db, 1) == (0, 0, 0)
    assert query(db, "SELECT status, message, rows_total FROM ingestion_runs") == [
        ("failed", "OSError: disk on fire", 0)
    ]
    # The file was not recorded as ingested: the next run takes it.
    monkeypatch.setattr(pipeline, "store_batch", real)
    with Store(db) as store:
        assert ingest_file(store, path, Transaction, SMALL_BLOCKS).status == "completed"


KILLABLE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from engine.pipeline import RunOptions, ingest_file
    from engine.store.store import Store
    from schemas.transactions import Transaction

    def progress(p):
        print("batch", p.tally.rows, flush=True)

    with Store(Path(sys.argv[1])) as store:
        ingest_file(store, Path(sys.argv[2]), Transaction, RunOptions(block_size=64 * 1024), progress)
    print("done", flush=True)
    """
)


def test_killed_process_leaves_no_rows(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "g.csv"
    generate(path, 200_000, seed=4)
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(db), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    seen = 0
    for line in child.stdout:
        if line.startswith("batch"):
            seen += 1
        if seen == 5:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert data_rows(db, 1) == (0, 0, 0)
    with Store(db) as store:
        assert mark_interrupted(store) == 1
    assert query(db, "SELECT status FROM ingestion_runs") == [("failed",)]
