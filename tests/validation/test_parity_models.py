"""Property-based parity: the engine's verdicts, errors and values equal Pydantic's.

Hypothesis draws pools of adversarial values per column (see strategies.py) and a random
seed; rows are assembled from the pools (half from known-good values so valid rows are
common too) and written as CSV (text) and NDJSON (typed). Every row must get Pydantic's
verdict, the same set of (loc, type) errors, and for valid rows the same stored values.
Five examples of 20,000 rows per model and format: 100,000 rows each.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.orders import Order
from schemas.transactions import Transaction
from tests.parity import ParityReport, check_parity, write_csv, write_ndjson
from tests.validation.models import Configured, Scalars, Strict, Twinned
from tests.validation.strategies import json_values, text_values

ROWS_PER_EXAMPLE = 20_000
EXAMPLES = 5

GOOD: dict[str, dict[str, list[str]]] = {
    "Scalars": {
        "name": ["abc", "zed", "ab"],
        "code": [" xy ", "abc"],
        "small": ["3", "-99", "999999"],
        "big": ["12", "-7"],
        "ratio": ["0.5", "1e3"],
        "step": ["0.75", "-2.5"],
        "plain": ["1.5"],
        "flag": ["true", "0"],
        "price": ["12.35", "0.05", "99999.95"],
        "day": ["2024-02-29"],
        "moment": ["2024-03-01T10:00:00", "2024-03-01 10:00:00+02:00"],
        "aware": ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00-05:00"],
        "clock": ["10:20:30.5", "23:59"],
        "ident": ["12345678-1234-5678-1234-567812345678"],
        "ident4": ["abcdef00-1234-4678-8234-567812345678"],
        "color": ["red", "green"],
        "level": ["1", "2"],
        "mode": ["a", "b"],
        "rank": [""],
        "yes": [""],
    },
    "Configured": {
        "Order ID": ["ORD-1", " ORD-22 ", ""],
        "order_id": ["", "ORD-9"],
        "quantity": ["2", "", "1"],
        "qty_total": ["", "5"],
        "note": ["hello", " "],
        "when": ["2024-05-01", ""],
        "tag": ["x", ""],
        "extra": ["", ""],
    },
    "Strict": {
        "count": ["1"],
        "share": [""],
        "active": [""],
        "label": ["x", ""],
        "loose": ["5", " 7 "],
        "stamp": [""],
        "amount": [""],
    },
    "Twinned": {
        "code": ["ab", "xyz"],
        "start": ["2024-01-01", "2024-06-30"],
        "end": ["2024-06-30", "2024-12-31"],
        "size": ["0", "3", ""],
    },
    "Transaction": {
        "external_id": ["TXN-1"],
        "amount": ["10.5", "4999.99"],
        "currency": ["usd", "EUR", ""],
        "source_channel": ["CHANNEL1"],
        "timestamp": ["2024-03-01T09:15:00", "2024-03-01T09:15:00Z", ""],
    },
    "Order": {
        "Order ID": ["ORD-1", "ORD-2"],
        "customer": ["Ada"],
        "quantity": ["3"],
        "unit_price": ["9.99"],
        "status": ["paid", ""],
        "priority": ["1", ""],
        "ordered_at": ["2024-05-01T10:00:00"],
        "ship_by": ["2024-05-03", ""],
        "gift": ["false", ""],
    },
}
JSON_GOOD: dict[str, dict[str, list[Any]]] = {
    "Strict": {
        "count": [1, 42],
        "share": [0.5, 2],
        "active": [True],
        "label": ["x"],
        "loose": ["5", 6],
        "amount": [None],
    },
    "Scalars": {
        "small": [3, 6],
        "ratio": [2.5],
        "flag": [True, False],
        "level": [1, 2],
        "rank": [1, 3],
        "yes": [True],
        "big": [10**30],
    },
    "Twinned": {"size": [0, 5]},
    "Transaction": {"amount": [10.5, 100]},
    "Order": {"quantity": [2], "priority": [3], "gift": [True]},
}
MODELS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Scalars, {}),
    (Configured, {}),
    (Strict, {}),
    (Twinned, {}),
    (Transaction, {"ignore_when_absent": ("timestamp",)}),
    (Order, {}),
]


def _rows(
    model: type[BaseModel], pools: dict[str, list[Any]], rng: random.Random, typed: bool
) -> list[dict[str, Any]]:
    good = GOOD[model.__name__]
    good_json = JSON_GOOD.get(model.__name__, {})
    rows = []
    columns = list(good)
    known = {c: options + good_json.get(c, []) if typed else options for c, options in good.items()}
    for _ in range(ROWS_PER_EXAMPLE):
        row: dict[str, Any] = {}
        # A few columns per row take an adversarial value; the rest a known-good one.
        adversarial = set(rng.sample(columns, k=min(len(columns), rng.choice([0, 1, 1, 2, 3]))))
        for column, options in known.items():
            if typed and rng.random() < 0.04:
                continue
            value = rng.choice(pools[column] if column in adversarial else options)
            if typed and value == "":
                continue
            row[column] = value
        rows.append(row)
    return rows


def run_parity(
    tmp_path: Path,
    model: type[BaseModel],
    typed: bool,
    pools: dict[str, list[Any]],
    seed: int,
    **options: Any,
) -> ParityReport:
    rows = _rows(model, pools, random.Random(seed), typed)
    if typed:
        path = tmp_path / f"{model.__name__}.ndjson"
        write_ndjson(path, rows)
    else:
        path = tmp_path / f"{model.__name__}.csv"
        write_csv(path, list(GOOD[model.__name__]), rows)
    return check_parity(model, path, rows, typed=typed, now=datetime.now(UTC), **options)


def pools_for(
    model: type[BaseModel], values: Callable[[], st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, list[Any]]]:
    return st.fixed_dictionaries(
        {column: st.lists(values(), min_size=10, max_size=40) for column in GOOD[model.__name__]}
    )


TOTALS: dict[tuple[str, str], ParityReport] = {}


@pytest.mark.parametrize("typed", [False, True], ids=["csv", "ndjson"])
@pytest.mark.parametrize(("model", "options"), MODELS, ids=[m.__name__ for m, _ in MODELS])
def test_parity(
    tmp_path_factory: pytest.TempPathFactory,
    model: type[BaseModel],
    options: dict[str, Any],
    typed: bool,
) -> None:
    total = ParityReport()

    # No shrinking: an example is 20,000 rows; the failing rows are printed instead.
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        pools=pools_for(model, json_values if typed else text_values),
        seed=st.integers(0, 2**32 - 1),
    )
    def check(pools: dict[str, list[Any]], seed: int) -> None:
        report = run_parity(tmp_path_factory.mktemp("parity"), model, typed, pools, seed, **options)
        total.rows += report.rows
        total.valid += report.valid
        total.python_rows += report.python_rows
        total.storage_limited += report.storage_limited
        shown = "\n".join(
            f"{m.given!r}\n  pydantic: {m.expected!r}\n  engine:   {m.got!r}"
            for m in report.mismatches[:8]
        )
        assert not report.mismatches, f"{len(report.mismatches)} mismatches:\n{shown}"

    check()
    assert total.rows == ROWS_PER_EXAMPLE * EXAMPLES
    if model is Strict and not typed:
        # A strict int never accepts text: Pydantic rejects every CSV row, and so do we.
        assert total.valid == 0
    else:
        # Both verdicts occur often enough to mean something.
        assert total.valid > total.rows * 0.02
    assert total.rows - total.valid > total.rows * 0.2
    # Most rows are decided by the vectorized rules, not by the Pydantic fallback.
    assert total.python_rows < total.rows * 0.5
    TOTALS[(model.__name__, "ndjson" if typed else "csv")] = total
    print(f"{model.__name__} {'ndjson' if typed else 'csv'}: {total}")
