"""What a consumer session reports while it runs; ``str()`` of each is its log line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.pipeline import Tally
from engine.wording import count

StartFrom = Literal["duckdb", "lake", "group", "reset", "recreated"]


@dataclass(frozen=True)
class BatchWritten:
    """A micro-batch committed to DuckDB (rows, offsets and run figures together)."""

    number: int
    records: int
    valid: int
    invalid: int
    latency_ms: float  # from its first message arriving to its DuckDB commit
    write_ms: float  # building, validating and storing it
    lag: int | None  # messages behind the high watermarks of the owned partitions
    dead_letters: int = 0

    def __str__(self) -> str:
        lag = "unknown" if self.lag is None else f"{self.lag:,}"
        line = (
            f"batch {self.number}: {count(self.records, 'record')}, {self.valid:,} valid, "
            f"{self.invalid:,} invalid, latency {self.latency_ms:,.0f} ms "
            f"(write {self.write_ms:,.0f} ms), lag {lag}"
        )
        return line + (f", {count(self.dead_letters, 'dead letter')}" if self.dead_letters else "")


ORIGINS: dict[str, str] = {
    "duckdb": "stored in DuckDB",
    "lake": "stored in the lake",
    "group": "committed by the group",
    "reset": "auto.offset.reset: nothing stored or committed",
    "recreated": "from the beginning: the topic was deleted and created again since its "
    "offsets were stored",
}


@dataclass(frozen=True)
class PartitionStart:
    topic: str
    partition: int
    offset: int | None  # None: auto.offset.reset decides (or, recreated: the beginning)
    start_from: StartFrom


@dataclass(frozen=True)
class Assigned:
    partitions: tuple[PartitionStart, ...]

    def __str__(self) -> str:
        """E.g. ``assigned: t[0] at 120, t[1] at 80 (stored in DuckDB); t[2] (auto...)``."""
        clauses = []
        for origin, label in ORIGINS.items():
            names = [
                f"{p.topic}[{p.partition}]" + ("" if p.offset is None else f" at {p.offset}")
                for p in self.partitions
                if p.start_from == origin
            ]
            if names:
                clauses.append(f"{', '.join(names)} ({label})")
        return "assigned: " + ("; ".join(clauses) or "no new partitions")


@dataclass(frozen=True)
class Revoked:
    partitions: tuple[tuple[str, int], ...]
    lost: bool  # lost (session timed out): the in-flight messages were dropped, not written
    # revoked after the session failed (closing it): the in-flight messages were dropped too
    dropped: bool = False

    def __str__(self) -> str:
        names = ", ".join(f"{t}[{p}]" for t, p in self.partitions) or "no partitions"
        if self.lost:
            return f"lost: {names} (their in-flight messages were dropped, not written)"
        if self.dropped:
            return (
                f"revoked: {names} (the consumer failed: in-flight messages dropped, not written)"
            )
        return f"revoked: {names} (in-flight batch written first)"


# Once per session, when the group gave it nothing for the broker timeout (an attacker's
# consumers of a stuck group ran for 400 s without a line, --stop-when-idle never started).
UNASSIGNED = (
    "no partition assigned after {:g} s: the group's other consumers may hold every "
    "partition, or it is still rebalancing (--stop-when-idle counts from the first assignment)"
)


@dataclass(frozen=True)
class Notice:
    text: str

    def __str__(self) -> str:
        return f"warning: {self.text}"


@dataclass(frozen=True)
class BrokersDown:
    """Every broker is unreachable (librdkafka keeps trying; see ``reachability``)."""

    servers: str
    reason: str
    give_up_after_s: float | None

    def __str__(self) -> str:
        then = (
            "" if self.give_up_after_s is None else f", giving up after {self.give_up_after_s:g} s"
        )
        return f"warning: kafka: the brokers at {self.servers} are unreachable ({self.reason}); retrying{then}"


@dataclass(frozen=True)
class BrokersBack:
    servers: str
    down_s: float

    def __str__(self) -> str:
        return (
            f"kafka: the brokers at {self.servers} are reachable again (after {self.down_s:.1f} s)"
        )


Event = BatchWritten | Assigned | Revoked | Notice | BrokersDown | BrokersBack


@dataclass(frozen=True)
class SessionSummary:
    run_id: int
    batches: int
    tally: Tally
    duration_s: float
    reason: str
    latencies_ms: tuple[float, ...]

    def __str__(self) -> str:
        t = self.tally
        return (
            f"run {self.run_id}: {count(self.batches, 'batch', 'batches')}, "
            f"{count(t.rows, 'record')}, "
            f"{t.valid:,} valid, {t.invalid:,} invalid in {self.duration_s:.1f} s "
            f"(stopped: {self.reason})"
        )
