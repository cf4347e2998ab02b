"""The Kafka consumer session on a thread of the server, sharing its one DuckDB connection.

The session is the one ``cli.py consume`` runs (``engine.streaming.consumer``), given the
server's Store: its micro-batches take the Store's lock like any other writer, so request
handlers and the consumer never write at the same time. Stopping sets the session's stop
request: it writes its in-flight batch, commits and leaves the group, as on Ctrl-C.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from engine.api.errors import api_spelling
from engine.api.metrics import Metrics
from engine.errors import EngineError
from engine.pipeline import Tally
from engine.store.store import Store
from engine.streaming.consumer import ConsumerSession
from engine.streaming.events import BatchWritten, BrokersDown, Event, Notice, SessionSummary
from engine.streaming.settings import ConsumerSettings
from engine.streaming.shutdown import StopRequest
from engine.streaming.sink import Sink

LOG = logging.getLogger("engine.api.consumer")


@dataclass(frozen=True)
class ConsumerState:
    state: str  # running | stopped | failed
    topics: tuple[str, ...]
    group: str
    run_id: int | None
    batches: int
    in_flight: int
    error: str | None


class BackgroundConsumer:
    def __init__(
        self,
        store: Store,
        model: type[BaseModel],
        settings: ConsumerSettings,
        metrics: Metrics,
        *,
        sink: Sink | None = None,
        closing: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._closing = closing  # after the session ended (a lake's stage is removed)
        self._sink = sink
        self.metrics = metrics
        self.stop_request = StopRequest()
        self.session = ConsumerSession(
            store, model, settings, on_event=self._on_event, stop=self.stop_request, sink=sink
        )
        self.result: SessionSummary | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="kafka-consumer", daemon=True)
        metrics.watch_in_flight(self.in_flight)

    def start(self) -> None:
        self._thread.start()

    def stop(self, reason: str) -> None:
        """Ask the session to stop, and wait while it writes its in-flight batch."""
        self.stop_request.set(reason)
        if self._thread.is_alive():
            self._thread.join()
        if self._closing is not None:
            self._closing()
            self._closing = None

    def in_flight(self) -> int:
        return len(self.session.pending)

    def state(self) -> ConsumerState:
        if self.error is not None:
            state = "failed"
        elif self._thread.is_alive():
            state = "running"
        else:
            state = "stopped"
        return ConsumerState(
            state,
            self.settings.topics,
            self.settings.group,
            self._run_id(),
            self.session.batches,
            self.in_flight(),
            self.error,
        )

    def _run_id(self) -> int | None:
        """The session's run id where it is recorded (a lake's, when it publishes to one)."""
        if self.session.run_id is None or self._sink is None:
            return self.session.run_id
        return self._sink.run_id

    def _run(self) -> None:
        try:
            self.result = self.session.run()
            LOG.info("%s", self.result)
        except EngineError as exc:
            self.error = exc.render(api_spelling)
            LOG.error("consumer stopped: %s", self.error)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            LOG.exception("consumer failed")

    def _on_event(self, event: Event) -> None:
        if isinstance(event, BatchWritten):
            tally = Tally(rows=event.records, valid=event.valid, invalid=event.invalid)
            self.metrics.batch_written(tally, event.latency_ms / 1000, event.lag)
        if isinstance(event, Notice):
            LOG.warning("%s", event.text)
        elif isinstance(event, BrokersDown):
            LOG.warning("%s", str(event).removeprefix("warning: "))
        else:
            LOG.info("%s", event)
