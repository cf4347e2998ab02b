"""Inputs benchmark (issue 16): the same rows from a plain file, gzip, zstd, stdin and Parquet.

    python benchmarks/bench_inputs.py [--rows 1000000] [--repeat 3]

All measured in one run, interleaved (each round runs every input once), so the ratios hold
on a shared machine: ``cli.py run`` on the plain CSV, on it gzip-compressed (level 6) and
zstd-compressed, on the plain CSV piped into stdin (``run - --format csv``), on the same rows
as Parquet; and the decompression alone, as baselines: ``gzip -dc file > /dev/null``,
Python's ``gzip`` module reading the file in 16 MiB blocks (what the engine does), and
``zstd -dc``. A compressed input should cost no more than its decompression: its extra time
over the plain file is compared with the decompression alone. Prints medians, rows/s, peak
RSS and the ratios, and writes benchmarks/results/inputs.json.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, ROOT, WORK, Measurement, measure, median_run, python, report

GZIP_ALONE = """
import gzip, sys
with gzip.open(sys.argv[1], "rb") as fh:
    while fh.read(16 << 20):
        pass
"""

TO_PARQUET = """
import polars as pl, sys
pl.read_csv(sys.argv[1], infer_schema_length=0).write_parquet(sys.argv[2], row_group_size=100_000)
"""


def shell(name: str, rows: int, command: str) -> Measurement:
    """A shell pipeline (a baseline), wall time only: its peak RSS is not the engine's."""
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True, cwd=ROOT)
    return Measurement(name, rows, time.perf_counter() - started, 0.0)


def run_stdin(name: str, rows: int, source: Path, db: Path) -> Measurement:
    """``cli.py run -`` with the file on its stdin (os.wait4: the child's own peak RSS)."""
    db.unlink(missing_ok=True)
    with source.open("rb") as stdin:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "cli.py", "run", "-", "--format", "csv", "--db", str(db), "-q"],
            stdin=stdin,
            cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: child exited with {os.waitstatus_to_exitcode(status)}")
    return Measurement(name, rows, seconds, usage.ru_maxrss / 1024)


def run_file(name: str, rows: int, source: Path, db: Path) -> Measurement:
    db.unlink(missing_ok=True)
    return measure(
        name, rows, [sys.executable, "cli.py", "run", str(source), "--db", str(db), "-q"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    medians, extra = compare_inputs(args.rows, args.seed, args.repeat)
    report(
        f"Inputs: {args.rows:,} rows, median of {args.repeat} interleaved rounds",
        medians,
        extra,
        RESULTS / "inputs.json",
    )


def compare_inputs(rows: int, seed: int, repeat: int) -> tuple[list[Measurement], dict[str, Any]]:
    """The median run of each input and baseline, and the figures compared (also run by
    ``bench_ingest.py``)."""
    WORK.mkdir(parents=True, exist_ok=True)
    plain = WORK / f"transactions_{rows}_{seed}.csv"
    if not plain.exists():
        print(f"generating {plain} ...", flush=True)
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
                str(plain),
                "--seed",
                str(seed),
            ],
        )
    gz = plain.with_name(plain.name + ".gz")
    if not gz.exists():
        with plain.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 16 << 20)
    zst = plain.with_name(plain.name + ".zst")
    has_zstd = shutil.which("zstd") is not None
    if has_zstd and not zst.exists():
        subprocess.run(["zstd", "-q", "-3", str(plain), "-o", str(zst)], check=True)
    parquet = plain.with_suffix(".parquet")
    if not parquet.exists():
        measure("to parquet", rows, python(TO_PARQUET, str(plain), str(parquet)))

    db = WORK / "bench_inputs.duckdb"
    runs: dict[str, list[Measurement]] = {}

    def add(found: Measurement) -> None:
        runs.setdefault(found.name, []).append(found)
        print(f"  {found.name}: {found.seconds:.2f} s", flush=True)

    for attempt in range(1, repeat + 1):
        print(f"round {attempt} of {repeat}", flush=True)
        add(run_file("run plain CSV", rows, plain, db))
        add(run_file("run gzip CSV", rows, gz, db))
        add(run_stdin("run - (stdin) CSV", rows, plain, db))
        if has_zstd:
            add(run_file("run zstd CSV", rows, zst, db))
        add(run_file("run Parquet", rows, parquet, db))
        add(shell("gzip -dc > /dev/null", rows, f"gzip -dc {gz} > /dev/null"))
        add(measure("Python gzip module alone", rows, python(GZIP_ALONE, str(gz))))
        if has_zstd:
            add(shell("zstd -dc > /dev/null", rows, f"zstd -q -dc {zst} > /dev/null"))
    db.unlink(missing_ok=True)

    medians = {name: median_run(found) for name, found in runs.items()}
    seconds = {name: statistics.median(m.seconds for m in found) for name, found in runs.items()}
    base = seconds["run plain CSV"]
    extra = {
        "rows": rows,
        "repeat": repeat,
        "plain CSV bytes": plain.stat().st_size,
        "gzip bytes": gz.stat().st_size,
        "median seconds": {name: round(value, 3) for name, value in seconds.items()},
        "ratio to the plain CSV run": {
            name: round(value / base, 3)
            for name, value in seconds.items()
            if name.startswith("run")
        },
        "gzip: extra time over the plain run (s)": round(seconds["run gzip CSV"] - base, 3),
        "gzip: decompression alone, gzip -dc (s)": round(seconds["gzip -dc > /dev/null"], 3),
        "gzip: decompression alone, Python's gzip (s)": round(
            seconds["Python gzip module alone"], 3
        ),
        "stdin: extra time over the plain run (s)": round(seconds["run - (stdin) CSV"] - base, 3),
    }
    if has_zstd:
        extra["zstd: extra time over the plain run (s)"] = round(seconds["run zstd CSV"] - base, 3)
        extra["zstd: decompression alone, zstd -dc (s)"] = round(seconds["zstd -dc > /dev/null"], 3)
    return list(medians.values()), extra


if __name__ == "__main__":
    main()
