"""Remote inputs from real servers on 127.0.0.1: an HTTP server thread (with ranged requests)
and an S3-compatible server (moto's server mode), read as streams."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

import engine
from engine.errors import SourceError
from engine.generate import generate
from engine.pipeline import Progress
from engine.sources.remote import READ_AHEAD, RemoteSettings
from schemas.transactions import Transaction
from tests.conftest import ROOT, query

PAUSE_AFTER = 256 * 1024


@dataclass
class Served:
    """What the HTTP server serves, and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    ranges: bool = True
    pause: threading.Event = field(default_factory=threading.Event)
    paused_path: str | None = None  # this path's body stops after PAUSE_AFTER bytes...
    resumed_in_time: bool | None = None  # ...until ``pause`` is set (by the reader)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    cut: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before hanging up
    stall: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before stalling


def handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            served.requests.append((self.path, wanted))
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start, stop = 0, len(body)
            if wanted and served.ranges:
                first, last = wanted.removeprefix("bytes=").split("-")
                start, stop = int(first), min(int(last) + 1, len(body))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{len(body)}")
            else:
                self.send_response(200)
            if served.ranges:
                self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(stop - start))
            self.end_headers()
            part = body[start:stop]
            if self.path in served.cut:  # the announced length, then the connection drops
                self.wfile.write(part[: served.cut[self.path]])
                self.wfile.flush()
                self.close_connection = True
                return
            if self.path in served.stall:  # the announced length, then nothing until the end
                self.wfile.write(part[: served.stall[self.path]])
                self.wfile.flush()
                served.pause.wait(timeout=20)
                self.close_connection = True
                return
            if self.path == served.paused_path:
                self.wfile.write(part[:PAUSE_AFTER])
                self.wfile.flush()
                served.resumed_in_time = served.pause.wait(timeout=20)
                part = part[PAUSE_AFTER:]
            self.wfile.write(part)

    return Handler


@pytest.fixture
def http() -> Iterator[tuple[str, Served]]:
    served = Served()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        served.pause.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def transactions(tmp_path: Path) -> bytes:
    path = tmp_path / "tx.csv"
    generate(path, 20_000, seed=4)
    return path.read_bytes()


def test_an_http_body_is_read_as_it_arrives(
    http: tuple[str, Served], transactions: bytes, db: Path
) -> None:
    """The server sends the first 256 KiB, then waits until the run reports progress: a
    reader that downloaded the whole body first would never report any (and time out)."""
    base, served = http
    served.files["/tx.csv"] = transactions
    served.paused_path = "/tx.csv"

    def progress(report: Progress) -> None:
        served.pause.set()

    summary = engine.ingest(
        f"{base}/tx.csv", db=db, schema=Transaction, block_size=64 * 1024, progress=progress
    )
    assert served.resumed_in_time is True
    assert (summary.status, summary.tally.rows, summary.path) == (
        "completed",
        20_000,
        f"{base}/tx.csv",
    )
    assert query(db, "SELECT source_path, content_hash FROM ingestion_runs") == [
        (f"{base}/tx.csv", hashlib.sha256(transactions).hexdigest())
    ]


def test_compressed_and_parquet_over_http(
    http: tuple[str, Served], transactions: bytes, tmp_path: Path, db: Path
) -> None:
    base, served = http
    served.files["/tx.csv.gz"] = gzip.compress(transactions)
    frame = pl.read_csv(transactions, infer_schema_length=0)
    frame.write_parquet(tmp_path / "tx.parquet", row_group_size=5_000)
    served.files["/data/tx.parquet"] = (tmp_path / "tx.parquet").read_bytes()
    first = engine.ingest(f"{base}/tx.csv.gz", db=db, schema=Transaction)
    assert (first.status, first.format, first.tally.rows) == ("completed", "csv", 20_000)
    # A signed URL: the extensions are read from its path, not from its query.
    served.files["/tx.csv.gz?sig=a.b&exp=1"] = served.files["/tx.csv.gz"]
    again = engine.ingest(f"{base}/tx.csv.gz?sig=a.b&exp=1", db=db, schema=Transaction)
    assert (again.status, again.format) == ("skipped", "csv")  # the same content
    parquet = engine.ingest(f"{base}/data/tx.parquet", db=db, schema=Transaction)
    assert (parquet.status, parquet.format, parquet.tally.rows) == ("completed", "parquet", 20_000)
    assert (parquet.tally.valid, parquet.tally.invalid) == (first.tally.valid, first.tally.invalid)
    # Parquet is read in ranges: the first GET, as for any input (its size, its first bytes);
    # then Arrow's footer read (the last 64 KiB); then the row groups from byte 4 (after the
    # "PAR1" magic). A range asks for at least 4 MiB (READ_AHEAD), which covers the rest of
    # this 226 KiB file in one request.
    size = len(served.files["/data/tx.parquet"])
    assert 64 * 1024 < size < READ_AHEAD
    ranged = [r for path, r in served.requests if path == "/data/tx.parquet"]
    assert ranged == [None, f"bytes={size - 64 * 1024}-{size - 1}", f"bytes=4-{size - 1}"]


def test_http_failures_are_one_line(http: tuple[str, Served], tmp_path: Path, db: Path) -> None:
    base, served = http
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"{base}/missing.csv", db=db, schema=Transaction)
    assert str(raised.value) == f"{base}/missing.csv: the server answered HTTP 404 Not Found"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{free.getsockname()[1]}/x.csv"
    with pytest.raises(SourceError) as raised:
        engine.ingest(closed, db=db, schema=Transaction)
    assert str(raised.value) == f"{closed}: cannot be reached ([Errno 111] Connection refused)"
    # A body shorter than its Content-Length: the run fails, nothing of it is stored.
    served.files["/cut.csv"] = (ROOT / "data" / "transactions_sample.csv").read_bytes()
    served.cut["/cut.csv"] = 500
    size = len(served.files["/cut.csv"])
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"{base}/cut.csv", db=db, schema=Transaction)
    assert str(raised.value) == (
        f"{base}/cut.csv: the connection broke after 500 of {size:,} bytes"
    )
    assert query(db, "SELECT count(*) FROM raw_data") == [(0,)]
    assert query(db, "SELECT count(*) FROM ingestion_runs WHERE status = 'completed'") == [(0,)]
    # A password in the URL is never shown (nor stored as the run's source).
    with pytest.raises(SourceError) as raised:
        engine.ingest(
            f"http://user:secret@{base.removeprefix('http://')}/x.csv", db=db, schema=Transaction
        )
    assert str(raised.value).startswith("http://user:***@127.0.0.1:")
    assert "secret" not in str(raised.value)
    with pytest.raises(SourceError) as raised:
        engine.ingest("http://[::1", db=db, schema=Transaction)
    assert str(raised.value) == "http://[::1: is not a valid URL (Invalid IPv6 URL)"
    served.ranges = False
    pl.DataFrame({"external_id": ["a"]}).write_parquet(tmp_path / "p.parquet")
    served.files["/p.parquet"] = (tmp_path / "p.parquet").read_bytes()
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"{base}/p.parquet", db=db, schema=Transaction)
    assert str(raised.value) == (
        f"{base}/p.parquet: a Parquet file is read with seeks (its index is at its end), and "
        "this server does not answer ranged requests (no 'Accept-Ranges: bytes' or no length) "
        "(serve it from a server that does, or download it and give its path)"
    )
    pl.DataFrame({"external_id": ["a"]}).write_ipc(tmp_path / "f.arrow")  # read by its footer
    served.files["/f.arrow"] = (tmp_path / "f.arrow").read_bytes()
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"{base}/f.arrow", db=db, schema=Transaction)
    assert str(raised.value) == (
        f"{base}/f.arrow: not readable as an Arrow IPC stream (Invalid flatbuffers message.); an "
        "Arrow file laid out as some writers do (Polars' write_ipc) is read by its footer, at "
        "its end, and this server does not answer ranged requests (serve it from a server that "
        "does, or download it and give its path)"
    )


# -- S3 ----------------------------------------------------------------------------------

BUCKET = "ingest-tests"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1, for this module."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    """The standard AWS variables pointing at the local server, and a bucket (emptied after)."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield s3_server, client
    finally:
        for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
        client.delete_bucket(Bucket=BUCKET)


def test_s3_objects_are_read_like_files(
    s3: tuple[str, object], transactions: bytes, tmp_path: Path, db: Path
) -> None:
    endpoint, client = s3
    client.put_object(Bucket=BUCKET, Key="in/tx.csv", Body=transactions)  # type: ignore[attr-defined]
    client.put_object(  # type: ignore[attr-defined]
        Bucket=BUCKET, Key="in/tx.csv.zst", Body=_zstd(transactions)
    )
    frame = pl.read_csv(transactions, infer_schema_length=0)
    frame.write_parquet(tmp_path / "tx.parquet", row_group_size=4_000)
    client.put_object(  # type: ignore[attr-defined]
        Bucket=BUCKET, Key="in/tx.parquet", Body=(tmp_path / "tx.parquet").read_bytes()
    )
    remote = engine.RemoteSettings.from_environment(os.environ)
    assert remote.s3_endpoint == endpoint
    first = engine.ingest(f"s3://{BUCKET}/in/tx.csv", db=db, schema=Transaction, remote=remote)
    assert (first.status, first.tally.rows) == ("completed", 20_000)
    again = engine.ingest(f"s3://{BUCKET}/in/tx.csv.zst", db=db, schema=Transaction, remote=remote)
    assert (again.status, again.previous_run) == ("skipped", first.run_id)
    parquet = engine.ingest(
        f"s3://{BUCKET}/in/tx.parquet", db=db, schema=Transaction, remote=remote
    )
    assert (parquet.status, parquet.tally.rows, parquet.tally.invalid) == (
        "completed",
        20_000,
        first.tally.invalid,
    )
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"s3://{BUCKET}/in/none.csv", db=db, schema=Transaction, remote=remote)
    assert str(raised.value) == f"s3://{BUCKET}/in/none.csv: no such object"
    with pytest.raises(SourceError) as raised:
        engine.ingest(f"s3://{BUCKET}", db=db, schema=Transaction, remote=remote)
    assert str(raised.value) == (
        f"s3://{BUCKET}: an S3 URL names a bucket and a key: s3://bucket/path/to/file"
    )


def test_the_command_line_reads_the_aws_variables(
    s3: tuple[str, object], transactions: bytes, db: Path
) -> None:
    _endpoint, client = s3
    client.put_object(Bucket=BUCKET, Key="tx.csv.gz", Body=gzip.compress(transactions))  # type: ignore[attr-defined]
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", f"s3://{BUCKET}/tx.csv.gz", "--db", str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run 1 s3://{BUCKET}/tx.csv.gz: 20,000 rows")


def _zstd(data: bytes) -> bytes:
    import pyarrow as pa

    return bytes(pa.Codec("zstd").compress(data, asbytes=True))


def test_a_server_that_stalls_is_given_up_after_the_timeout_counting_what_came(
    http: tuple[str, Served], transactions: bytes, db: Path
) -> None:
    """The count was of the bytes the reader had taken (4,096 of 5,000: a block's read that
    timed out lost the part of it that had come; independent review)."""
    base, served = http
    served.files["/stall.csv"] = transactions
    served.stall["/stall.csv"] = 5_000
    began = time.monotonic()
    with pytest.raises(SourceError) as raised:
        engine.ingest(
            f"{base}/stall.csv",
            db=db,
            schema=Transaction,
            remote=RemoteSettings(http_timeout_s=1.0),
        )
    assert (
        str(raised.value) == f"{base}/stall.csv: the server sent nothing for 1 s after 5,000 bytes"
    )
    assert time.monotonic() - began < 15
    assert query(db, "SELECT count(*) FROM raw_data") == [(0,)]
