"""Scale-out: consumers of one group, each with its own DuckDB file, split the stream exactly."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.conftest import query
from tests.streaming.conftest import STEADY_GROUP, Kafka, Sent
from tests.streaming.processes import ConsumerProcess
from tests.streaming.test_recovery import records, valid

PARTITIONS = 6


def stored(db: Path) -> list[tuple[int, int]]:
    rows = query(db, "SELECT kafka_partition, kafka_offset FROM kafka_lineage ORDER BY 1, 2")
    return [(int(p), int(o)) for p, o in rows]  # type: ignore[call-overload]


def test_a_group_splits_partitions_and_a_joining_consumer_loses_and_duplicates_nothing(
    kafka: Kafka, tmp_path: Path
) -> None:
    topic, group = kafka.topic(PARTITIONS), kafka.group()
    sent = Sent()

    def send(count: int, start: int) -> None:
        more = kafka.send(topic, records(count, start), PARTITIONS)
        sent.records += more.records
        sent.coordinates += more.coordinates

    send(2_000, 0)
    dbs = [tmp_path / f"consumer-{name}.duckdb" for name in "abc"]

    def start(db: Path) -> ConsumerProcess:
        return ConsumerProcess(
            kafka.bootstrap_servers,
            topic,
            group,
            db,
            "--max-records",
            "200",
            "--max-wait-ms",
            "200",
            kafka_config=STEADY_GROUP,
        )

    a, b = start(dbs[0]), start(dbs[1])
    pair = (a, b)

    def split() -> bool:
        owned = [c.owned() for c in pair]
        return all(owned) and not owned[0] & owned[1] and owned[0] | owned[1] == set(range(6))

    a.wait_for(lambda: split() and a.records() + b.records() >= 2_000, 90, "the split")
    # The two consumers own disjoint partitions covering the topic, and each stored rows.
    first_owned = (a.owned(), b.owned())
    assert a.records() > 0 and b.records() > 0
    # A third consumer joins while messages keep coming: a cooperative rebalance moves
    # partitions to it without stopping the others.
    c = start(dbs[2])
    trio = (a, b, c)

    def trickle() -> None:
        for i in range(8):
            send(250, 2_000 + 250 * i)
            time.sleep(0.5)

    during = threading.Thread(target=trickle)
    during.start()
    c.wait_for(lambda: bool(c.owned()), 90, "the third consumer's partitions")
    during.join()
    send(1_000, 4_000)

    def settled() -> bool:
        owned = [x.owned() for x in trio]
        disjoint = sum(len(o) for o in owned) == len(set().union(*owned))
        return disjoint and set().union(*owned) == set(range(6)) and all(owned)

    c.wait_for(lambda: settled() and sum(x.records() for x in trio) >= 5_000, 120, "the stream")
    # Moved partitions were handed over: revoked after writing, started where the group was.
    assert any(line.startswith("revoked: ") for line in a.lines + b.lines)
    handed = [line for line in c.lines if line.startswith("assigned: ") and "[" in line]
    assert handed and all(
        line.endswith(" (committed by the group)") and ";" not in line for line in handed
    ), c.output()
    for x in trio:
        x.send(signal.SIGTERM)
    for x in trio:
        assert x.finish(60) == 0, x.output()
    per_db = [stored(db) for db in dbs]
    union = sorted(pair for rows in per_db for pair in rows)
    assert union == sorted(sent.coordinates)  # nothing lost, nothing stored twice
    assert len(set(union)) == 5_000
    assert all(per_db), "each consumer stored part of the stream"
    assert first_owned[0] | first_owned[1] == set(range(6))
    for db in dbs:
        assert query(db, "SELECT status FROM ingestion_runs") == [("completed",)]
    n_valid = sum(valid(r) for r in sent.records)
    assert (
        sum(
            int(query(db, "SELECT count(*) FROM processed_data")[0][0])  # type: ignore[call-overload]
            for db in dbs
        )
        == n_valid
    )
