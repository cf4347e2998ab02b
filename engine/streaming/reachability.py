"""Whether the brokers can be reached: one line when they cannot, one when they can again.

librdkafka retries a lost broker forever and logs every failed attempt (about 15
``Connection refused`` lines a second against a stopped broker). Its connection log lines
(facility ``FAIL``) are held back here; the session reports the state instead:

* ``BrokersDown`` once, when librdkafka says every broker is down (``_ALL_BROKERS_DOWN``),
  with the last failure it gave, or when requests or the group's session time out (a
  broker that stalls, its connections open: ``REQTMOUT``, ``SESSTMOUT``, held back too);
* ``BrokersBack`` once, when a broker answers again (a metadata request, tried once a
  second while they are down);
* with ``give_up_after_s``, a ``BrokersUnreachableError`` once they have been down that
  long (``consume --give-up-after``: one line, exit code 1).

Any other librdkafka log line goes to the ``engine.streaming.kafka`` logger as before, except
while the brokers are down (what follows from the outage, such as the group session timing
out, is said by the one line).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException

from engine.errors import BrokersUnreachableError
from engine.streaming.events import BrokersBack, BrokersDown, Event

LOG = logging.getLogger("engine.streaming.kafka")
PROBE_EVERY_S = 1.0
PROBE_TIMEOUT_S = 0.5
CONNECTION_FACILITY = "FAIL"
# A name that does not resolve is retried forever too, a line each time: said once, like these.
QUIET_ERRORS = (KafkaError._TRANSPORT, KafkaError._RESOLVE, KafkaError._ALL_BROKERS_DOWN)
STALL_FACILITIES = ("REQTMOUT", "SESSTMOUT")  # requests, the group's session timed out


class BrokerWatch:
    """Passed to librdkafka as ``logger`` and ``error_cb``; checked by the session's loop."""

    def __init__(
        self,
        servers: str,
        on_event: Callable[[Event], None],
        *,
        give_up_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.servers = servers
        self.on_event = on_event
        self.give_up_after_s = give_up_after_s
        self.clock = clock
        self.down_since: float | None = None
        self.last_failure: str | None = None
        self._next_probe = 0.0

    # -- librdkafka's callbacks (called from inside poll/consume, on the calling thread) ----

    def log(self, level: int, fmt: str, *args: object) -> None:
        """librdkafka's log line: ``fmt`` is ``"%s [%s] %s"`` over facility, client, text."""
        if len(args) == 3 and args[0] == CONNECTION_FACILITY:
            text = str(args[2])
            self.last_failure = text.split("]: ", 1)[-1]  # without the thread's name
            return
        if len(args) == 3 and args[0] in STALL_FACILITIES:
            # A broker that stalls (connections open, nothing answered) is never "down" for
            # librdkafka: its requests time out instead. The same one line, then the probe.
            self.last_failure = str(args[2]).split(": ", 1)[-1]
            if self.down_since is None:
                self._down(f"requests timed out: {self.last_failure}")
            return
        if self.down_since is not None:
            return  # what follows from the outage (a session timing out): said once already
        LOG.log(level, fmt, *args)

    def error(self, error: KafkaError) -> None:
        code = error.code()
        if code in (KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.last_failure = error.str()
        elif code == KafkaError._ALL_BROKERS_DOWN and self.down_since is None:
            self._down(_reason(self.last_failure or error.str()))
        elif code not in QUIET_ERRORS:
            LOG.warning("kafka: %s", error.str())

    def _down(self, reason: str) -> None:
        self.down_since = self.clock()
        self._next_probe = self.down_since + PROBE_EVERY_S
        self.on_event(BrokersDown(self.servers, reason, self.give_up_after_s))

    # -- the session's side ---------------------------------------------------------------
    # Messages arriving do not say the brokers are back: librdkafka hands over what it had
    # fetched before they went (a false "reachable again" 0.1 s after a broker's kill -9,
    # after which --give-up-after never fired: an independent attack). The probe does.

    def check(self, consumer: Consumer) -> None:
        """While the brokers are down: give up when it is time, probe once a second."""
        if self.down_since is None:
            return
        now = self.clock()
        down_for = now - self.down_since
        if self.give_up_after_s is not None and down_for >= self.give_up_after_s:
            raise BrokersUnreachableError(
                self.servers, self.give_up_after_s, _reason(self.last_failure or "")
            )
        if now < self._next_probe:
            return
        self._next_probe = now + PROBE_EVERY_S
        try:
            consumer.list_topics(timeout=PROBE_TIMEOUT_S)
        except KafkaException:
            return
        self._back()

    def _back(self) -> None:
        assert self.down_since is not None
        down_for = self.clock() - self.down_since
        self.down_since = None
        self.on_event(BrokersBack(self.servers, down_for))


def _reason(text: str) -> str:
    """librdkafka's failure without the broker's name and the timing detail:
    ``Connect to ipv4#127.0.0.1:9092 failed: Connection refused``."""
    for start in ("Connect to ", "Disconnected"):
        if start in text:
            text = text[text.index(start) :]
            break
    return text.split(" (after ", 1)[0].strip()
