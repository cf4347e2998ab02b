"""A concurrent load on a running API server: uploads in a loop while readers poll.

Used by ``benchmarks/bench_api.py`` (about a minute, figures for the README) and by
``tests/api/test_load.py`` (a short run, asserting no 5xx, no dropped connection and
stored rows = accepted rows). Each uploader posts the same CSV again and again with
``force=true`` (every upload is a new run); each reader cycles over ``/summary``, ``/runs``
and ``/health``. A request that gets no HTTP answer at all (reset, closed, timed out) is a
dropped connection.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READ_ENDPOINTS = ("/api/v1/summary", "/api/v1/runs", "/api/v1/health")
UPLOAD = "/api/v1/ingest"


@dataclass
class LoadResult:
    seconds: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # (endpoint, status)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (endpoint, error)
    # Latency of each read made while at least one upload was in flight, by endpoint.
    during_ingest: dict[str, list[float]] = field(default_factory=dict)
    upload_seconds: list[float] = field(default_factory=list)
    accepted_rows: int = 0  # rows_total of the uploads answered 200 (completed runs)
    uploads_ok: int = 0
    stored_rows: int | None = None  # the summary's rows_total at the end
    runs_completed: int | None = None
    runs_failed: int | None = None
    samples: list[str] = field(default_factory=list)  # the first bodies of failed requests
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def failures(self) -> Counter[tuple[str, int]]:
        return Counter({key: n for key, n in self.statuses.items() if key[1] != 200})

    def percentile(self, endpoint: str, fraction: float) -> float | None:
        values = sorted(self.during_ingest.get(endpoint, []))
        if not values:
            return None
        return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]

    def _note(self, endpoint: str, status: int | None, error: str | None, body: str) -> None:
        with self.lock:
            self.requests[endpoint] += 1
            if status is not None:
                self.statuses[endpoint, status] += 1
            if error is not None:
                self.dropped[endpoint, error] += 1
            if (status is None or status != 200) and len(self.samples) < 10:
                self.samples.append(f"{endpoint}: {status or error}: {body[:300]}")


class _Uploads:
    """How many uploads are in flight right now (reads made meanwhile are 'during ingest')."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


def run_load(
    url: str,
    csv: Path,
    *,
    seconds: float,
    uploaders: int = 4,
    readers: int = 16,
    timeout_s: float = 120.0,
) -> LoadResult:
    """Run the load for ``seconds`` (uploads in flight then finish), and check the totals."""
    result = LoadResult()
    body = csv.read_bytes()
    in_flight = _Uploads()
    stop = threading.Event()

    def upload() -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    with in_flight:
                        response = client.post(
                            UPLOAD,
                            files={"file": (csv.name, body, "text/csv")},
                            data={"force": "true"},
                        )
                except httpx.TransportError as exc:
                    result._note(UPLOAD, None, type(exc).__name__, str(exc))
                    continue
                elapsed = time.perf_counter() - began
                result._note(UPLOAD, response.status_code, None, response.text)
                if response.status_code == 200:
                    answer = response.json()
                    with result.lock:
                        result.upload_seconds.append(elapsed)
                        if answer["status"] == "completed":
                            result.accepted_rows += int(answer["rows_total"])
                            result.uploads_ok += 1

    def read(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=timeout_s) as client:
            number = offset
            while not stop.is_set():
                endpoint = READ_ENDPOINTS[number % len(READ_ENDPOINTS)]
                number += 1
                busy = in_flight.count > 0
                began = time.perf_counter()
                try:
                    response = client.get(endpoint)
                except httpx.TransportError as exc:
                    result._note(endpoint, None, type(exc).__name__, str(exc))
                    continue
                elapsed = time.perf_counter() - began
                result._note(endpoint, response.status_code, None, response.text)
                if busy and response.status_code == 200:
                    with result.lock:
                        result.during_ingest.setdefault(endpoint, []).append(elapsed)

    threads = [threading.Thread(target=upload, name=f"upload-{i}") for i in range(uploaders)]
    threads += [threading.Thread(target=read, args=(i,), name=f"read-{i}") for i in range(readers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        summary = client.get("/api/v1/summary")
        if summary.status_code == 200:
            data = summary.json()
            result.stored_rows = int(data["rows_total"])
            result.runs_completed = int(data["runs_completed"])
            result.runs_failed = int(data["runs_failed"])
        else:
            result.samples.append(f"final /summary: {summary.status_code}: {summary.text[:300]}")
    return result


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line")
