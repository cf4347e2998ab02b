"""Validation throughput (issue 3): the vectorized rules vs Pydantic per row vs dataframely.

    python benchmarks/bench_validation.py [--rows 1000000] [--pydantic-rows 100000]

All three validate the same generated transactions (fixed seed), given as the raw strings a
CSV reader produces, with equivalent rules; each runs in its own child process (peak RSS is
that child's), in one run so the ratios hold on a noisy machine, and each reports the best
of five passes. Only validation is timed: reading the file and storing rows are not. dataframely needs `pip install -e '.[bench]'`.

- engine: BatchValidator.validate over the batches (vectorized rules, Pydantic fallback
  for any row that needs it);
- pydantic: Transaction.model_validate per row, on a --pydantic-rows prefix;
- dataframely: Schema.filter(frame, cast=True) with the same rules (amount > 0, allowed
  currencies after upper-casing, timestamp not in the future); timestamps are parsed with
  str.to_datetime first (Polars 2 cannot cast strings to datetimes), which accepts only the
  one format the generated data uses: a narrower check than the engine's.
Writes benchmarks/results/validation.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, WORK, Measurement, report

REPEATS = 5


def best_of(once: Callable[[], int]) -> float:
    """Fastest of REPEATS passes (each section the same way); the valid count goes to stderr."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        valid = once()
        times.append(time.perf_counter() - started)
    print(json.dumps({"valid": valid, "times": times}), file=sys.stderr)
    return min(times)


def _batches(path: Path):  # type: ignore[no-untyped-def]
    from engine.pipeline import RunOptions
    from engine.sources.csv import CsvSource

    options = RunOptions()  # batches as `run` makes them
    source = CsvSource(
        path, block_size=options.block_size, max_record_bytes=options.max_record_bytes
    )
    return source, list(source.batches())


def section_engine(path: Path, rows: int) -> float:
    from datetime import UTC, datetime

    from engine.validation.compiler import compile_schema
    from engine.validation.validate import BatchValidator
    from schemas.transactions import Transaction

    source, batches = _batches(path)
    validator = BatchValidator(compile_schema(Transaction, typed=False), source.keys)

    def once() -> int:
        return sum(validator.validate(batch, datetime.now(UTC)).valid.height for batch in batches)

    return best_of(once)


def section_pydantic(path: Path, rows: int) -> float:
    import csv

    from pydantic import ValidationError

    from schemas.transactions import Transaction

    with path.open(newline="") as fh:
        data = [
            {k: v for k, v in row.items() if v != ""}
            for _, row in zip(range(rows), csv.DictReader(fh), strict=False)
        ]

    def once() -> int:
        valid = 0
        for row in data:
            try:
                Transaction.model_validate(row)
                valid += 1
            except ValidationError:
                pass
        return valid

    return best_of(once)


def section_dataframely(path: Path, rows: int) -> float:
    from datetime import UTC, datetime

    import dataframely as dy
    import polars as pl

    from schemas.transactions import DEFAULT_CURRENCIES

    class TransactionSchema(dy.Schema):
        external_id = dy.String(nullable=False)
        amount = dy.Float64(nullable=False, min_exclusive=0.0)
        currency = dy.String(nullable=True)
        source_channel = dy.String(nullable=False)
        timestamp = dy.Datetime(nullable=True)

        @dy.rule()
        def currency_allowed(cls) -> pl.Expr:
            return (
                pl.col("currency")
                .fill_null("USD")
                .str.to_uppercase()
                .is_in(list(DEFAULT_CURRENCIES))
            )

        @dy.rule()
        def not_in_future(cls) -> pl.Expr:
            return pl.col("timestamp").is_null() | (
                pl.col("timestamp") <= datetime.now(UTC).replace(tzinfo=None)
            )

    _, batches = _batches(path)
    frames = [
        b.frame.select("external_id", "amount", "currency", "source_channel", "timestamp")
        for b in batches
    ]

    def once() -> int:
        valid = 0
        for frame in frames:
            # Polars 2 no longer casts strings to datetimes: parse them first (part of the work).
            parsed = frame.with_columns(
                pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
            )
            valid += TransactionSchema.filter(parsed, cast=True).result.height
        return valid

    return best_of(once)


SECTIONS = {
    "engine": section_engine,
    "pydantic": section_pydantic,
    "dataframely": section_dataframely,
}


def child(section: str, path: Path, rows: int) -> None:
    elapsed = SECTIONS[section](path, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": peak}))


def run(section: str, path: Path, rows: int) -> Measurement:
    out = subprocess.run(
        [sys.executable, __file__, "--section", section, "--file", str(path), "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return Measurement(section, rows, data["seconds"], data["peak_rss_mib"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pydantic-rows", type=int, default=100_000)
    parser.add_argument("--section", choices=list(SECTIONS))
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    if args.section:
        child(args.section, args.file, args.rows)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"validation_{args.rows}.csv"
    if not path.exists():
        subprocess.run(
            [sys.executable, "cli.py", "generate", "--rows", str(args.rows), "-o", str(path)],
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    engine = run("engine", path, args.rows)
    pydantic = run("pydantic", path, args.pydantic_rows)
    measurements = [engine, pydantic]
    extra: dict[str, object] = {
        "speedup_vs_pydantic": round(engine.rows_per_s / pydantic.rows_per_s, 1),
        "target_vs_pydantic": ">= 20x",
    }
    try:
        frame = run("dataframely", path, args.rows)
        measurements.append(frame)
        extra["speed_vs_dataframely"] = round(engine.rows_per_s / frame.rows_per_s, 2)
        extra["target_vs_dataframely"] = ">= 1.0 (no slower)"
    except subprocess.CalledProcessError as exc:
        extra["dataframely"] = (
            f"not measured: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
        )
    report(
        "Validation throughput (one run, same machine)",
        measurements,
        extra,
        RESULTS / "validation.json",
    )


if __name__ == "__main__":
    main()
