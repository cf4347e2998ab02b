"""Idle and half-sent connections are closed after the server's timeouts, and a normal
client is served meanwhile.

Hundreds of sockets that send nothing, half a request's headers, or headers and the start
of a body that never ends, plus one that trickles a header byte now and then: the server
(``--header-timeout 2 --body-timeout 2 --keep-alive 1``) closes every one of them, while a
client that sends whole requests gets its answers. A body that keeps arriving, but slower
than ``--body-min-rate 200`` bytes/s, is cut off too; a faster one is served.

A client address is capped (``--max-connections-per-client``): its connection past the cap
gets a 503 and is closed, and another address is served while one floods the server with
sockets that never send a byte.
"""

from __future__ import annotations

import asyncio
import http.client
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from uvicorn.server import ServerState

from engine.api.exports import StagedFile
from engine.api.protocol import guarded_protocol
from tests.api.conftest import Server, ServerFactory

IDLE = 300
HALF_HEADERS = 100
HALF_BODIES = 20
CLOSE_DEADLINE_S = 60.0  # generous: the timeouts are 2 s; this only bounds a hung test


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def server(servers: ServerFactory, spool: Path) -> Server:
    return servers(
        "--header-timeout",
        "2",
        "--body-timeout",
        "2",
        "--body-min-rate",
        "200",
        "--keep-alive",
        "1",
        "--max-connections-per-client",  # these tests hold 420 sockets from 127.0.0.1
        "0",
        "--spool-dir",
        str(spool),
    )


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_server(sockets: list[socket.socket], deadline_s: float) -> int:
    """Wait until the server has closed each socket (EOF or reset); how many it closed."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, data=sock)
    closed = 0
    deadline = time.monotonic() + deadline_s
    while closed < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            sock = key.data
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                continue  # an answer (e.g. a 400) before the close
            selector.unregister(sock)
            closed += 1
    selector.close()
    return closed


@pytest.fixture
def opened() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def test_idle_and_half_sent_connections_are_closed(
    server: Server, spool: Path, opened: list[socket.socket]
) -> None:
    for _ in range(IDLE):
        opened.append(connect(server))
    for number in range(HALF_HEADERS):
        sock = connect(server)
        sock.sendall(f"GET /api/v1/health?n={number} HTTP/1.1\r\nHost: x\r\nX-Slow: ".encode())
        opened.append(sock)
    for _ in range(HALF_BODIES):
        sock = connect(server)
        sock.sendall(
            b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\nx,y\r\n'
        )
        opened.append(sock)
    trickled: list[bool] = []

    def trickle() -> None:
        """One header byte every 0.3 s: the header deadline is fixed, not extended."""
        sock = connect(server)
        try:
            for byte in b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 500:
                sock.sendall(bytes([byte]))
                time.sleep(0.3)
        except OSError:  # reset or broken pipe: closed by the server
            trickled.append(True)
        finally:
            sock.close()

    slow = threading.Thread(target=trickle)
    slow.start()
    # Meanwhile a normal client is served, again and again.
    with server.client(timeout=10) as client:
        for _ in range(20):
            assert client.get("/api/v1/health").status_code == 200
            time.sleep(0.05)
    assert closed_by_server(opened, CLOSE_DEADLINE_S) == len(opened)
    slow.join(timeout=CLOSE_DEADLINE_S)
    assert trickled == [True]
    # The uploads cut off left nothing staged: removed once each upload's task hears of its
    # disconnect, which may come after the socket closed (within a few seconds under load).
    (staging,) = spool.glob(".serve-spool-*")
    deadline = time.monotonic() + 10
    while (names := sorted(p.name for p in staging.iterdir())) != [".lock"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert names == [".lock"]
    with server.client(timeout=10) as client:
        assert client.get("/api/v1/health").status_code == 200


def test_a_kept_alive_connection_is_closed_when_idle(
    server: Server, opened: list[socket.socket]
) -> None:
    sock = connect(server)
    opened.append(sock)
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert closed_by_server([sock], CLOSE_DEADLINE_S) == 1


def upload_head(length: int) -> bytes:
    return (
        b"POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def test_a_body_slower_than_the_minimum_rate_is_cut_off(
    server: Server, opened: list[socket.socket]
) -> None:
    """20 bytes every 0.5 s: no pause reaches --body-timeout (2 s), but 40 bytes/s is below
    --body-min-rate (200): closed. 100 bytes every 0.1 s (1,000 bytes/s), over three
    windows of 2 s, is served."""
    rows = "".join(f"T{n:05d},{n}.50,usd,web,2024-01-01T00:00:00\n" for n in range(150))
    body = (
        '--b\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        "external_id,amount,currency,source_channel,timestamp\n" + rows + "\r\n--b--\r\n"
    ).encode()
    assert len(body) > 6_000
    slow, fast = connect(server), connect(server)
    opened += [slow, fast]
    slow.sendall(upload_head(len(body)))
    fast.sendall(upload_head(len(body)))
    cut = threading.Event()

    def trickle() -> None:
        try:
            for start in range(0, len(body), 20):
                slow.sendall(body[start : start + 20])
                time.sleep(0.5)
        except OSError:  # reset or broken pipe: closed by the server
            cut.set()

    slow_sender = threading.Thread(target=trickle)
    slow_sender.start()
    for start in range(0, len(body), 100):
        fast.sendall(body[start : start + 100])
        time.sleep(0.1)
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += fast.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    slow_sender.join(timeout=CLOSE_DEADLINE_S)
    assert cut.is_set() or closed_by_server([slow], CLOSE_DEADLINE_S) == 1


CAP = 5
FLOOD = 300
REFUSED_TEXT = "too many connections from this address\n"
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 39\r\n"
    b"Connection: close\r\n\r\n" + REFUSED_TEXT.encode()
)
OTHER = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second client address


@pytest.fixture(scope="module")
def capped(servers: ServerFactory) -> Server:
    """Without the cap, the flood's 300 idle sockets would fill --max-connections (20)."""
    return servers("--max-connections-per-client", str(CAP), "--max-connections", "20")


def connect_from(server: Server, source: str = "127.0.0.1") -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0))


def pending(sock: socket.socket) -> bytes | None:
    """What the server has sent so far (b"": it closed), without waiting; None: nothing."""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # with a timeout, recv (even MSG_DONTWAIT) waits for data
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return None
    finally:
        sock.settimeout(timeout)


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def hang_up(sock: socket.socket) -> None:
    """Close and wait for the server's end: it closes its socket after connection_lost."""
    sock.shutdown(socket.SHUT_WR)
    assert read_to_end(sock) == b""
    sock.close()


def health(sock: socket.socket) -> int:
    """GET /api/v1/health on this open connection, which stays open (kept alive)."""
    conn = http.client.HTTPConnection("127.0.0.1")
    conn.sock = sock
    conn.request("GET", "/api/v1/health")
    response = conn.getresponse()
    response.read()
    return response.status


def health_from(server: Server, source: str) -> int:
    """GET /api/v1/health on a new connection from ``source``."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, timeout=10) as client:
        return client.get("/api/v1/health").status_code


def test_a_client_past_its_cap_is_refused(capped: Server, opened: list[socket.socket]) -> None:
    first = [connect_from(capped) for _ in range(CAP)]
    opened += first
    sixth = connect_from(capped)
    opened.append(sixth)
    assert read_to_end(sixth) == REFUSED
    # The server took the first five before the sixth (in order): none was refused.
    assert [pending(sock) for sock in first] == [None] * CAP
    hang_up(first.pop())
    hang_up(first.pop())
    again = [connect_from(capped) for _ in range(2)]
    opened += again
    assert [health(sock) for sock in again] == [200, 200]
    # Five open again (three idle, two kept alive): the next one is refused, another
    # address is served.
    seventh = connect_from(capped)
    opened.append(seventh)
    assert read_to_end(seventh) == REFUSED
    assert [pending(sock) for sock in first] == [None] * (CAP - 2)
    # A client that sends its request at once reads the same 503.
    with httpx.Client(base_url=capped.url, timeout=10) as client:
        response = client.get("/api/v1/health")
    assert (response.status_code, response.text) == (503, REFUSED_TEXT)
    assert health_from(capped, OTHER) == 200


def test_a_flooding_address_leaves_another_served(
    capped: Server, opened: list[socket.socket]
) -> None:
    """300 sockets from 127.0.0.1 that never send a byte, all held open by the client: 5
    are kept and 295 refused, and 127.0.0.2 is served meanwhile and after."""
    flooded = threading.Event()

    def flood() -> None:
        try:
            for _ in range(FLOOD):
                opened.append(connect_from(capped))
        finally:
            flooded.set()

    flooder = threading.Thread(target=flood)
    flooder.start()
    during: list[int] = []
    while not flooded.is_set():
        during.append(health_from(capped, OTHER))
    flooder.join()
    assert during and set(during) == {200}
    assert health_from(capped, OTHER) == 200
    # That connection came after the flood's 300 (the server takes them in order): each
    # was answered, or kept, before it.
    answers = [pending(sock) for sock in opened]
    assert len(answers) == FLOOD
    assert answers.count(None) == CAP
    assert answers.count(REFUSED) == FLOOD - CAP


def test_counts_return_to_zero() -> None:
    """The protocol in-process: refused connections are never registered with uvicorn, and
    once all are closed no address is left counted."""
    protocol = guarded_protocol(
        header_timeout_s=10, body_timeout_s=10, body_min_rate=0, max_per_client=2
    )
    uncapped = guarded_protocol(header_timeout_s=10, body_timeout_s=10, body_min_rate=0)
    config = uvicorn.Config(FastAPI(), lifespan="off")
    config.load()

    async def scenario() -> None:
        state = ServerState()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        streams.append(await asyncio.open_connection("127.0.0.1", port, local_addr=(OTHER, 0)))
        refused, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await refused.read() == REFUSED  # and the three before it were taken
        writer.close()
        assert protocol.open_by_client == {"127.0.0.1": 2, OTHER: 1}
        assert len(state.connections) == 3 and len(state.tasks) == 0
        for reader, writer in streams:
            writer.write_eof()
            assert await reader.read() == b""  # the server closed after connection_lost
            writer.close()
        assert protocol.open_by_client == {}
        assert state.connections == set()
        assert uncapped.open_by_client == {}
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


STAGED_BYTES = 12 << 20  # past the kernel's socket buffers (4 MiB each way at most here)


def test_a_response_not_read_is_dropped_with_its_staged_file(tmp_path: Path) -> None:
    """A client that asks for a large export and reads none of it: once the server could
    write nothing for ``send_timeout_s`` (1.5 s), the connection is dropped and the staged
    file removed. Before, both stayed for as long as the client kept the socket open.
    A client that reads is sent the whole file, and its staged copy is removed too."""
    protocol = guarded_protocol(
        header_timeout_s=10, body_timeout_s=10, body_min_rate=0, send_timeout_s=1.5
    )
    content = bytes(range(256)) * (STAGED_BYTES // 256)
    app = FastAPI()

    @app.get("/export")
    async def export(n: int) -> StagedFile:
        path = tmp_path / f"export-{n}"
        path.write_bytes(content)
        return StagedFile(path)

    config = uvicorn.Config(app, lifespan="off", log_level="warning")
    config.load()

    def staged() -> list[str]:
        return sorted(p.name for p in tmp_path.iterdir())

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: protocol(config=config, server_state=ServerState(), app_state={}),
            "127.0.0.1",
            0,
        )
        port = server.sockets[0].getsockname()[1]
        idle = socket.socket()
        idle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        idle.setblocking(False)
        await loop.sock_connect(idle, ("127.0.0.1", port))
        await loop.sock_sendall(idle, b"GET /export?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.75)
        assert staged() == ["export-1"]  # being sent, stalled
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /export?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        head, body = answer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == content
        started = time.monotonic()
        while staged() and time.monotonic() - started < CLOSE_DEADLINE_S:
            await asyncio.sleep(0.1)
        assert staged() == []
        received = 0
        while chunk := await loop.sock_recv(idle, 1 << 20):  # what the kernel had, then EOF
            received += len(chunk)
        assert 0 < received < STAGED_BYTES
        idle.close()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
