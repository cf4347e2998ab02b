"""Uploads and reads at once: every request answered 200, none dropped, every row kept.

The load of ``benchmarks/bench_api.py``, shorter: 4 clients upload a generated CSV in a
loop (each upload a new run) while 16 clients read ``/summary``, ``/runs`` and ``/health``.
Readers and writers share the database: a reader must never fail because a writer is
running (DuckDB's memory, its checkpoints), and the rows stored at the end must be exactly
the rows of the uploads answered 200. Latency is the benchmark's business, not this test's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.api_load import READ_ENDPOINTS, UPLOAD, run_load
from engine.generate import generate
from tests.api.conftest import ServerFactory

SECONDS = 10.0  # uploads in flight at the end still finish: each uploader completes one at least
ROWS = 20_000
UPLOADERS = 4
READERS = 16


@pytest.mark.slow
def test_concurrent_uploads_and_reads(servers: ServerFactory, tmp_path: Path) -> None:
    upload = tmp_path / "load.csv"
    generate(upload, ROWS, seed=11)
    server = servers()
    result = run_load(server.url, upload, seconds=SECONDS, uploaders=UPLOADERS, readers=READERS)
    assert result.failures() == {}, result.samples
    assert result.dropped == {}, result.samples
    # The load did happen: each uploader's runs and each endpoint's reads were answered.
    assert result.uploads_ok >= UPLOADERS
    assert all(result.requests[endpoint] >= READERS for endpoint in READ_ENDPOINTS)
    assert result.requests[UPLOAD] == result.uploads_ok
    assert (result.runs_completed, result.runs_failed) == (result.uploads_ok, 0)
    assert result.stored_rows == result.accepted_rows == result.uploads_ok * ROWS
    server.stop()
    assert "Traceback" not in server.log_text()
