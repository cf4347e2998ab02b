"""End-to-end ingestion benchmark: the engine against DuckDB's bare load and dataframely +
DuckDB, at several sizes, in interleaved rounds so that the ratios hold on a busy machine.

    python benchmarks/bench_ingest.py [--sizes 1000000,5000000,20000000] [--rounds 3]
                                      [--cores-rows 5000000] [--startup-runs 7] [--seed 42]

Each measurement is one child process, timed for wall time and its own peak RSS:
- engine: ``cli.py run FILE --db NEW --quiet``: validation, Pydantic's error lists, lineage,
  one transaction;
- duckdb: DuckDB's ``CREATE TABLE t AS SELECT * FROM read_csv(FILE)`` (no validation, no
  lineage; ``benchmarks/baselines.py``);
- dataframely: Polars reads the file, dataframely filters it with the same rules, DuckDB
  stores the valid rows and the invalid ones with their rule results (needs the ``bench``
  extra; ``benchmarks/baselines.py``).

Per round, each size runs the three in turn (the order rotates from round to round); the
ratios are per round (engine / DuckDB time, dataframely / engine time) and their medians.
Then, at ``--cores-rows``: the engine and DuckDB pinned to one core (``taskset -c 0``) and
on all cores, interleaved: rows/s on all cores over rows/s on one. Then start-up: ``cli.py
run`` on a 4-row file against ``python -c "import duckdb"`` and against importing the
libraries the engine stands on (medians). Then the inputs (``--inputs-rows``, see
``bench_inputs.py``): gzip, zstd, stdin and Parquet against the plain file and against the
decompression alone. The generated files have a fixed seed. Writes
benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_inputs import compare_inputs
from benchmarks.common import RESULTS, WORK, Measurement, measure, report

BASELINES = str(Path(__file__).resolve().parent / "baselines.py")
LIBRARIES = "import duckdb, polars, pydantic, numpy, pyarrow"


def generated(rows: int, seed: int) -> Path:
    path = WORK / f"transactions_{rows}_{seed}.csv"
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        argv = [sys.executable, "cli.py", "generate", "--rows", str(rows), "-o", str(path)]
        measure("generate", rows, [*argv, "--seed", str(seed)])
    return path


def engine(path: Path, rows: int, label: str, pin: list[str] | None = None) -> Measurement:
    db = WORK / "bench_engine.duckdb"
    db.unlink(missing_ok=True)
    argv = [sys.executable, "cli.py", "run", str(path), "--db", str(db), "--quiet"]
    return measure(f"engine {label}", rows, [*(pin or []), *argv])


def baseline(
    name: str, path: Path, rows: int, label: str, pin: list[str] | None = None
) -> Measurement:
    db = WORK / f"bench_{name}.duckdb"
    argv = [sys.executable, BASELINES, name, str(path), str(db)]
    return measure(f"{name} {label}", rows, [*(pin or []), *argv])


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000000,5000000,20000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cores-rows", type=int, default=5_000_000, help="0: skip")
    parser.add_argument("--startup-runs", type=int, default=7, help="0: skip")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-dataframely", action="store_true")
    parser.add_argument(
        "--inputs-rows",
        type=int,
        default=1_000_000,
        help="the same rows gzip-compressed, zstd, on stdin and as Parquet against the plain "
        "file and the decompression alone (bench_inputs.py); 0: skip",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.rounds < 1 or not sizes:
        parser.error("--rounds must be at least 1 and --sizes name at least one size")
    pin = ["taskset", "-c", "0"]
    if args.cores_rows and shutil.which("taskset") is None:
        parser.error("taskset is needed for the one-core runs (or pass --cores-rows 0)")
    WORK.mkdir(parents=True, exist_ok=True)
    files = {rows: generated(rows, args.seed) for rows in sorted({*sizes, args.cores_rows} - {0})}

    kinds = ["engine", "duckdb"] + ([] if args.no_dataframely else ["dataframely"])
    runs: dict[tuple[int, str], list[Measurement]] = {(r, k): [] for r in sizes for k in kinds}
    measurements: list[Measurement] = []
    for round_number in range(args.rounds):
        order = kinds[round_number % len(kinds) :] + kinds[: round_number % len(kinds)]
        for rows in sizes:
            for kind in order:
                label = f"{rows:,} #{round_number + 1}"
                if kind == "engine":
                    done = engine(files[rows], rows, label)
                else:
                    done = baseline(kind, files[rows], rows, label)
                runs[(rows, kind)].append(done)
                measurements.append(done)
                print(
                    f"  {done.name}: {done.seconds:.2f} s, {done.peak_rss_mib:,.0f} MiB", flush=True
                )

    by_size: dict[str, Any] = {}
    for rows in sizes:
        eng, duck = runs[(rows, "engine")], runs[(rows, "duckdb")]
        vs_duckdb = [e.seconds / d.seconds for e, d in zip(eng, duck, strict=True)]
        entry: dict[str, Any] = {
            "engine_seconds_median": median([m.seconds for m in eng]),
            "engine_rows_per_s_median": round(rows / statistics.median(m.seconds for m in eng)),
            "duckdb_seconds_median": median([m.seconds for m in duck]),
            "engine_time_over_duckdb_each": [round(r, 2) for r in vs_duckdb],
            "engine_time_over_duckdb_median": median(vs_duckdb),
            "engine_peak_rss_mib_max": round(max(m.peak_rss_mib for m in eng)),
            "duckdb_peak_rss_mib_max": round(max(m.peak_rss_mib for m in duck)),
        }
        if "dataframely" in kinds:
            frame = runs[(rows, "dataframely")]
            speedup = [f.seconds / e.seconds for f, e in zip(frame, eng, strict=True)]
            entry |= {
                "dataframely_seconds_median": median([m.seconds for m in frame]),
                "dataframely_time_over_engine_each": [round(r, 2) for r in speedup],
                "dataframely_time_over_engine_median": median(speedup),
                "dataframely_peak_rss_mib_max": round(max(m.peak_rss_mib for m in frame)),
            }
        by_size[f"{rows}"] = entry

    extra: dict[str, Any] = {"rounds": args.rounds, "load_average_at_end": os.getloadavg()}
    extra["by_size"] = by_size
    if args.cores_rows:
        rows, path = args.cores_rows, files[args.cores_rows]
        speedups: dict[str, list[float]] = {"engine": [], "duckdb": []}
        for round_number in range(args.rounds):
            label = f"{rows:,} #{round_number + 1}"
            for kind in speedups:
                one_core = (
                    engine(path, rows, f"1 core {label}", pin)
                    if kind == "engine"
                    else baseline(kind, path, rows, f"1 core {label}", pin)
                )
                all_cores = (
                    engine(path, rows, f"all cores {label}")
                    if kind == "engine"
                    else baseline(kind, path, rows, f"all cores {label}")
                )
                measurements += [one_core, all_cores]
                speedups[kind].append(one_core.seconds / all_cores.seconds)
                print(
                    f"  {kind} {label}: 1 core {one_core.seconds:.2f} s, "
                    f"all cores {all_cores.seconds:.2f} s",
                    flush=True,
                )
        extra["cores"] = {
            "rows": rows,
            "cpus": os.cpu_count(),
            **{
                f"{k}_all_cores_over_one_each": [round(s, 2) for s in v]
                for k, v in speedups.items()
            },
            **{f"{k}_all_cores_over_one_median": median(v) for k, v in speedups.items()},
        }
    if args.startup_runs:
        tiny = WORK / "startup.csv"
        with files[min(files)].open() as source:
            tiny.write_text("".join(next(source) for _ in range(5)))
        startup: dict[str, list[Measurement]] = {"engine": [], "duckdb": [], "libraries": []}
        for _ in range(args.startup_runs):
            startup["engine"].append(engine(tiny, 4, "start-up (4 rows)"))
            startup["duckdb"].append(
                measure("import duckdb", 0, [sys.executable, "-c", "import duckdb"])
            )
            startup["libraries"].append(
                measure("import the libraries", 0, [sys.executable, "-c", LIBRARIES])
            )
        extra["startup_seconds_median"] = {
            "engine_run_4_rows": median([m.seconds for m in startup["engine"]]),
            "python_import_duckdb": median([m.seconds for m in startup["duckdb"]]),
            "python_import_duckdb_polars_pydantic_numpy_pyarrow": median(
                [m.seconds for m in startup["libraries"]]
            ),
        }
        measurements += [m for kind in startup.values() for m in kind]
    if args.inputs_rows:
        found, extra["inputs"] = compare_inputs(args.inputs_rows, args.seed, args.rounds)
        measurements += found
    report(
        f"Ingestion benchmark ({args.rounds} interleaved rounds; a shared machine: "
        "compare the ratios, not the times)",
        measurements,
        extra,
        RESULTS / "ingest.json",
    )


if __name__ == "__main__":
    main()
