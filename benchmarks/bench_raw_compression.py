"""How to store the raw text (``raw_data.raw``): uncompressed, zstd, or DuckDB's own choice.

For each codec, a fresh database made with ``cli.py run FILE --raw-compression CODEC``
(interleaved rounds: the machine's drift hits every codec alike): the run's wall time, its
CPU time (user + system, of the whole process: DuckDB's threads included), its peak RSS, the
database's size and the bytes of the raw column alone (DuckDB's storage info); then reading
the lineage back (``SELECT sum(length(raw)) FROM raw_data``, what an export of the raw rows
reads). Prints each against ``uncompressed`` and writes ``benchmarks/results/raw_compression.json``.

    python benchmarks/bench_raw_compression.py              # 10M rows, one round
    python benchmarks/bench_raw_compression.py --rows 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, ROOT, WORK

CODECS = ("uncompressed", "zstd", "auto")


def child(argv: list[str]) -> dict[str, float]:
    """Run argv; its wall time, CPU time and peak RSS (os.wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv}: exited with {os.waitstatus_to_exitcode(status)}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


READ = """
import sys, time, resource, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET enable_progress_bar = false")
raw = con.execute(
    "WITH s AS (SELECT * FROM pragma_storage_info('source_rows') WHERE column_name = 'raw') "
    "SELECT 262144 * count(DISTINCT b) FROM (SELECT block_id AS b FROM s WHERE block_id >= 0 "
    "UNION ALL SELECT unnest(additional_block_ids) FROM s)"
).fetchone()[0]
started, cpu = time.perf_counter(), time.process_time()
total = con.execute("SELECT sum(length(raw)) FROM raw_data").fetchone()[0]
print(raw, total, time.perf_counter() - started, time.process_time() - cpu)
"""


def one(codec: str, data: Path, db: Path) -> dict[str, Any]:
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    run = child(
        [sys.executable, str(ROOT / "cli.py"), "run", str(data), "--db", str(db), "--quiet",
         "--raw-compression", codec]
    )  # fmt: skip
    read = subprocess.run(
        [sys.executable, "-c", READ, str(db)], capture_output=True, text=True, check=True
    ).stdout.split()
    return {
        **run,
        "db_bytes": db.stat().st_size,
        "raw_column_bytes": int(read[0]),
        "raw_text_bytes": int(read[1]),
        "read_wall_s": float(read[2]),
        "read_cpu_s": float(read[3]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"raw_{args.rows}.csv"
    if not data.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), "generate", "--rows", str(args.rows),
             "-o", str(data), "--seed", str(args.seed)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    db = WORK / "raw_compression.duckdb"
    rounds: dict[str, list[dict[str, Any]]] = {codec: [] for codec in CODECS}
    for number in range(args.rounds):
        for codec in CODECS:
            found = one(codec, data, db)
            rounds[codec].append(found)
            print(
                f"round {number + 1} {codec:13} "
                + json.dumps({k: round(v, 3) for k, v in found.items()})
            )
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    medians = {codec: _median(found) for codec, found in rounds.items()}
    base = medians["uncompressed"]
    print(
        f"\n{args.rows:,} rows ({data.stat().st_size / 1e6:,.0f} MB of CSV), medians of {args.rounds}"
    )
    print(
        f"{'codec':13} {'run s':>7} {'CPU s':>7} {'CPU x':>6} {'DB MB':>8} {'DB x':>6} {'raw MB':>8} {'read s':>7} {'RSS MiB':>8}"
    )
    for codec, m in medians.items():
        print(
            f"{codec:13} {m['wall_s']:>7.2f} {m['cpu_s']:>7.2f} {m['cpu_s'] / base['cpu_s']:>6.2f} "
            f"{m['db_bytes'] / 1e6:>8,.0f} {m['db_bytes'] / base['db_bytes']:>6.2f} "
            f"{m['raw_column_bytes'] / 1e6:>8,.0f} {m['read_wall_s']:>7.2f} {m['peak_rss_mib']:>8,.0f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "raw_compression.json"
    out.write_text(
        json.dumps(
            {
                "rows": args.rows,
                "csv_bytes": data.stat().st_size,
                "load_average": os.getloadavg(),
                "rounds": rounds,
                "medians": medians,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


def _median(found: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: sorted(f[key] for f in found)[(len(found) - 1) // 2] for key in found[0]}


if __name__ == "__main__":
    main()
