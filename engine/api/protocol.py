"""uvicorn's HTTP/1.1 protocol (h11) with the two timeouts it lacks: request headers and body.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but not a connection that never sends a request, nor one that
sends half of its headers, nor a body that stops arriving: 2,000 such sockets stayed open
for as long as their clients liked. Here:

* the request's headers must be complete within ``header_timeout_s`` of the connection
  opening (or of the first byte of the next request on a kept-alive connection): a fixed
  deadline, so sending a byte now and then does not extend it;
* a request body may pause for at most ``body_timeout_s`` between two reads (a pause the
  server itself made, when it reads more slowly than the client sends, is not counted);
* and must arrive at ``body_min_rate`` bytes per second or faster, measured over each
  ``body_timeout_s`` of it (Apache's ``mod_reqtimeout`` has the same rule): a client that
  sends a byte every few seconds holds a connection for ``body_timeout_s``, not for as long
  as it likes (999 of them kept every other client out with 503s). A window in which the
  server had stopped reading is not counted; 0 turns the rule off.

A connection past either is closed; the application sees the client disconnect.

uvicorn has no send timeout either: a client that asks for a large export and never reads
it kept its connection, and the export staged for it, for as long as it liked (30 such
clients held 11 staged exports, 145 MB, until they closed). So a response that the client
keeps the server from writing for ``send_timeout_s`` in a row (the transport's buffer stays
over its high-water mark, 64 KiB, past what the kernel's socket buffers took) has its
connection aborted (``close`` would first wait for that buffer to drain); the application
sees the client disconnect, and an export's staged file is removed. Writing resumes once
the buffer is down to its low-water mark (16 KiB), so a client must read 48 KiB within each
``send_timeout_s``: a slower reader is cut off too (nginx's ``send_timeout`` likewise bounds
the time between two successful writes). 0 turns it off.

Those bound each connection, not how many one client holds: a client that reconnects as
fast as it is closed, or opens sockets that never send a byte, filled ``--max-connections``
(uvicorn's ``limit_concurrency``) and every other client got 503s. So the open connections
of each client address (the TCP peer's IP, IPv4 or IPv6, not ``X-Forwarded-For``) are
counted, in a dict shared by the server's connections (one event loop), and one past
``max_per_client`` is answered a 503 at once and closed, before uvicorn registers it: it is
never in ``server_state.connections``, so it does not count towards ``limit_concurrency``,
and never reaches the application. (A client that sent its request before that close may
see the connection reset instead; Linux still hands it the 503 first.) A connection
without a peer address (a unix socket) is not capped: its clients all come through the
one local process in front of it. Behind a reverse proxy every client has the proxy's
address: set the cap to 0 (off) or high there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr

REFUSED_BODY = b"too many connections from this address\n"
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(REFUSED_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + REFUSED_BODY
)


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = 10.0
    body_timeout_s = 60.0
    body_min_rate = 500.0
    send_timeout_s = 60.0
    _stall: asyncio.TimerHandle | None = None  # armed while the response cannot be written
    _guard: asyncio.TimerHandle | None = None
    _window: asyncio.TimerHandle | None = None  # the current measure of the body's rate
    _window_bytes = 0
    max_per_client = 0  # open connections per client address; 0: no cap
    open_by_client: ClassVar[dict[str, int]] = {}  # a fresh one per guarded_protocol()
    _counted: str | None = None  # the address this connection is counted under
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = get_remote_addr(transport)
        address = peer[0] if peer is not None and self.max_per_client > 0 else None
        if address is not None and self.open_by_client.get(address, 0) >= self.max_per_client:
            self._refuse(transport, peer)
            return
        super().connection_made(transport)
        if address is not None:
            self.open_by_client[address] = self.open_by_client.get(address, 0) + 1
            self._counted = address
        self._arm(self.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # already answered and closing
            return
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:  # headers incomplete: the deadline set at their first byte holds
            if self._guard is None and not self.transport.is_closing():
                self._arm(self.header_timeout_s, self._headers_late)
        elif state is h11.SEND_BODY:
            self._arm(self.body_timeout_s, self._body_late)
            if self._window is None and self.body_min_rate > 0:
                self._open_window()
            self._window_bytes += len(data)
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # until the next request's first byte: uvicorn's keep-alive timeout
        self._close_window()
        super().on_response_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None and self.send_timeout_s > 0:
            self._stall = self.loop.call_later(self.send_timeout_s, self._send_late)

    def resume_writing(self) -> None:
        self._unstall()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._unstall()
        self._close_window()
        self._uncount()
        if not self._refused:  # a refused one was never registered with uvicorn
            super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._uncount()  # the transport goes to another protocol: this one never hears its end
        super().handle_websocket_upgrade(event)

    def _refuse(self, transport: asyncio.Transport, peer: tuple[str, int] | None) -> None:
        self._refused = True
        self.transport = transport
        self.client = peer
        self.logger.debug(
            "%s:%d - refusing the connection: %d open from this address already",
            *(peer or ("?", 0)),
            self.max_per_client,
        )
        transport.write(REFUSED)
        transport.close()

    def _uncount(self) -> None:
        """Once per counted connection; an address with none open left is removed."""
        address, self._counted = self._counted, None
        if address is not None:
            left = self.open_by_client[address] - 1
            if left:
                self.open_by_client[address] = left
            else:
                del self.open_by_client[address]

    def _open_window(self) -> None:
        self._window_bytes = 0
        self._window = self.loop.call_later(self.body_timeout_s, self._window_end)

    def _close_window(self) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None

    def _window_end(self) -> None:
        self._window = None
        if self.conn.their_state is not h11.SEND_BODY:
            return
        enough = self._window_bytes >= self.body_min_rate * self.body_timeout_s
        if enough or self.flow.read_paused:  # not the client's delay when we stopped reading
            self._open_window()
            return
        self._close(f"request body slower than {self.body_min_rate:g} bytes/s; not sent")

    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._guard = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _unstall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _send_late(self) -> None:
        self._stall = None
        if self.flow.write_paused:
            self.logger.debug(
                "%s:%d - aborting the connection: the response could not be sent for %gs",
                *(self.client or ("?", 0)),
                self.send_timeout_s,
            )
            self.transport.abort()

    def _headers_late(self) -> None:
        self._guard = None
        if self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        ):
            self._close("request headers not complete")

    def _body_late(self) -> None:
        self._guard = None
        if self.conn.their_state is not h11.SEND_BODY:
            return
        if self.flow.read_paused:  # the server is not reading: not the client's delay
            self._arm(self.body_timeout_s, self._body_late)
            return
        self._close("no request body received")

    def _close(self, why: str) -> None:
        if not self.transport.is_closing():
            self.logger.debug(
                "%s:%d - closing the connection: %s in time",
                *(self.client or ("?", 0)),
                why,
            )
            self.transport.close()


def guarded_protocol(
    *,
    header_timeout_s: float,
    body_timeout_s: float,
    body_min_rate: float,
    max_per_client: int = 0,
    send_timeout_s: float = GuardedH11Protocol.send_timeout_s,
) -> type[GuardedH11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with these limits, counting its
    connections per client address apart from any other such class."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "body_min_rate": body_min_rate,
            "max_per_client": max_per_client,
            "send_timeout_s": send_timeout_s,
            "open_by_client": {},
        },
    )
