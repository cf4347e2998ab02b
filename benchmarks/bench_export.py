"""Export benchmark (issue 4), all measured in one run so that ratios hold.

    python benchmarks/bench_export.py [--rows 5000000] [--xlsx-rows 1000000] [--repeat 3] [--rebuild]

The table: a ``processed_data`` of --rows rows with the reference schema's columns, made
directly in DuckDB (deterministic values from ``hash(i)``; ingesting a generated file gives the
same table shape but takes minutes, and its invalid rows would not be in the typed table).
It is kept in benchmarks/data/ and rebuilt only with --rebuild or another --rows.

Times, per format, in child processes (wall time, peak RSS), the best of --repeat runs of each,
taken in turns (baseline, export, baseline, ...) so that a busy machine slows both alike:
- ``cli.py export processed --format F`` (CSV, NDJSON, JSON, Parquet);
- the baseline: DuckDB's own ``COPY processed_data TO ... (FORMAT F)`` of the same table;
- XLSX on the first --xlsx-rows rows (``--where "row_number <= N"``): rows/s and peak RSS.
Prints rows/s, peak RSS and the ratios, and writes benchmarks/results/export.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, WORK, Measurement, measure, python, report

COPY_OPTIONS = {
    "csv": "FORMAT csv, HEADER true",
    "ndjson": "FORMAT json",
    "json": "FORMAT json, ARRAY true",
    "parquet": "FORMAT parquet",
}

BUILD = """
import sys, duckdb
sys.path.insert(0, sys.argv[3])
from engine.store.store import Store
db, rows = sys.argv[1], int(sys.argv[2])
with Store(db) as store:  # the engine's own shared tables
    store.execute('''
        CREATE TABLE processed_data (
            run_id BIGINT NOT NULL, row_number BIGINT NOT NULL, external_id VARCHAR,
            amount DOUBLE, currency VARCHAR, source_channel VARCHAR,
            "timestamp" TIMESTAMP WITH TIME ZONE)''')
    store.execute(f'''
        INSERT INTO processed_data
        SELECT 1, i, 'TXN-' || i,
               10 + (hash(i) % 499000) / 100.0,
               ['USD', 'EUR', 'GBP', 'AUD'][(1 + hash(i * 7) % 4)::BIGINT],
               'CHANNEL' || (1 + hash(i * 13) % 4),
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_seconds((hash(i * 31) % 31622400)::BIGINT)
        FROM range(1, {rows} + 1) t(i)''')
    store.execute('''
        INSERT INTO ingestion_runs (run_id, source_kind, source_path, format, schema_name,
            schema_fingerprint, target_table, started_at, finished_at, status, rows_total,
            rows_valid, rows_invalid, duration_s)
        VALUES (1, 'file', 'bench', 'csv', 'Transaction', 'bench', 'processed_data', now(),
            now(), 'completed', ?, ?, 0, 1.0)''', [rows, rows])
"""

DUCKDB_COPY = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("SET TimeZone = 'UTC'")
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY processed_data TO '{sys.argv[2]}' ({sys.argv[3]})")
con.close()
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--xlsx-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    out = WORK / "export"
    out.mkdir(parents=True, exist_ok=True)
    db = WORK / f"export_{args.rows}.duckdb"
    root = str(Path(__file__).resolve().parent.parent)
    if args.rebuild or not db.exists():
        db.unlink(missing_ok=True)
        print(f"building {db} ...", flush=True)
        built = measure("build table", args.rows, python(BUILD, str(db), str(args.rows), root))
        print(f"built in {built.seconds:.1f} s", flush=True)

    results: list[Measurement] = []
    ratios: dict[str, float] = {}
    for fmt, options in COPY_OPTIONS.items():
        target = out / f"processed.{fmt}"
        best: dict[str, Measurement] = {}
        for _ in range(args.repeat):
            for name, argv in (
                (f"DuckDB COPY TO ({fmt})", python(DUCKDB_COPY, str(db), str(target), options)),
                (
                    f"cli.py export ({fmt})",
                    [
                        sys.executable,
                        "cli.py",
                        "export",
                        "processed",
                        "--db",
                        str(db),
                        "-o",
                        str(target),
                        "--format",
                        fmt,
                        "-q",
                    ],
                ),
            ):
                print(f"{name} ...", flush=True)
                taken = measure(name, args.rows, argv)
                target.unlink(missing_ok=True)
                if name not in best or taken.seconds < best[name].seconds:
                    best[name] = taken
        copy, export = best.values()
        results.extend((copy, export))
        ratios[fmt] = round(export.seconds / copy.seconds, 2)

    xlsx_rows = min(args.xlsx_rows, args.rows)
    target = out / "processed.xlsx"
    print("cli.py export (xlsx) ...", flush=True)
    xlsx = measure(
        f"cli.py export (xlsx, {xlsx_rows:,} rows)",
        xlsx_rows,
        [
            sys.executable,
            "cli.py",
            "export",
            "processed",
            "--db",
            str(db),
            "-o",
            str(target),
            "--where",
            f"row_number <= {xlsx_rows}",
            "-q",
        ],
    )
    results.append(xlsx)
    xlsx_mib = target.stat().st_size / (1 << 20)
    target.unlink(missing_ok=True)

    extra = {
        "time_vs_duckdb_copy": ratios,
        "xlsx_rows_per_s": round(xlsx.rows_per_s),
        "xlsx_peak_rss_mib": round(xlsx.peak_rss_mib),
        "xlsx_file_mib": round(xlsx_mib, 1),
        "table": f"processed_data, {args.rows:,} rows built directly in DuckDB",
        "repeat": f"best of {args.repeat} per format, baseline and export in turns",
        "targets": {"time_vs_duckdb_copy (csv, ndjson, parquet)": "<= 1.5"},
    }
    report("Export benchmark (one run, same machine)", results, extra, RESULTS / "export.json")


if __name__ == "__main__":
    main()
