"""Frames (Parquet, Arrow, DataFrames) holding columns a model that forbids extras does not read.

Before 2026-12-06 every row of such a frame went to Pydantic one at a time (its ``__keys``
held a key the model does not read): an orders Parquet file of 200,000 valid rows and 10
extra columns took 40 s and 2.0 GB (an independent attack), where the same rows as CSV took
4.4 s. A frame's columns are the same for every row, as a CSV header is, so the rules decide
them: an ``extra_forbidden`` error per extra column, in column order, after the field errors,
its input as Pydantic's error gives it. Checked against ``Order.model_validate(row)`` error
by error, text for text.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel, ValidationError

import engine
from engine.validation.fallback import json_input
from schemas.orders import Order
from schemas.transactions import Transaction

EXTRA = ("extra_forbidden", "Extra inputs are not permitted")


def pydantic_errors(model: type[BaseModel], row: dict[str, Any]) -> list[tuple[Any, ...]] | None:
    """``model_validate(row)``'s errors as (type, loc, msg, input as JSON text); None: valid."""
    try:
        model.model_validate(row)
    except ValidationError as exc:
        return [
            (e["type"], [str(p) for p in e["loc"]], e["msg"], json_input(e["input"]))
            for e in exc.errors(include_url=False)
        ]
    return None


def engine_errors(result: engine.Validation) -> dict[int, list[tuple[Any, ...]]]:
    return {
        row["row_number"]: [(e["type"], e["loc"], e["msg"], e["input"]) for e in row["errors"]]
        for row in result.invalid.iter_rows(named=True)
    }


def orders_frame() -> pl.DataFrame:
    """Rows invalid in several fields, extra columns of several types between the fields,
    and ``order_id`` beside ``Order ID`` (the field takes its alias: the name is extra)."""
    return pl.DataFrame(
        {
            "Order ID": ["ORD-1", "x", None, "ORD-4"],
            "note": ["a", None, 'q"\u001f', "é"],
            "customer": ["c", "", "c", "d"],
            "quantity": [1, 0, 2, 3],
            "flt": [1e-7, 1.5, None, 1e20],
            "unit_price": ["1.50", "1.50", "x", "2"],
            "day": [date(2024, 1, 2), None, date(99, 1, 1), date(2024, 1, 2)],
            "ordered_at": ["2024-01-01T00:00:00Z"] * 4,
            "dec": [Decimal("0.0000001"), None, Decimal("1.5"), Decimal(2)],
            "order_id": ["ORD-9", None, None, "ORD-4"],
            "n": [1, None, -(2**40), 0],
        },
        schema_overrides={"dec": pl.Decimal(12, 7)},
    )


def test_extra_columns_are_decided_by_the_rules_as_pydantic_decides_them() -> None:
    frame = orders_frame()
    result = engine.validate(frame, Order)
    assert result.python_rows == 0  # 4 before: every row went to Pydantic
    assert result.valid_rows == 0
    got = engine_errors(result)
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        assert got[number] == pydantic_errors(Order, row), number
    extras = [(e[1][0], e[3]) for e in got[1]]
    assert extras == [
        ("note", '"a"'),
        ("flt", "1e-07"),
        ("day", '"2024-01-02"'),
        ("dec", '"1E-7"'),
        ("order_id", '"ORD-9"'),
        ("n", "1"),
    ]
    assert [e[0] for e in got[2]] == [
        "string_pattern_mismatch",
        "string_too_short",
        "greater_than_equal",
        *[EXTRA[0]] * 6,
    ]
    assert got[3][:2] == [
        ("string_type", ["Order ID"], "Input should be a valid string", "null"),
        ("decimal_parsing", ["unit_price"], "Input should be a valid decimal", '"x"'),
    ]
    assert got[3][2] == ("extra_forbidden", ["note"], EXTRA[1], '"q\\"\\u001f"')


def test_a_frame_without_extra_columns_keeps_its_valid_rows() -> None:
    frame = orders_frame().select("Order ID", "customer", "quantity", "unit_price", "ordered_at")
    result = engine.validate(frame[[0, 3]], Order)
    assert (result.valid_rows, result.invalid_rows, result.python_rows) == (2, 0, 0)
    assert result.valid["order_id"].to_list() == ["ORD-1", "ORD-4"]
    assert result.valid["ordered_at"].to_list() == [datetime(2024, 1, 1)] * 2  # UTC, naive


def test_a_parquet_run_stores_pydantics_errors_without_pydantic(tmp_path: Path) -> None:
    path, db = tmp_path / "orders.parquet", tmp_path / "x.duckdb"
    orders_frame().write_parquet(path)
    summary = engine.ingest(path, db=db, schema=Order)
    tally = summary.tally
    assert (tally.rows, tally.invalid, tally.python_rows) == (4, 4, 0)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT rows_python FROM ingestion_runs").fetchall() == [(0,)]
        stored = con.sql("SELECT row_number, errors FROM ingestion_errors ORDER BY 1").fetchall()
    rows = list(orders_frame().iter_rows(named=True))
    for number, errors in stored:
        found = [(e["type"], e["loc"], e["msg"], e["input"]) for e in errors]
        assert found == pydantic_errors(Order, rows[number - 1]), number


def test_a_missing_fields_input_writes_floats_as_python_does() -> None:
    """The whole row is a missing field's input: its floats as ``repr`` writes them
    (Polars wrote ``1e-7`` and ``0.00001``)."""
    frame = pl.DataFrame({"external_id": ["T1", "T2"], "amount": [1e-7, 2e-5]})
    result = engine.validate(frame, Transaction)
    assert result.python_rows == 0
    got = engine_errors(result)
    assert got[1] == [
        ("missing", ["source_channel"], "Field required", '{"external_id":"T1","amount":1e-07}')
    ]
    assert json.loads(got[2][0][3]) == {"external_id": "T2", "amount": 2e-05}
    assert got[2][0][3] == '{"external_id":"T2","amount":2e-05}'
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        assert got[number] == pydantic_errors(Transaction, row)
