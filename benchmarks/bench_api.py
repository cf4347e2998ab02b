"""REST API under load (issue 13): uploads and reads at once, for a set time.

    python benchmarks/bench_api.py [--seconds 60] [--uploaders 4] [--readers 16] [--rows 50000]

Starts ``cli.py serve`` on a fresh database, then --uploaders clients post a generated
--rows-row CSV in a loop (``force=true``: each upload is a new run) while --readers clients
cycle over ``/summary``, ``/runs`` and ``/health``. Prints the requests, the answers that
were not 200 (by endpoint and status) and the dropped connections, p50/p99 latency of each
read endpoint while uploads were in flight, the server's peak RSS, and the rows check: the
rows of the uploads answered 200 against the summary's stored rows at the end. Writes
benchmarks/results/api.json. Exits 1 when a check fails (a 5xx, a dropped connection, or
stored rows that differ from the accepted ones).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.api_load import READ_ENDPOINTS, UPLOAD, LoadResult, peak_rss_mib, run_load
from benchmarks.common import RESULTS, ROOT
from engine.generate import generate
from engine.streaming.local_broker import free_port


def start_server(workdir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = workdir / "server.log"
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "serve",
        "--db",
        str(workdir / "api.duckdb"),
        "--port",
        str(port),
        "--max-connections-per-client",  # every client of the load comes from this address
        "0",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not answer within 60 s")


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f}"


def figures(result: LoadResult, rss_mib: float, args: argparse.Namespace) -> dict[str, Any]:
    latency = {
        endpoint: {
            "requests_during_ingest": len(result.during_ingest.get(endpoint, [])),
            "p50_ms": None if (p := result.percentile(endpoint, 0.5)) is None else p * 1000,
            "p99_ms": None if (q := result.percentile(endpoint, 0.99)) is None else q * 1000,
        }
        for endpoint in READ_ENDPOINTS
    }
    return {
        "title": "REST API under concurrent uploads and reads",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seconds": round(result.seconds, 1),
        "uploaders": args.uploaders,
        "readers": args.readers,
        "rows_per_upload": args.rows,
        "requests": dict(result.requests),
        "not_200": {f"{e} {s}": n for (e, s), n in sorted(result.failures().items())},
        "dropped": {f"{e} {err}": n for (e, err), n in sorted(result.dropped.items())},
        "uploads_ok": result.uploads_ok,
        "upload_p50_s": result_percentile(result.upload_seconds, 0.5),
        "rows_per_s_ingested": round(result.accepted_rows / result.seconds),
        "read_latency_during_ingest": latency,
        "server_peak_rss_mib": round(rss_mib),
        "accepted_rows": result.accepted_rows,
        "stored_rows": result.stored_rows,
        "runs_completed": result.runs_completed,
        "runs_failed": result.runs_failed,
        "samples": result.samples,
    }


def result_percentile(values: list[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-api-", dir=ROOT / "benchmarks") as tmp:
        workdir = Path(tmp)
        csv = workdir / "upload.csv"
        generate(csv, args.rows, seed=13)
        process, url, log = start_server(workdir)
        try:
            result = run_load(
                url, csv, seconds=args.seconds, uploaders=args.uploaders, readers=args.readers
            )
            rss = peak_rss_mib(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        server_log = log.read_text(errors="replace")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "api-server.log").write_text(server_log)
    data = figures(result, rss, args)
    print(
        f"\n{data['title']}: {args.uploaders} uploaders ({args.rows:,}-row CSV), "
        f"{args.readers} readers, {data['seconds']} s"
    )
    print(f"{'endpoint':22} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  (reads during ingests)")
    for endpoint in READ_ENDPOINTS:
        print(
            f"{endpoint:22} {result.requests[endpoint]:>9,} "
            f"{ms(result.percentile(endpoint, 0.5)):>8} {ms(result.percentile(endpoint, 0.99)):>8}"
        )
    print(
        f"{UPLOAD:22} {result.requests[UPLOAD]:>9,}  uploads completed: {result.uploads_ok:,}, "
        f"{data['rows_per_s_ingested']:,} rows/s"
    )
    print(f"answers other than 200: {data['not_200'] or 'none'}")
    print(f"dropped connections: {data['dropped'] or 'none'}")
    print(f"server peak RSS: {data['server_peak_rss_mib']:,} MiB")
    print(
        f"rows check: accepted {result.accepted_rows:,}, stored {result.stored_rows}, "
        f"runs completed {result.runs_completed}, failed {result.runs_failed}"
    )
    for sample in result.samples:
        print(f"  sample: {sample}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "api.json"
    out.write_text(json.dumps(data, indent=2))
    print(f"wrote {out}")
    ok = (
        result.server_errors() == 0
        and not result.dropped
        and result.stored_rows == result.accepted_rows
    )
    if not ok:
        tail = "\n".join(server_log.splitlines()[-20:])
        print(f"FAILED; the server log ends with:\n{tail}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
