"""A 50 MB upload: streamed to disk as it arrives, ingested while the API keeps answering.

Outcomes only, no timings: the staged file is on disk and growing before the upload has
been sent whole (had the server buffered the upload, nothing would be); while the run is
ingesting, every read answers with committed data only (nothing of the run, then all of
it, never a part), and a second ingest either waits its turn and gets a 409 after the
--busy-timeout or, once the run is done, is ingested; the totals account for whichever.
"""

from __future__ import annotations

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
STAGED_BEFORE_THE_END = 16 * MiB  # on disk while the upload's second half is still unsent
BOUNDARY = "large-upload-boundary"
SMALL = (21, 7)  # data/transactions_sample.csv: rows, valid


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


def staged(server: Server) -> int:
    """Bytes of the upload staged on disk so far (under the server's spool directory)."""
    return sum(p.stat().st_size for p in server.workdir.rglob("upload-*/big.csv"))


def test_large_upload(server: Server, big_csv: Path) -> None:
    valid, invalid = expected_counts(big_csv)
    size = big_csv.stat().st_size
    baseline = server.rss_bytes()
    on_disk: list[int] = []

    def body() -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        with big_csv.open("rb") as fh:
            while chunk := fh.read(MiB):
                yield chunk
                if not on_disk and fh.tell() >= size // 2:
                    # Half sent: wait (outcome, not time) for the server to have staged most
                    # of it on disk before sending the rest.
                    deadline = time.monotonic() + 120
                    while staged(server) < STAGED_BEFORE_THE_END:
                        assert time.monotonic() < deadline, "the upload is not staged as it comes"
                        time.sleep(0.01)
                    on_disk.append(staged(server))
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    committed = {0, ROWS}
    busy_ingested = False
    with ThreadPoolExecutor(1) as pool, server.client() as client:
        upload = pool.submit(client.post, "/api/v1/ingest", headers=headers, content=body())
        running = wait_for_running_run(client)
        peak_rss = server.rss_bytes()
        # Committed data only, whenever asked: nothing of the run, then all of it.
        summary = client.get("/api/v1/summary").json()
        assert summary["rows_total"] in committed
        if summary["rows_total"] == 0:
            assert summary["runs"][0]["status"] == "running"
        export = client.get("/api/v1/errors/csv")
        assert export.status_code == 200
        assert export.text.count("\n") in (1, invalid + 1)
        health = client.get("/api/v1/health").json()
        assert health["writer"] in ("ingesting big.csv", None)
        busy = client.post("/api/v1/ingest", params={"file_path": "small.csv"})
        if busy.status_code == 409:
            assert busy.json() == {
                "detail": "the database is busy (ingesting big.csv) and stayed busy for "
                "0.25 s (retry when it is done)"
            }
        else:  # the big run was done: the small one took its turn
            assert (busy.status_code, busy.json()["status"]) == (200, "completed")
            busy_ingested = True
        response = upload.result(timeout=600)
        peak_rss = max(peak_rss, server.rss_bytes())
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["run_id"], result["status"], result["uploaded"]) == (running, "completed", True)
    assert (result["rows_total"], result["rows_valid"], result["rows_invalid"]) == (
        ROWS,
        valid,
        invalid,
    )
    print(
        f"\nupload of {size / MiB:.1f} MiB: {on_disk[0] / MiB:.1f} MiB staged on disk when half "
        f"was sent; server RSS {baseline / MiB:.0f} MiB before, {peak_rss / MiB:.0f} MiB "
        f"sampled during the ingest; ingest {result['duration_s']:.2f} s"
    )
    after = client_summary(server)
    extra_rows, extra_valid = SMALL if busy_ingested else (0, 0)
    assert (after["rows_total"], after["rows_valid"]) == (ROWS + extra_rows, valid + extra_valid)


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
