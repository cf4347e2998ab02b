"""uvicorn's HTTP/1.1 protocol (h11) with the two timeouts it lacks: request headers and body.

uvicorn closes a keep-alive connection that stays idle after a response
(``timeout_keep_alive``), but not a connection that never sends a request, nor one that
sends half of its headers, nor a body that stops arriving: 2,000 such sockets stayed open
for as long as their clients liked. Here:

* the request's headers must be complete within ``header_timeout_s`` of the connection
  opening (or of the first byte of the next request on a kept-alive connection): a fixed
  deadline, so sending a byte now and then does not extend it;
* a request body may pause for at most ``body_timeout_s`` between two reads (a slow upload
  keeps going as long as bytes arrive; a pause the server itself made, when it reads more
  slowly than the client sends, is not counted).

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
    _guard: asyncio.TimerHandle | None = None

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
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # until the next request's first byte: uvicorn's keep-alive timeout
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

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


def guarded_protocol(*, header_timeout_s: float, body_timeout_s: float) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.run(http=...)`` with these timeouts."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
