"""Two consumers of one group into one lake, one of them SIGKILLed three times at random
moments; then every (topic, partition, offset) must be stored exactly once.

    python -m tests.lake.kafka_stress [--messages 100000] [--seed 1]

Longer than the test suite's version (tests/lake/test_kafka.py): run it by hand. Starts its
own Tansu broker on 127.0.0.1, prints what it checked, exits 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from engine.lake.location import Lake
from engine.streaming.local_broker import LocalBroker
from tests.lake.conftest import lake_rows
from tests.streaming.conftest import FAST_GROUP, Kafka
from tests.streaming.processes import ConsumerProcess
from tests.streaming.test_recovery import records

PARTITIONS = 4
GROUP = {**FAST_GROUP, "max.poll.interval.ms": "10000"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kafka-stress-"))
    with LocalBroker(work / "tansu.log") as broker:
        kafka = Kafka(broker)
        topic, group = kafka.topic(PARTITIONS), kafka.group()
        lake = Lake(str(work / "lake"))
        started = time.monotonic()
        sent = kafka.send(topic, records(args.messages), PARTITIONS)
        print(f"sent {args.messages:,} messages in {time.monotonic() - started:.1f} s")
        options = ("--lake", lake.uri, "--max-records", "5000", "--max-wait-ms", "300")

        def start(name: str, *more: str) -> ConsumerProcess:
            return ConsumerProcess(
                kafka.bootstrap_servers,
                topic,
                group,
                work / f"{name}.duckdb",
                *options,
                *more,
                kafka_config=GROUP,
            )

        steady = start("steady", "--stop-when-idle", "10")
        for kill in range(3):
            victim = start(f"victim{kill}")
            seen = len(victim.batches())
            wanted = seen + rng.randint(1, 4)
            victim.wait_for(lambda: len(victim.batches()) >= wanted, 300, "batches")  # noqa: B023
            time.sleep(rng.uniform(0, 0.3))
            victim.send(signal.SIGKILL)
            victim.finish(10)
            print(f"kill {kill + 1}: after {len(victim.batches())} batches")
        code = steady.finish(900)
        final = start("final", "--stop-when-idle", "5")
        final_code = final.finish(900)
        print(f"exit codes: steady {code}, final {final_code}")
        pairs = lake_rows(lake, "SELECT kafka_partition, kafka_offset FROM kafka_lineage")
        expected = sorted(sent.coordinates)
        ok = sorted(pairs) == expected
        committed = (
            pl.read_delta(lake.table_uri("ingestion_batches"))
            .filter(pl.col("status") != "failed")
            .select("run_id", "batch")
        )
        lineage = pl.scan_delta(lake.table_uri("kafka_lineage")).collect()
        kept = lineage.join(committed, on=["run_id", "batch"], how="semi")
        unique = kept.select("kafka_partition", "kafka_offset").n_unique()
        print(
            f"stored {len(pairs):,} rows for {args.messages:,} messages; distinct "
            f"(partition, offset): {len(set(pairs)):,}; read with Polars and deltalake alone: "
            f"{kept.height:,} rows, {unique:,} distinct; orphan rows left by kills and "
            f"refused attempts: {lineage.height - kept.height:,}"
        )
        ok = ok and kept.height == unique == args.messages and code == final_code == 0
        print("exactly once: " + ("yes" if ok else "NO"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
