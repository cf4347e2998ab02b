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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class GuardedH11Protocol(H11Protocol):
    header_timeout_s = 10.0
    body_timeout_s = 60.0
    body_min_rate = 500.0
    _guard: asyncio.TimerHandle | None = None
    _window: asyncio.TimerHandle | None = None  # the current measure of the body's rate
    _window_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
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

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._close_window()
        super().connection_lost(exc)

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
    *, header_timeout_s: float, body_timeout_s: float, body_min_rate: float
) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with these limits."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
            "body_min_rate": body_min_rate,
        },
    )
