"""The server's Database on a real DuckDB file: readers retry, an invalidated database is
reopened by itself, and the run it interrupted is marked failed.

DuckDB's own failures are injected by raising its exception types where DuckDB would (a
checkpoint that cannot write raises ``FatalException`` and invalidates the database); the
real thing, a full disk under a running server, is in ``test_faults.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from engine.api.database import Database
from engine.api.errors import UnavailableError
from engine.api.services import open_store
from engine.errors import StoreError
from engine.store.runs import RunStart, start_run
from engine.store.store import Store

START = RunStart("file", "upload:a.csv", "csv", "Transaction", "f", "processed_data")
INVALID = "FATAL Error: Failed: database has been invalidated because of a previous fatal error"


def statuses(database: Database) -> list[tuple[int, str, str | None]]:
    return database.read(
        lambda store: store.rows("SELECT run_id, status, message FROM ingestion_runs ORDER BY 1")
    )


def test_a_writer_that_invalidates_the_database(tmp_path: Path) -> None:
    database = Database(lambda: open_store(tmp_path / "db.duckdb"))
    with database.writing("x", timeout_s=1) as store:
        start_run(store, START)
    before = database.changes()
    with (
        pytest.raises(UnavailableError) as caught,
        database.writing("ingesting a.csv", timeout_s=1) as store,
    ):
        start_run(store, START)
        raise duckdb.FatalException(INVALID)
    assert caught.value.status == 503
    assert str(caught.value) == (
        f"the database failed while ingesting a.csv ({INVALID}); the server reopens it "
        "(see /api/v1/runs for whether the run was kept, and /api/v1/health)"
    )
    # Reopened at once: both runs left running are failed, with the reason.
    reopened = database.reopened
    assert reopened is not None and (reopened.reason, reopened.runs_failed) == (INVALID, 2)
    message = f"failed: the database failed under the server ({INVALID}) and was reopened; no rows of this run were kept"
    assert statuses(database) == [(1, "failed", message), (2, "failed", message)]
    assert database.changes() != before and database.unavailable is None
    with database.writing("y", timeout_s=1) as store:  # the new database takes writes
        assert start_run(store, START)[0] == 3
    database.close()


def test_readers_retry_and_follow_a_reopened_database(tmp_path: Path) -> None:
    database = Database(lambda: open_store(tmp_path / "db.duckdb"))
    calls: list[int] = []

    def out_of_memory_twice(store: Store) -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
        return int(store.rows("SELECT 41 + 1")[0][0])

    assert database.read(out_of_memory_twice) == 42 and len(calls) == 3
    generation = database.generation

    def invalidated_once(store: Store) -> int:
        calls.append(1)
        if len(calls) == 4:
            raise duckdb.FatalException(INVALID)
        return int(store.rows("SELECT count(*) FROM ingestion_runs")[0][0])

    assert database.read(invalidated_once) == 0  # answered by the reopened database
    assert database.generation == generation + 1
    assert database.reopened is not None and database.reopened.runs_failed == 0

    def always_out_of_memory(store: Store) -> int:
        raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")

    with pytest.raises(UnavailableError) as caught:
        database.read(always_out_of_memory)
    assert str(caught.value) == (
        "the database is out of memory (Out of Memory Error: could not allocate block) "
        "(retry in a moment)"
    )
    database.close()


def test_a_database_that_cannot_be_reopened_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.duckdb"
    failing = {"now": False}

    def opener() -> Store:
        if failing["now"]:
            raise StoreError(path, "cannot open the database: No space left on device")
        return open_store(path)

    monkeypatch.setattr("engine.api.database.REOPEN_INTERVAL_S", 0.0)
    database = Database(opener)
    failing["now"] = True
    with pytest.raises(UnavailableError):
        database.read(lambda store: (_ for _ in ()).throw(duckdb.FatalException(INVALID)))
    assert database.unavailable == (
        f"{INVALID}; reopening it failed ({path}: cannot open the database: No space left on device)"
    )
    with pytest.raises(UnavailableError) as caught:
        database.read(lambda store: 1)
    assert str(caught.value) == (
        f"the database cannot be used ({database.unavailable}) "
        "(the server tries to reopen it on the next request)"
    )
    failing["now"] = False  # space is back: the next request reopens it
    assert database.read(lambda store: store.rows("SELECT 1")[0][0]) == 1
    assert database.unavailable is None
    assert database.reopened is not None and database.reopened.reason == INVALID
    database.close()


def test_the_health_probe_does_not_wait_behind_long_reads(tmp_path: Path) -> None:
    """Every reader lane held (four exports of large XLSX files, say) and the default
    thread pool too: the health probe still answers, in its own lane, on its own thread."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.api.settings import ApiSettings

    release = threading.Event()
    entered = threading.Semaphore(0)

    def long_read(store: Store) -> None:
        entered.release()
        release.wait(120)

    with TestClient(create_app(ApiSettings(db=tmp_path / "db.duckdb"))) as client:
        database = client.app.state.services.database  # type: ignore[attr-defined]
        readers = [threading.Thread(target=database.read, args=(long_read,)) for _ in range(4)]
        for reader in readers:
            reader.start()
        for _ in readers:
            assert entered.acquire(timeout=60)
        answers: list[tuple[int, str]] = []

        def probe() -> None:
            response = client.get("/api/v1/health")
            answers.append((response.status_code, response.json()["status"]))

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join(60)  # without its own lane it waits until the reads end
        finished = not prober.is_alive()
        release.set()
        prober.join()
        for reader in readers:
            reader.join()
    assert finished
    assert answers == [(200, "ok")]


def test_queued_ingests_leave_threads_for_reads(tmp_path: Path) -> None:
    """45 uploads queued behind a writer that is held: /health and /summary still answer
    (the runs take threads of their own, and no endpoint needs a thread to find the server's
    services), and each queued upload gets its 409 once --busy-timeout has passed."""
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.api.settings import ApiSettings

    settings = ApiSettings(db=tmp_path / "db.duckdb", busy_timeout_s=20)
    with TestClient(create_app(settings)) as client:
        database = client.app.state.services.database  # type: ignore[attr-defined]
        statuses: list[int] = []

        def upload(number: int) -> None:
            files = {"file": (f"t{number}.csv", b"external_id,amount\nT1,1\n", "text/csv")}
            statuses.append(client.post("/api/v1/ingest", files=files).status_code)

        with database.writing("holding", timeout_s=5):
            uploads = [threading.Thread(target=upload, args=(n,)) for n in range(45)]
            for thread in uploads:
                thread.start()
            time.sleep(2)  # they are queued now
            answers: list[int] = []

            def read() -> None:
                answers.append(client.get("/api/v1/health").status_code)
                answers.append(client.get("/api/v1/summary").status_code)

            reader = threading.Thread(target=read)
            reader.start()
            reader.join(15)  # without threads of its own, it waits for the queue (20 s)
            answered = not reader.is_alive()
        reader.join()
        for thread in uploads:
            thread.join()
    assert answered
    assert answers == [200, 200]
    assert len(statuses) == 45 and set(statuses) <= {200, 409}


def test_an_export_out_of_duckdbs_memory_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    import engine.api.exports as exports
    from engine.api.app import create_app
    from engine.api.settings import ApiSettings
    from engine.errors import ConfigError
    from engine.reports.exports import write_export as real

    calls: list[int] = []

    def short_of_memory(store: Store, plan: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            try:
                raise duckdb.OutOfMemoryException("Out of Memory Error: failed to pin block")
            except duckdb.OutOfMemoryException as exc:
                raise ConfigError("x.csv: export failed: Out of Memory Error") from exc
        return real(store, plan)  # type: ignore[arg-type]

    monkeypatch.setattr(exports, "write_export", short_of_memory)
    with TestClient(create_app(ApiSettings(db=tmp_path / "db.duckdb"))) as client:
        response = client.get("/api/v1/errors/csv")
    assert (response.status_code, len(calls)) == (200, 2)


def test_a_failed_export_names_the_download_not_the_servers_staging_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    import engine.api.exports as exports
    from engine.api.app import create_app
    from engine.api.settings import ApiSettings
    from engine.errors import ConfigError

    def failing(store: Store, plan: Any) -> None:
        raise ConfigError(f"{plan.request.output}: export failed: Conversion Error: boom")

    monkeypatch.setattr(exports, "write_export", failing)
    with TestClient(create_app(ApiSettings(db=tmp_path / "db.duckdb"))) as client:
        response = client.get("/api/v1/errors/xlsx")
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "errors.xlsx: export failed: Conversion Error: boom"},
    )
