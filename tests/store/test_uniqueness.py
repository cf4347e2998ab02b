"""Unique keys: duplicates within a run and against stored rows, first occurrence kept."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from engine.pipeline import RunOptions, ingest_file
from engine.store.store import Store
from schemas.orders import Order
from tests.conftest import DATA, query


def order_line(n: int, order_id: str) -> str:
    return f"{order_id},Customer {n},1,10.00,new,2,2024-05-01T10:00:00,,false"


def header() -> str:
    return (DATA / "orders_sample.csv").read_text().splitlines()[0]


def test_duplicates_across_chunks_and_runs(tmp_path: Path, db: Path) -> None:
    ids = [f"ORD-{i % 700}" for i in range(1, 2001)]  # each id three times, far apart
    first = tmp_path / "first.csv"
    first.write_text(
        "\n".join([header(), *(order_line(n, i) for n, i in enumerate(ids, 1))]) + "\n"
    )
    with Store(db) as store:
        run1 = ingest_file(store, first, Order, RunOptions(block_size=4096))
    assert (run1.tally.valid, run1.tally.invalid) == (700, 1300)
    # The first occurrence of each id is the one kept, whatever the chunking.
    kept = query(db, "SELECT order_id, row_number FROM orders ORDER BY row_number")
    assert kept == [(f"ORD-{(n % 700)}", n) for n in range(1, 701)]
    # A later duplicate names the first one.
    assert query(db, "SELECT loc, type, msg, input FROM error_details WHERE row_number = 701") == [
        ("Order ID", "duplicate", "Duplicate Order ID: first seen in run 1, row 1", '"ORD-1"')
    ]
    second = tmp_path / "second.csv"
    second.write_text(
        "\n".join([header(), order_line(1, "ORD-5"), order_line(2, "ORD-9999")]) + "\n"
    )
    with Store(db) as store:
        run2 = ingest_file(store, second, Order, RunOptions())
    assert (run2.tally.valid, run2.tally.invalid) == (1, 1)
    assert query(db, f"SELECT row_number, msg FROM error_details WHERE run_id = {run2.run_id}") == [
        (1, "Duplicate Order ID: first seen in run 1, row 5")
    ]


def test_invalid_rows_do_not_claim_a_key(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "o.csv"
    bad = "ORD-1,Someone,0,10.00,new,2,2024-05-01T10:00:00,,false"  # quantity 0: invalid
    path.write_text("\n".join([header(), bad, order_line(2, "ORD-1")]) + "\n")
    with Store(db) as store:
        ingest_file(store, path, Order, RunOptions())
    assert query(db, "SELECT order_id, row_number FROM orders") == [("ORD-1", 2)]
    assert query(db, "SELECT row_number, loc, type FROM error_details") == [
        (1, "quantity", "greater_than_equal")
    ]


def test_orders_sample_errors(db: Path) -> None:
    with Store(db) as store:
        summary = ingest_file(store, DATA / "orders_sample.csv", Order, RunOptions())
    assert (summary.tally.rows, summary.tally.valid, summary.tally.invalid) == (8, 2, 6)
    errors = query(db, "SELECT row_number, loc, type FROM error_details ORDER BY 1, 2, 3")
    assert errors == [
        (3, "", "value_error"),
        (4, "Order ID", "duplicate"),
        (5, "customer", "missing"),
        (5, "gift", "bool_parsing"),
        (5, "priority", "enum"),
        (5, "status", "enum"),
        (5, "unit_price", "decimal_max_places"),
        (6, "Order ID", "string_pattern_mismatch"),
        (6, "ordered_at", "datetime_from_date_parsing"),
        (6, "unit_price", "greater_than"),
        (7, "quantity", "less_than_equal"),
        (7, "unit_price", "decimal_whole_digits"),
        (8, "Order ID", "duplicate"),
    ]
    row3 = (
        '{"Order ID":"ORD-3","customer":"Alan Turing","quantity":"3","unit_price":"12.50",'
        '"status":"shipped","priority":"2","ordered_at":"2024-05-02T09:00:00","ship_by":"2024-05-01","gift":"yes"}'
    )
    assert query(db, "SELECT msg, input FROM error_details WHERE row_number = 3") == [
        ("Value error, ship_by is before the order date", row3)
    ]
    stored = query(
        db,
        "SELECT order_id, customer, quantity, unit_price::VARCHAR, status, priority, gift FROM orders ORDER BY row_number",
    )
    assert stored == [
        ("ORD-1", "Ada Lovelace", 2, "19.99", "paid", 3, False),
        ("ORD-2", "Grace Hopper", 1, "5.00", "new", 2, False),
    ]


class Reading(BaseModel):
    __unique__: ClassVar[tuple[str, ...]] = ("value",)
    value: float | None = None


class Pair(BaseModel):
    __unique__: ClassVar[tuple[str, ...]] = ("sensor", "value")
    sensor: str
    value: float


def test_a_nan_or_infinite_key_is_written_as_python_writes_it(tmp_path: Path, db: Path) -> None:
    """NaN equals NaN as a key (README); its input says NaN, as json.dumps does, not null
    (which reads as a null key, never a duplicate)."""
    single = tmp_path / "single.csv"
    single.write_text("value\nnan\nNaN\ninf\nInfinity\n-inf\n-Infinity\n1.5\n1.50\n\n")
    pair = tmp_path / "pair.ndjson"
    pair.write_text(
        "".join(
            json.dumps({"sensor": s, "value": v}) + "\n"
            for s, v in [("a", math.nan), ("a", math.nan), ("b", -math.inf), ("b", -math.inf)]
        )
    )
    with Store(db) as store:
        ingest_file(store, single, Reading, RunOptions())
        ingest_file(store, pair, Pair, RunOptions())
    details = "SELECT row_number, msg, input FROM error_details WHERE run_id = {} ORDER BY 1"
    assert query(db, details.format(1)) == [
        (2, "Duplicate value: first seen in run 1, row 1", "NaN"),
        (4, "Duplicate value: first seen in run 1, row 3", "Infinity"),
        (6, "Duplicate value: first seen in run 1, row 5", "-Infinity"),
        (8, "Duplicate value: first seen in run 1, row 7", "1.5"),
    ]
    assert query(db, details.format(2)) == [
        (2, "Duplicate sensor, value: first seen in run 2, row 1", '{"sensor":"a","value":NaN}'),
        (
            4,
            "Duplicate sensor, value: first seen in run 2, row 3",
            '{"sensor":"b","value":-Infinity}',
        ),
    ]
    # Python's json reads it back as the key it is.
    (text,) = query(db, "SELECT input FROM error_details WHERE run_id = 1 AND row_number = 2")[0]
    assert math.isnan(json.loads(str(text)))
