"""A run's duration has one definition: what ``ingest_file`` returns (and ``run`` prints) is
what ``ingestion_runs`` stores, ``finished_at - started_at``, the commit included."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.pipeline import RunOptions, ingest_file
from engine.store.store import Store
from schemas.transactions import Transaction
from tests.conftest import DATA, query


def test_the_returned_duration_is_the_stored_one(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    before = datetime.now(UTC)
    with Store(db) as store:
        first = ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
        again = ingest_file(store, DATA / "transactions_sample.csv", Transaction, RunOptions())
    after = datetime.now(UTC)
    assert first.status == "completed" and again.status == "skipped"
    [(run_id, started, finished, duration, elapsed)] = query(
        db,
        "SELECT run_id, started_at, finished_at, duration_s, epoch(finished_at - started_at) "
        "FROM ingestion_runs",
    )
    assert run_id == first.run_id == 1
    assert duration == first.duration_s == elapsed
    assert first.rows_per_s == 21 / duration
    assert before <= started < finished <= after  # type: ignore[operator]
    # The skipped call is not a run: nothing else was stored.
    assert again.run_id is None and again.previous_run == 1
