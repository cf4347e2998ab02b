"""`serve --lake`: the REST API over a lake, beside a `run` process writing the same lake."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.api.conftest import start_server
from tests.lake.conftest import ROOT

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = ROOT / "data" / "transactions_sample.csv"


def test_the_api_serves_a_lake_shared_with_other_writers(tmp_path: Path, cli: Cli) -> None:
    lake = str(tmp_path / "lake")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SAMPLE, data / "sample.csv")
    server = start_server(tmp_path, "--lake", lake, "--data-dir", str(data))
    try:
        with server.client() as client:
            assert client.get("/api/v1/summary").json()["rows_total"] == 0
            first = client.post("/api/v1/ingest", params={"file_path": "sample.csv"}).json()
            assert (first["status"], first["rows_total"], first["rows_valid"]) == (
                "completed",
                21,
                7,
            )
            again = client.post("/api/v1/ingest", params={"file_path": "sample.csv"}).json()
            assert (again["status"], again["previous_run"]) == ("skipped", first["run_id"])
            # Another process writes the same lake meanwhile: the server sees its run.
            other = tmp_path / "other.csv"
            other.write_bytes(SAMPLE.read_bytes().replace(b"TXN-1,", b"TXN-X,"))
            assert cli("run", str(other), "--lake", lake, "-q").returncode == 0
            summary = client.get("/api/v1/summary").json()
            assert (summary["rows_total"], summary["rows_valid"]) == (42, 14)
            runs = client.get("/api/v1/runs").json()
            assert runs["total"] == 2
            detail = client.get(f"/api/v1/runs/{first['run_id']}").json()
            assert detail["rows_invalid"] == 14
            health = client.get("/api/v1/health").json()
            assert (health["status"], health["database"]) == ("ok", lake)
    finally:
        assert server.stop() == -signal.SIGTERM  # uvicorn exits by the signal, shut down
    assert not (tmp_path / "api.duckdb").exists()
