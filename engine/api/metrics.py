"""Prometheus metrics of one server, in a registry of its own (no process-wide state).

prometheus-client rather than a hand-rolled exposition: histograms with cumulative
buckets, label escaping and the exposition format are easy to get subtly wrong, and its
parser lets the tests read the page back the way Prometheus does.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from engine.pipeline import Tally

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
SOURCES = ("path", "upload", "kafka")
RUN_STATUSES = ("completed", "skipped", "failed")
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Counters since the server started; the stored totals are in ``/api/v1/summary``."""

    def __init__(self, *, consuming: bool) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.rows = Counter("ingest_rows", "Rows validated and stored", ["source"], registry=r)
        self.valid = Counter("ingest_rows_valid", "Valid rows stored", ["source"], registry=r)
        self.invalid = Counter(
            "ingest_rows_invalid", "Invalid rows stored with their errors", ["source"], registry=r
        )
        self.runs = Counter("ingest_runs", "File runs by outcome", ["source", "status"], registry=r)
        self.run_seconds = Histogram(
            "ingest_run_duration_seconds",
            "Duration of completed file runs",
            ["source"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ingesting = Gauge(
            "ingest_runs_in_progress", "File runs being ingested right now", registry=r
        )
        for source in SOURCES[:2]:
            for status in RUN_STATUSES:
                self.runs.labels(source, status)
            self.run_seconds.labels(source)
        for source in SOURCES if consuming else SOURCES[:2]:
            self.rows.labels(source)
            self.valid.labels(source)
            self.invalid.labels(source)
        self.consuming = consuming
        if consuming:
            self.batches = Counter(
                "ingest_kafka_batches", "Kafka micro-batches committed to DuckDB", registry=r
            )
            self.batch_latency = Histogram(
                "ingest_kafka_batch_latency_seconds",
                "From a micro-batch's first message arriving to its DuckDB commit",
                buckets=LATENCY_BUCKETS,
                registry=r,
            )
            self.lag = Gauge(
                "ingest_kafka_lag_messages",
                "Messages between what the database holds and the partitions' high watermarks",
                registry=r,
            )
            self.in_flight = Gauge(
                "ingest_kafka_in_flight_messages",
                "Messages fetched and not yet in a micro-batch",
                registry=r,
            )

    def stored(self, source: str, tally: Tally) -> None:
        self.rows.labels(source).inc(tally.rows)
        self.valid.labels(source).inc(tally.valid)
        self.invalid.labels(source).inc(tally.invalid)

    def run_finished(self, source: str, status: str, duration_s: float, tally: Tally) -> None:
        self.runs.labels(source, status).inc()
        if status == "completed":
            self.run_seconds.labels(source).observe(duration_s)
            self.stored(source, tally)

    def batch_written(self, tally: Tally, latency_s: float, lag: int | None) -> None:
        self.stored("kafka", tally)
        self.batches.inc()
        self.batch_latency.observe(latency_s)
        if lag is not None:
            self.lag.set(lag)

    def watch_in_flight(self, count: Callable[[], float]) -> None:
        self.in_flight.set_function(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
