"""Validation throughput: the vectorized rules vs Pydantic per row vs dataframely.

    python benchmarks/bench_validation.py [--rows 1000000] [--pydantic-rows 100000]
        [--workload all|transactions|dirty] [--rounds 5]

Two workloads. *transactions* (issue 3) is the reference schema on generated transactions
(about 37% invalid). *dirty* (issue 12) is a 13-field model of mixed types (str with pattern
and length, bounded int, float, Decimal, bounded date, datetime, bool, Enum, Literal, UUID,
optional fields, defaults) on rows of which about two thirds are invalid, the errors spread
over nine fields (benchmarks/dirty.py); there the engine and Pydantic run in the same child
process in interleaved rounds, and the figures are the medians of the rounds.

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
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def section_dirty(path: Path, rows: int, pydantic_rows: int, rounds: int) -> dict[str, Any]:
    """Engine and Pydantic on the dirty workload, interleaved round by round (medians)."""
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from benchmarks.dirty import Shipment, read_rows
    from engine.batch import ROW
    from engine.validation.compiler import compile_schema
    from engine.validation.validate import BatchValidator

    source, batches = _batches(path)
    validator = BatchValidator(compile_schema(Shipment, typed=False), source.keys)
    data = read_rows(path, pydantic_rows)
    engine_times: list[float] = []
    pydantic_times: list[float] = []
    engine_valid: set[int] = set()
    python_rows = 0
    pydantic_valid: set[int] = set()
    for _ in range(rounds):
        started = time.perf_counter()
        results = [validator.validate(batch, datetime.now(UTC)) for batch in batches]
        engine_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        accepted = set()
        for number, row in enumerate(data, start=1):
            try:
                Shipment.model_validate(row)
                accepted.add(number)
            except ValidationError:
                pass
        pydantic_times.append(time.perf_counter() - started)
        pydantic_valid = accepted
        engine_valid = {n for r in results for n in r.valid[ROW].to_list()}
        python_rows = sum(r.python_rows for r in results)
    prefix = {n for n in engine_valid if n <= pydantic_rows}
    return {
        "engine_seconds": statistics.median(engine_times),
        "pydantic_seconds": statistics.median(pydantic_times),
        "engine_times": engine_times,
        "pydantic_times": pydantic_times,
        "invalid_fraction": round(1 - len(engine_valid) / rows, 3),
        "python_rows": python_rows,
        "verdicts_agree_on_prefix": prefix == pydantic_valid,
        "prefix_valid_engine": len(prefix),
        "prefix_valid_pydantic": len(pydantic_valid),
    }


SECTIONS = {
    "engine": section_engine,
    "pydantic": section_pydantic,
    "dataframely": section_dataframely,
}


def child(section: str, path: Path, rows: int, pydantic_rows: int, rounds: int) -> None:
    if section == "dirty":
        out = section_dirty(path, rows, pydantic_rows, rounds)
    else:
        out = {"seconds": SECTIONS[section](path, rows)}
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def _child(section: str, path: Path, rows: int, *extra: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--section",
            section,
            "--file",
            str(path),
            "--rows",
            str(rows),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def run(section: str, path: Path, rows: int) -> Measurement:
    data = _child(section, path, rows)
    return Measurement(section, rows, data["seconds"], data["peak_rss_mib"])


def transactions(rows: int, pydantic_rows: int) -> tuple[list[Measurement], dict[str, Any]]:
    path = WORK / f"validation_{rows}.csv"
    if not path.exists():
        subprocess.run(
            [sys.executable, "cli.py", "generate", "--rows", str(rows), "-o", str(path)],
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    engine = run("engine", path, rows)
    pydantic = run("pydantic", path, pydantic_rows)
    measurements = [engine, pydantic]
    extra: dict[str, Any] = {
        "speedup_vs_pydantic": round(engine.rows_per_s / pydantic.rows_per_s, 1),
        "target_vs_pydantic": ">= 20x",
    }
    try:
        frame = run("dataframely", path, rows)
        measurements.append(frame)
        extra["speed_vs_dataframely"] = round(engine.rows_per_s / frame.rows_per_s, 2)
        extra["target_vs_dataframely"] = ">= 1.0 (no slower)"
    except subprocess.CalledProcessError as exc:
        extra["dataframely"] = (
            f"not measured: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"
        )
    return measurements, extra


def dirty(rows: int, pydantic_rows: int, rounds: int) -> tuple[list[Measurement], dict[str, Any]]:
    from benchmarks.dirty import write_dirty

    path = WORK / f"validation_dirty_{rows}.csv"
    if not path.exists():
        write_dirty(path, rows)
    data = _child(
        "dirty", path, rows, "--pydantic-rows", str(pydantic_rows), "--rounds", str(rounds)
    )
    engine = Measurement(
        "engine, dirty 13-field model", rows, data["engine_seconds"], data["peak_rss_mib"]
    )
    pydantic = Measurement(
        "pydantic per row, dirty 13-field model",
        pydantic_rows,
        data["pydantic_seconds"],
        data["peak_rss_mib"],
    )
    extra = {
        "dirty_invalid_fraction": data["invalid_fraction"],
        "dirty_rows_decided_by_pydantic_fallback": data["python_rows"],
        "dirty_speedup_vs_pydantic": round(engine.rows_per_s / pydantic.rows_per_s, 1),
        "dirty_target_vs_pydantic": ">= 10x",
        "dirty_verdicts_agree_on_pydantic_rows": data["verdicts_agree_on_prefix"],
        "dirty_valid_on_pydantic_rows": {
            "engine": data["prefix_valid_engine"],
            "pydantic": data["prefix_valid_pydantic"],
        },
        "dirty_rounds": {"engine_s": data["engine_times"], "pydantic_s": data["pydantic_times"]},
    }
    return [engine, pydantic], extra


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pydantic-rows", type=int, default=100_000)
    parser.add_argument("--workload", choices=["all", "transactions", "dirty"], default="all")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (dirty)")
    parser.add_argument("--section", choices=[*SECTIONS, "dirty"])
    parser.add_argument("--file", type=Path)
    args = parser.parse_args()
    if args.section:
        child(args.section, args.file, args.rows, args.pydantic_rows, args.rounds)
        return
    WORK.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    extra: dict[str, Any] = {}
    if args.workload in ("all", "transactions"):
        found, figures = transactions(args.rows, args.pydantic_rows)
        measurements += found
        extra |= figures
    if args.workload in ("all", "dirty"):
        found, figures = dirty(args.rows, args.pydantic_rows, args.rounds)
        measurements += found
        extra |= figures
    report(
        "Validation throughput (one run, same machine)",
        measurements,
        extra,
        RESULTS / "validation.json",
    )


if __name__ == "__main__":
    main()
