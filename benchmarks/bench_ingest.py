"""End-to-end ingestion benchmark (issue 2), all measured in one run so ratios hold.

    python benchmarks/bench_ingest.py [--rows 10000000] [--small 1000000] [--slice 100000]
                                      [--repeat 3]

Times, on a generated file (fixed seed):
- ``cli.py run`` end to end (validation, lineage, DuckDB, one transaction), --repeat times on
  --rows (interleaved with the baseline) and once on --small;
- the baseline: DuckDB's own ``CREATE TABLE t AS SELECT * FROM read_csv(...)`` on the same file
  (no validation, no lineage);
- the original design: a row-by-row Pydantic + SQLite insert loop on a --slice-row prefix.
Prints rows/s, peak RSS and the ratios (medians, and each run's), and writes
benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    RESULTS,
    ROOT,
    WORK,
    Measurement,
    measure,
    median_run,
    python,
    report,
)

DUCKDB_BASELINE = """
import duckdb, sys, os
db = sys.argv[2]
if os.path.exists(db): os.remove(db)
con = duckdb.connect(db)
con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{sys.argv[1]}')")
con.close()
"""

PYDANTIC_SQLITE = """
import csv, sqlite3, sys, os
from schemas.transactions import Transaction
from pydantic import ValidationError
path, db, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if os.path.exists(db): os.remove(db)
con = sqlite3.connect(db)
con.execute("CREATE TABLE raw_data (id INTEGER PRIMARY KEY, raw TEXT)")
con.execute("CREATE TABLE processed_data (raw_id INTEGER, external_id TEXT, amount REAL, currency TEXT, source_channel TEXT, timestamp TEXT)")
con.execute("CREATE TABLE ingestion_errors (raw_id INTEGER, raw TEXT, errors TEXT)")
with open(path, newline="") as fh:
    reader = csv.DictReader(fh)
    for n, row in enumerate(reader, start=1):
        if n > limit:
            break
        data = {k: v for k, v in row.items() if v != ""}
        raw_id = con.execute("INSERT INTO raw_data (raw) VALUES (?)", (str(row),)).lastrowid
        try:
            t = Transaction.model_validate(data)
            con.execute("INSERT INTO processed_data VALUES (?, ?, ?, ?, ?, ?)",
                        (raw_id, t.external_id, t.amount, t.currency, t.source_channel, t.timestamp.isoformat()))
        except ValidationError as exc:
            con.execute("INSERT INTO ingestion_errors VALUES (?, ?, ?)", (raw_id, str(row), exc.json()))
con.commit()
con.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--slice", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of the engine and of the baseline, interleaved (the machine is shared: "
        "figures are medians, the best run is shown too)",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    WORK.mkdir(parents=True, exist_ok=True)

    files = {}
    for rows in (args.rows, args.small):
        path = WORK / f"transactions_{rows}_{args.seed}.csv"
        if not path.exists():
            print(f"generating {path} ...", flush=True)
            measure(
                "generate",
                rows,
                [
                    sys.executable,
                    "cli.py",
                    "generate",
                    "--rows",
                    str(rows),
                    "-o",
                    str(path),
                    "--seed",
                    str(args.seed),
                ],
            )
        files[rows] = path

    big, small = files[args.rows], files[args.small]
    engine_runs: list[Measurement] = []
    duck_runs: list[Measurement] = []
    # Interleaved, so each engine run and the baseline run after it see the same machine.
    for attempt in range(1, args.repeat + 1):
        db = WORK / f"bench_{args.rows}.duckdb"
        db.unlink(missing_ok=True)
        engine_runs.append(
            measure(
                f"cli.py run ({args.rows:,} rows) #{attempt}",
                args.rows,
                [sys.executable, "cli.py", "run", str(big), "--db", str(db), "--quiet"],
            )
        )
        duck_runs.append(
            measure(
                f"DuckDB CTAS read_csv ({args.rows:,} rows) #{attempt}",
                args.rows,
                python(DUCKDB_BASELINE, str(big), str(WORK / "baseline.duckdb")),
            )
        )
    small_db = WORK / f"bench_{args.small}.duckdb"
    small_db.unlink(missing_ok=True)
    engine_small = measure(
        f"cli.py run ({args.small:,} rows)",
        args.small,
        [sys.executable, "cli.py", "run", str(small), "--db", str(small_db), "--quiet"],
    )
    loop = measure(
        f"Pydantic + SQLite row loop ({args.slice:,} rows)",
        args.slice,
        python(PYDANTIC_SQLITE, str(big), str(WORK / "rowloop.sqlite"), str(args.slice)),
        env={"PYTHONPATH": str(ROOT)},
    )
    results = [*engine_runs, *duck_runs, engine_small, loop]
    engine = median_run(engine_runs)
    ratios = [e.seconds / d.seconds for e, d in zip(engine_runs, duck_runs, strict=True)]
    extra = {
        "repeats": args.repeat,
        "engine_rows_per_s_median": round(engine.rows_per_s),
        "engine_rows_per_s_best": round(max(m.rows_per_s for m in engine_runs)),
        "duckdb_baseline_seconds_median": round(median_run(duck_runs).seconds, 2),
        "time_vs_duckdb_baseline_median": round(statistics.median(ratios), 2),
        "time_vs_duckdb_baseline_each": [round(r, 2) for r in ratios],
        "speedup_vs_row_loop": round(engine.rows_per_s / loop.rows_per_s, 1),
        "peak_rss_mib_max": round(max(m.peak_rss_mib for m in engine_runs)),
        "peak_rss_ratio_big_vs_small": round(
            max(m.peak_rss_mib for m in engine_runs) / engine_small.peak_rss_mib, 2
        ),
        "targets": {
            "rows_per_s": ">= 1,000,000",
            "time_vs_duckdb_baseline": "<= 3",
            "peak_rss_mib": "< 1024",
        },
    }
    report(
        f"Ingestion benchmark ({args.repeat} interleaved runs, same machine)",
        results,
        extra,
        RESULTS / "ingest.json",
    )


if __name__ == "__main__":
    main()
