"""A full disk under a running server: DuckDB invalidates the database, the server keeps
serving, says so in /health, and reopens the database by itself once there is room.

The database lives on a small tmpfs, most of it taken by a ballast file. Uploads fill the
rest until DuckDB's checkpoint at a commit cannot write: DuckDB then invalidates the
database. Every answer must be a 200 or, for what needs the database while it cannot be
used, a 503 with a one-line reason: never a 500 and never a dropped connection. Once the
ballast is removed, the next request reopens the database: the runs answered 200 are all
there, the summary's rows are exactly theirs, and ingests work again.

Needs root (to mount the tmpfs, the shared ``small_disk`` fixture); skipped otherwise, with
the reason, or failed when INGEST_REQUIRE_TMPFS=1 (as CI sets it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from engine.generate import generate
from tests.api.conftest import Server, ServerFactory

TMPFS_MB = 48
BALLAST_MB = 20
ROWS = 100_000  # about 5 MB of CSV, 18 MB of WAL: DuckDB checkpoints at each commit


def wait_for_health(client: httpx.Client, status: int, timeout_s: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get("/api/v1/health")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_full_disk_invalidates_the_database_and_the_server_recovers(
    servers: ServerFactory, small_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    disk = small_disk(f"{TMPFS_MB}m")
    upload = tmp_path / "rows.csv"
    generate(upload, ROWS, seed=3)
    body = upload.read_bytes()
    spool = tmp_path / "spool"  # uploads are staged off the small disk
    spool.mkdir()
    # The database on the small disk; the server's log and staging beside the test.
    db = disk / "api.duckdb"
    server: Server = servers("--db", str(db), "--spool-dir", str(spool))
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * (BALLAST_MB << 20))
    answers: list[int] = []
    accepted = 0
    with server.client() as client:
        for _ in range(8):
            response = client.post(
                "/api/v1/ingest", files={"file": ("rows.csv", body)}, data={"force": "true"}
            )
            answers.append(response.status_code)
            if response.status_code != 200:
                break
            accepted += response.json()["rows_total"]
        assert answers[-1] == 503 and set(answers[:-1]) == {200}, answers
        failed = response.json()["detail"]
        # The ingest either meets the full disk itself, or finds the database already
        # invalidated by it (DuckDB's background checkpoint can get there first).
        if failed.startswith("the database failed while ingesting rows.csv (FATAL Error: "):
            assert failed.endswith(
                "; the server reopens it (see /api/v1/runs for whether the run was kept, "
                "and /api/v1/health)"
            )
        else:
            assert failed.startswith("the database cannot be used (FATAL Error: "), failed
            assert failed.endswith("(the server tries to reopen it on the next request)")
        assert "No space left on device" in failed
        health = client.get("/api/v1/health")
        if health.status_code == 503:
            # Still no room, and reopening had to write (replaying DuckDB's log, marking the
            # run failed): /health says why, and so does every request that needs it.
            assert health.json()["status"] == "unavailable"
            assert "reopening it failed" in health.json()["database_error"]
            summary = client.get("/api/v1/summary")
            assert summary.status_code == 503
            assert summary.json()["detail"].startswith("the database cannot be used (")
        else:
            # Opening a current database writes nothing: it reopened at once, and reads work.
            assert health.status_code == 200, health.text
            assert "No space left on device" in health.json()["database_reopened"]["reason"]
            assert client.get("/api/v1/summary").json()["rows_total"] == accepted
        # Room again: the next request reopens it.
        ballast.unlink()
        health = wait_for_health(client, 200)
        assert health.status_code == 200, health.text
        data = health.json()
        assert (data["status"], data["database_error"]) == ("ok", None)
        assert "No space left on device" in data["database_reopened"]["reason"]
        runs = client.get("/api/v1/runs").json()["runs"]
        completed = [run for run in runs if run["status"] == "completed"]
        assert len(completed) == answers.count(200)
        assert all(run["status"] in ("completed", "failed") for run in runs), runs
        assert client.get("/api/v1/summary").json()["rows_total"] == accepted
        again = client.post(
            "/api/v1/ingest", files={"file": ("rows.csv", body)}, data={"force": "true"}
        )
        assert (again.status_code, again.json()["status"]) == (200, "completed")
        assert client.get("/api/v1/summary").json()["rows_total"] == accepted + ROWS
    server.stop()
    assert " 500 " not in server.log_text()
