"""How far vectorized Polars rules can go on the dirty workload: the floor behind issue 12's 10x.

    python benchmarks/bench_floor.py [--rows 1000000] [--pydantic-rows 100000] [--rounds 3]

On the dirty workload's data (``benchmarks/dirty.py``, 13 fields), in one process, rounds
interleaved, medians:

- Pydantic: ``model_validate`` per row of the whole model, and of a one-field model (its
  per-row cost without the fields); the difference over 12 fields is its cost per field value;
- the engine: ``BatchValidator.validate`` of the whole model on the rows in one batch;
- Polars' floor: for each field, the single cheapest column operation a check of it needs
  (a regex match, a cast, a length, a membership test, a fixed-format date parse) on one
  thread, with no null handling, no lax forms and no error lists at all.

It prints each in nanoseconds per field value, and the budget 10x Pydantic leaves the engine
per field value: below one Polars operation means no composition of Polars operations can
reach 10x with Pydantic's grammar, which takes several per field. Writes
benchmarks/results/floor.json.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # before Polars loads: one thread's cost
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import RESULTS, WORK

FIELDS = 13


def _floor_ops() -> dict[str, Any]:
    """Per field of ``dirty.Shipment``, the one cheapest operation a check of it needs."""
    import polars as pl

    c = pl.col
    return {
        "shipment_id": c("shipment_id").str.contains(r"^SHP-[0-9]{6}$"),
        "customer": c("customer").str.len_chars(),
        "parcels": c("parcels").cast(pl.Int64, strict=False),
        "weight_kg": c("weight_kg").cast(pl.Float64, strict=False),
        "declared_value": c("declared_value").cast(pl.Float64, strict=False),
        "ship_date": c("ship_date").str.to_date("%Y-%m-%d", strict=False),
        "created_at": c("created_at")
        .str.slice(0, 19)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
        "insured": c("insured").is_in(["true", "false", "yes", "no", "1", "0"]),
        "carrier": c("carrier").is_in(["dhl", "ups", "fedex", "post"]),
        "service": c("service").is_in(["standard", "express", "overnight"]),
        "tracking_uuid": c("tracking_uuid").str.len_bytes(),
        "note": c("note").is_null(),
        "delivered_at": c("delivered_at")
        .str.slice(0, 19)
        .str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
    }


def _timed(once: Callable[[], object]) -> float:
    started = time.perf_counter()
    once()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pydantic-rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from datetime import UTC, datetime

    import polars as pl
    from pydantic import ValidationError, create_model

    from benchmarks.bench_validation import _batches
    from benchmarks.dirty import Shipment, read_rows, write_dirty
    from engine.batch import RawBatch
    from engine.validation.compiler import compile_schema
    from engine.validation.validate import BatchValidator

    path = WORK / f"validation_dirty_{args.rows}.csv"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        write_dirty(path, args.rows)
    source, batches = _batches(path)
    one = RawBatch(pl.concat([b.frame for b in batches]).rechunk(), source.keys, False)
    text = one.frame.select(list(Shipment.model_fields))
    validator = BatchValidator(compile_schema(Shipment, typed=False), source.keys)
    rows = read_rows(path, args.pydantic_rows)
    first = next(iter(Shipment.model_fields))
    field = Shipment.model_fields[first]
    single = create_model("Single", **{first: (field.annotation, field)})  # type: ignore[call-overload]
    single_rows = [{first: r[first]} if first in r else {} for r in rows]
    ops = _floor_ops()

    def pydantic(model: type, data: list[dict[str, str]]) -> None:
        for row in data:
            with contextlib.suppress(ValidationError):
                model.model_validate(row)  # type: ignore[attr-defined]

    times: dict[str, list[float]] = {"pydantic": [], "pydantic_one_field": [], "engine": []}
    times.update({f"floor:{name}": [] for name in ops})
    for _ in range(args.rounds):
        times["pydantic"].append(_timed(lambda: pydantic(Shipment, rows)) / len(rows))
        times["pydantic_one_field"].append(
            _timed(lambda: pydantic(single, single_rows)) / len(rows)
        )
        times["engine"].append(
            _timed(lambda: validator.validate(one, datetime.now(UTC))) / one.height
        )
        for name, op in ops.items():
            times[f"floor:{name}"].append(_timed(functools.partial(text.select, op)) / one.height)
    ns = {name: statistics.median(values) * 1e9 for name, values in times.items()}
    per_field = {
        "pydantic": (ns["pydantic"] - ns["pydantic_one_field"]) / (FIELDS - 1),
        "pydantic_with_row_overhead": ns["pydantic"] / FIELDS,
        "engine": ns["engine"] / FIELDS,
        "budget_for_10x": ns["pydantic"] / 10 / FIELDS,
        "polars_floor_mean": statistics.mean(ns[f"floor:{name}"] for name in ops),
    }
    result = {
        "rows": one.height,
        "pydantic_rows": len(rows),
        "rounds": args.rounds,
        "ns_per_row": {k: round(v, 1) for k, v in ns.items()},
        "ns_per_field_value": {k: round(v, 1) for k, v in per_field.items()},
        "engine_over_pydantic": round(ns["pydantic"] / ns["engine"], 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "floor.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"rows {one.height:,}, Pydantic on {len(rows):,}, medians of {args.rounds} rounds")
    print(f"  Pydantic: {ns['pydantic']:,.0f} ns/row; engine {ns['engine']:,.0f} ns/row "
          f"({result['engine_over_pydantic']}x Pydantic)")  # fmt: skip
    for name in ops:
        print(f"  Polars floor, {name:15s} {ns[f'floor:{name}']:6.1f} ns/value")
    print("per field value (ns):")
    for name, value in per_field.items():
        print(f"  {name:28s} {value:7.1f}")


if __name__ == "__main__":
    main()
