"""Staging directories left by servers that died are removed when a server starts.

The real case first: a server killed (``kill -9``) in the middle of an upload leaves its
staging directory and the partial upload; the next server on the same spool directory
removes them. Then the rules: a directory whose lock a live process holds is left alone,
as is one without a lock file that is only seconds old (a server creating it).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.api.conftest import ServerFactory

BOUNDARY = "spool-test"


def test_a_killed_servers_upload_is_removed_at_the_next_start(
    servers: ServerFactory, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    workdir = tmp_path / "server"
    workdir.mkdir()
    first = servers("--spool-dir", str(spool), workdir=workdir)
    sent = threading.Event()
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="half.csv"\r\n\r\n'
        ).encode()
        yield b"external_id,amount\n" + b"X,1\n" * 300_000  # over 1 MiB: written to disk
        sent.set()
        release.wait(60)  # the server is killed meanwhile

    def upload() -> None:
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        with contextlib.suppress(httpx.TransportError):  # the server is killed meanwhile
            httpx.post(f"{first.url}/api/v1/ingest", headers=headers, content=body(), timeout=60)

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert sent.wait(60)
    deadline = time.monotonic() + 60
    while not list(spool.glob(".serve-spool-*/upload-*/half.csv")):
        assert time.monotonic() < deadline, "the upload was never staged"
        time.sleep(0.05)
    (left,) = spool.glob(".serve-spool-*")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    release.set()
    uploader.join(60)
    assert left.exists()  # nothing could remove it
    second = servers("--spool-dir", str(spool), workdir=workdir)  # the same database
    (mine,) = spool.glob(".serve-spool-*")
    assert mine != left and not left.exists()
    assert (
        f"WARNING:  removed 1 staging directory left by servers that died: {left.name}"
        in second.log_text().splitlines()
    )


def test_what_is_removed_and_what_is_kept(servers: ServerFactory, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    dead = spool / ".serve-spool-dead"
    (dead / "upload-1").mkdir(parents=True)
    (dead / "upload-1" / "e.csv").write_text("a\n1\n")
    (dead / ".lock").touch()
    live = spool / ".serve-spool-live"
    live.mkdir()
    held = os.open(live / ".lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running server holds it
    old = spool / ".serve-spool-old"  # made by a version without lock files
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = spool / ".serve-spool-young"  # a server creating it right now
    young.mkdir()
    other = spool / "not-a-spool"
    other.mkdir()
    try:
        server = servers("--spool-dir", str(spool))
        kept = sorted(p.name for p in spool.iterdir())
    finally:
        os.close(held)
    (mine,) = (p.name for p in spool.glob(".serve-spool-*") if p not in (live, young))
    assert kept == sorted([mine, ".serve-spool-live", ".serve-spool-young", "not-a-spool"])
    assert (
        "WARNING:  removed 2 staging directories left by servers that died: .serve-spool-dead, "
        ".serve-spool-old"
    ) in server.log_text().splitlines()
