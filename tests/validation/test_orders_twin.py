"""The orders schema's model validator and its vectorized twin agree on aware order times.

The twin sees ``ordered_at`` as stored (its UTC instant), so the Python validator compares
``ship_by`` with the UTC date too; before, an order given at 23:00-05:00 was valid for
Pydantic and invalid in the engine (and 01:00+05:00 the other way round)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from pydantic import ValidationError

from schemas.orders import Order
from tests.conftest import query

TIMES = ["00:30:00", "12:00:00", "23:30:00"]
OFFSETS = ["", "Z", "+05:00", "-05:00", "+14:00", "-12:00"]
SHIP_BY = ["2024-01-04", "2024-01-05", "2024-01-06"]


def test_ship_by_is_compared_with_the_utc_order_date_on_both_paths(
    run_cli: Callable[..., Result], tmp_path: Path, db: Path
) -> None:
    rows = [
        {
            "Order ID": f"ORD-{n}",
            "customer": "Ada",
            "quantity": "1",
            "unit_price": "1.00",
            "ordered_at": f"2024-01-05T{clock}{offset}",
            "ship_by": ship_by,
        }
        for n, (clock, offset, ship_by) in enumerate(
            itertools.product(TIMES, OFFSETS, SHIP_BY), start=1
        )
    ]
    data = tmp_path / "orders.csv"
    with data.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    result = run_cli("run", str(data), "--db", str(db), "--schema", "orders")
    assert result.exit_code == 0, result.output
    invalid = {
        int(str(n)): [(e["type"], e["msg"]) for e in errors]  # type: ignore[attr-defined]
        for n, errors in query(db, "SELECT row_number, errors FROM ingestion_errors")
    }
    valid = {int(str(n)) for (n,) in query(db, "SELECT row_number FROM orders")}
    expected_invalid: dict[int, list[tuple[str, str]]] = {}
    for number, row in enumerate(rows, start=1):
        try:
            Order.model_validate(row)
        except ValidationError as exc:
            expected_invalid[number] = [(e["type"], e["msg"]) for e in exc.errors()]
    assert invalid == expected_invalid
    assert valid == set(range(1, len(rows) + 1)) - set(expected_invalid)
    # ship_by before the UTC date: one ship_by of each order on 2024-01-05 in UTC (12 of
    # them), two of each on 2024-01-06 (12:00-12:00, 23:30-05:00, 23:30-12:00), none of
    # those on 2024-01-04 (00:30+05:00, 00:30+14:00, 12:00+14:00).
    assert len(expected_invalid) == 18
    assert {tuple(errors) for errors in expected_invalid.values()} == {
        (("value_error", "Value error, ship_by is before the order date"),)
    }
