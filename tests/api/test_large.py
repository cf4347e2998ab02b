"""A 50 MB upload: streamed to disk in bounded memory, ingested while the API stays responsive.

The body is sent chunked from a generator, which samples the server's resident memory as it
goes: had the server buffered the upload, its memory would grow by the upload's size before
ingestion starts. While the run is ingesting, /summary must answer quickly (it reads on its
own cursor) and a second ingest gets a 409 once the --busy-timeout has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import polars as pl
import pytest

from engine.generate import generate
from tests.api.conftest import Server, ServerFactory
from tests.conftest import DATA

MiB = 1 << 20
ROWS = 1_020_000  # about 52 MB of CSV
UPLOAD_GROWTH_LIMIT = 24 * MiB  # well under the upload's size: it is never held whole
SUMMARY_LATENCY_LIMIT_S = 0.5
BOUNDARY = "large-upload-boundary"


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.csv"
    generate(path, ROWS, seed=7)
    assert path.stat().st_size >= 50 * 1_000_000
    return path


@pytest.fixture(scope="module")
def server(servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Server:
    data = tmp_path_factory.mktemp("data")
    (data / "small.csv").write_bytes((DATA / "transactions_sample.csv").read_bytes())
    return servers("--data-dir", str(data), "--busy-timeout", "0.25")


def expected_counts(path: Path) -> tuple[int, int]:
    """Valid and invalid rows: -50.0 amounts and JPY/CAD currencies fail the schema."""
    frame = pl.read_csv(path)
    bad = (pl.col("amount") <= 0) | pl.col("currency").is_in(["JPY", "CAD"])
    invalid = frame.filter(bad).height
    return frame.height - invalid, invalid


def test_large_upload(server: Server, big_csv: Path) -> None:
    valid, invalid = expected_counts(big_csv)
    baseline = server.rss_bytes()
    upload_rss: list[int] = []

    def body() -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        with big_csv.open("rb") as fh:
            while chunk := fh.read(MiB):
                upload_rss.append(server.rss_bytes())
                yield chunk
        upload_rss.append(server.rss_bytes())
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    peak_rss = [baseline]
    done = threading.Event()

    def sample_peak() -> None:
        while not done.is_set():
            peak_rss[0] = max(peak_rss[0], server.rss_bytes())
            time.sleep(0.01)

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    with ThreadPoolExecutor(2) as pool, server.client() as client:
        sampler = pool.submit(sample_peak)
        upload = pool.submit(client.post, "/api/v1/ingest", headers=headers, content=body())
        try:
            running = wait_for_running_run(client)
            latencies = []
            for _ in range(8):
                began = time.perf_counter()
                summary = client.get("/api/v1/summary")
                latencies.append(time.perf_counter() - began)
                assert summary.status_code == 200
                # Committed data only: the run in progress counts for nothing yet.
                assert summary.json()["rows_total"] == 0
                assert summary.json()["runs"][0]["status"] == "running"
            # Exports read committed data too: the run in progress is not in them yet.
            export = client.get("/api/v1/errors/csv")
            assert export.text == "run_id,row_number,line_number,message,errors,raw\n"
            health = client.get("/api/v1/health").json()
            assert health["writer"] == "ingesting big.csv"
            busy = client.post("/api/v1/ingest", params={"file_path": "small.csv"})
            assert (busy.status_code, busy.json()) == (
                409,
                {
                    "detail": "the database is busy (ingesting big.csv) and stayed busy for "
                    "0.25 s (retry when it is done)"
                },
            )
            still = client.get(f"/api/v1/runs/{running}").json()["status"]
            assert still == "running", "the ingest ended before the measurements did"
            response = upload.result(timeout=300)
        finally:
            done.set()
            sampler.result()
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["run_id"], result["status"], result["uploaded"]) == (running, "completed", True)
    assert (result["rows_total"], result["rows_valid"], result["rows_invalid"]) == (
        ROWS,
        valid,
        invalid,
    )
    growth = max(upload_rss) - baseline
    print(
        f"\nupload of {big_csv.stat().st_size / MiB:.1f} MiB: server RSS {baseline / MiB:.0f} MiB "
        f"before, +{growth / MiB:.1f} MiB at most while uploading, "
        f"+{(peak_rss[0] - baseline) / MiB:.0f} MiB at most while ingesting; "
        f"ingest {result['duration_s']:.2f} s; /summary during the ingest: "
        f"median {sorted(latencies)[4] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    assert growth < UPLOAD_GROWTH_LIMIT
    assert max(latencies) < SUMMARY_LATENCY_LIMIT_S
    after = client_summary(server)
    assert (after["rows_total"], after["rows_valid"]) == (ROWS, valid)


def wait_for_running_run(client: httpx.Client, timeout_s: float = 120.0) -> int:
    """The id of the run once the upload is staged and its ingestion has started."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = client.get("/api/v1/runs").json()["runs"]
        if runs and runs[-1]["status"] == "running":
            return int(runs[-1]["run_id"])
        time.sleep(0.02)
    raise AssertionError("no run started")


def client_summary(server: Server) -> dict[str, object]:
    with server.client() as client:
        data: dict[str, object] = client.get("/api/v1/summary").json()
        return data
