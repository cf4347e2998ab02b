"""Helpers computed once per distinct input (engine.validation.distinct) give Pydantic's
verdicts and exact error lists (type, loc, msg, input, in order) on columns that mix heavily
repeated values with unique ones, and only columns that repeat take that path."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from engine.columns import ERRORS, ROW
from engine.sources.csv import CsvSource
from engine.validation.compiler import compile_schema
from engine.validation.decimals import fast_pattern
from engine.validation.distinct import by_distinct, repeats
from engine.validation.validate import BatchValidator


class Parcel(BaseModel):
    count: int = Field(ge=1, le=50)
    day: date = Field(ge=date(2020, 1, 1))
    value: Decimal = Field(max_digits=6, decimal_places=2, ge=0)
    moment: datetime
    ident: UUID
    weight: float = Field(gt=0)
    service: Literal["standard", "express"] = "standard"
    flag: bool = False


# Per column: texts Pydantic accepts, refuses, or words specially (lax forms, bounds, junk).
TEXTS: dict[str, list[str]] = {
    "count": ["1", "50", "51", "0", " 7", "2.0", "2.5", "1_0", "x", "-1", "+3", ""],
    "day": ["2024-02-29", "2023-02-29", "2019-12-31", "2024-1-1", "20240101", "soon", ""],
    "value": ["12.34", "1234.5", "12345", "0.001", "-1", "1e3", "nan", " 5 ", "1_0", ".5", ""],
    "moment": [
        "2024-03-01T10:00:00",
        "2024-03-01T10:00:00Z",
        "2024-03-01T10:00:00+02:00",
        "2024-03-01 10:00",
        "2024-13-01T00:00:00",
        "1700000000",
        "then",
        "",
    ],
    "ident": [
        "12345678-1234-5678-1234-567812345678",
        "ABCDEF00123445678234567812345678",
        "{12345678-1234-5678-1234-567812345678}",
        "1234",
        "",
    ],
    "weight": ["1.5", "0", "-2", "inf", "nan", "1e3", " 2 ", "heavy", ""],
    "service": ["standard", "express", "Express", ""],
    "flag": ["true", "no", "1", "maybe", ""],
}
COLUMNS = list(TEXTS)


def _pydantic_errors(row: dict[str, str]) -> list[tuple[str, tuple[Any, ...], str, Any]] | None:
    try:
        Parcel.model_validate({k: v for k, v in row.items() if v != ""})
    except ValidationError as exc:
        return [(e["type"], e["loc"], e["msg"], e["input"]) for e in exc.errors()]
    return None


def _engine(path: Path) -> tuple[set[int], dict[int, list[tuple[str, tuple[Any, ...], str, Any]]]]:
    source = CsvSource(path, block_size=1 << 20, max_record_bytes=1 << 20)
    batches = list(source.batches())  # the header is read with the first batch
    validator = BatchValidator(compile_schema(Parcel, typed=False), source.keys)
    valid: set[int] = set()
    errors: dict[int, list[tuple[str, tuple[Any, ...], str, Any]]] = {}
    for batch in batches:
        result = validator.validate(batch, datetime(2026, 1, 1, tzinfo=UTC))
        valid |= set(result.valid.get_column(ROW).to_list())
        for row in result.invalid.iter_rows(named=True):
            errors[row[ROW]] = [
                (e["type"], tuple(e["loc"]), e["msg"], json.loads(e["input"])) for e in row[ERRORS]
            ]
    return valid, errors


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pools=st.fixed_dictionaries(
        {c: st.lists(st.sampled_from(t), min_size=1, max_size=6) for c, t in TEXTS.items()}
    ),
    unique_share=st.sampled_from([0.0, 0.05, 0.2]),
    seed=st.integers(0, 2**32 - 1),
)
def test_repeated_columns_agree_with_pydantic(
    tmp_path_factory: pytest.TempPathFactory,
    pools: dict[str, list[str]],
    unique_share: float,
    seed: int,
) -> None:
    rng = random.Random(seed)

    def cell(column: str, number: int) -> str:
        if rng.random() < unique_share:  # a value seen once: the pool's form, made unique
            return {
                "count": str(number % 60),
                "day": f"2024-01-{number % 40:02d}",
                "value": f"{number}.{number % 1000}",
                "moment": f"2024-03-01T10:{number % 70:02d}:00",
                "ident": f"{number:08d}-1234-5678-1234-567812345678",
                "weight": f"{number / 7:.3f}",
                "service": f"s{number}",
                "flag": f"f{number}",
            }[column]
        return rng.choice(pools[column])

    rows = [{c: cell(c, n) for c in COLUMNS} for n in range(300)]
    path = tmp_path_factory.mktemp("distinct") / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    frame = pl.DataFrame(rows)
    if unique_share == 0.0:  # every column repeats: the helpers take the distinct path
        assert all(repeats(frame, [c]) for c in COLUMNS)
    valid, errors = _engine(path)
    for number, row in enumerate(rows, start=1):
        expected = _pydantic_errors(row)
        assert (number in valid) == (expected is None), (row, errors.get(number))
        if expected is not None:
            assert errors[number] == expected, row


def test_unique_columns_do_not_take_the_distinct_path() -> None:
    frame = pl.DataFrame({"a": [f"v{i}" for i in range(10_000)]})
    assert not repeats(frame, ["a"])
    # A few values each seen often and the rest unique (dirty exports): still not worth it.
    rng = random.Random(12)
    skewed = [
        f"v{i}" if rng.random() < 0.75 else rng.choice(["bad", "", "x"]) for i in range(10_000)
    ]
    assert not repeats(pl.DataFrame({"a": skewed}), ["a"])
    codes = pl.DataFrame({"a": [f"c{rng.randrange(500)}" for _ in range(10_000)]})
    assert repeats(codes, ["a"])
    dates = pl.DataFrame({"a": [f"d{rng.randrange(3_000)}" for _ in range(100_000)]})
    assert repeats(dates, ["a"])


def test_floats_never_take_the_distinct_path() -> None:
    # -0.0 == 0.0: equal values are not always the same input.
    frame = pl.DataFrame({"a": [0.0, -0.0] * 100})
    assert not repeats(frame, ["a"])


def test_values_are_gathered_back_to_their_rows() -> None:
    frame = pl.DataFrame({"a": ["x", None, "y", "x", None, "y", "z"], "b": [1, 1, 2, 1, 1, 2, 3]})
    seen: list[int] = []

    def compute(distinct: pl.DataFrame) -> pl.DataFrame:
        seen.append(distinct.height)
        return distinct.with_columns(
            (pl.col("a").fill_null("-") + pl.col("b").cast(pl.String)).alias("ab")
        )

    (column,) = by_distinct(frame, ["a", "b"], compute, ["ab"]) or []
    assert seen == [4]
    assert column.to_list() == ["x1", "-1", "y2", "x1", "-1", "y2", "z3"]


@given(
    text=st.text(alphabet="0123456789.+- e", max_size=9),
    max_digits=st.one_of(st.none(), st.integers(1, 8)),
    places=st.one_of(st.none(), st.integers(0, 4)),
)
def test_the_decimal_fast_form_never_breaks_a_digit_limit(
    text: str, max_digits: int | None, places: int | None
) -> None:
    """A text the fast regex takes is a plain decimal that Pydantic accepts under both limits
    (its digit counts are then never computed)."""
    pattern = fast_pattern(max_digits, places)
    if pattern is None:
        return
    fast = pl.Series([text]).str.contains(pattern).item()
    if max_digits is not None and places is None:
        fast = fast and len(text) <= max_digits
    if not fast:
        return

    class Limited(BaseModel):
        x: Decimal = Field(max_digits=max_digits, decimal_places=places)

    assert Limited.model_validate({"x": text}).x == Decimal(text)
