"""Values a vectorized parse leaves open are decided by the leaf's own core schema, once per
distinct value: the same verdict, error type, message and stored value as ``model_validate``,
without sending the row to Pydantic (except where the leaf alone cannot decide it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, create_model

from engine.batch import RawBatch
from engine.columns import ERRORS, LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.validation.compiler import compile_schema
from engine.validation.storable import Unstorable, storable
from engine.validation.validate import BatchValidator


def run(model: type[BaseModel], texts: list[str]) -> tuple[list[tuple[Any, ...]], int]:
    """Per CSV cell of field ``x``: ("ok", stored) or ("error", [(type, msg, input)...]), and
    how many rows went to Pydantic row by row."""
    n = len(texts)
    frame = pl.DataFrame(
        {
            ROW: pl.int_range(1, n + 1, eager=True),
            LINE: pl.int_range(2, n + 2, eager=True),
            RAW: texts,
            MALFORMED: pl.Series([None] * n, dtype=pl.String),
            MALFORMED_MSG: pl.Series([None] * n, dtype=pl.String),
            "x": texts,
        }
    )
    validator = BatchValidator(compile_schema(model, typed=False), ("x",))
    result = validator.validate(RawBatch(frame, ("x",), typed=False), datetime.now(UTC))
    got: dict[int, tuple[Any, ...]] = {}
    for row, value in result.valid.select(ROW, "x").iter_rows():
        got[row] = ("ok", value)
    for row, errors in result.invalid.select(ROW, ERRORS).iter_rows():
        got[row] = ("error", [(e["type"], e["msg"], e["input"]) for e in errors])
    return [got[i] for i in range(1, n + 1)], result.python_rows


def pydantic(model: type[BaseModel], text: str, dtype: pl.DataType) -> tuple[Any, ...]:
    import json

    try:
        value = model.model_validate({"x": text}).x  # type: ignore[attr-defined]
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return ("error", [(e["type"], e["msg"], json.dumps(e["input"])) for e in errors])
    try:
        return ("ok", storable(value, dtype))
    except Unstorable as problem:
        return ("storage", problem.error_type)


DATE = create_model("D", x=(date, Field(ge=date(2020, 1, 1), le=date(2030, 12, 31))))
STAMP = create_model("T", x=(datetime, ...))
ID = create_model("U", x=(UUID, ...))
MONEY = create_model("M", x=(Decimal, Field(max_digits=10, decimal_places=2, ge=0)))


def same_as_pydantic(model: type[BaseModel], texts: list[str]) -> int:
    dtype = compile_schema(model, typed=False).fields[0].dtype
    got, python_rows = run(model, texts)
    for text, outcome in zip(texts, got, strict=True):
        want = pydantic(model, text, dtype)
        if want[0] == "storage":
            assert outcome[0] == "error" and outcome[1][0][0] == want[1], (text, outcome)
        else:
            assert outcome == want, text
    return python_rows


def test_the_dirty_workloads_odd_values_are_decided_without_the_row_fallback() -> None:
    cases = {
        DATE: ["2024-02-30", "soon", "2019-12-31", "2031-01-01", "2024-05-01", "20240501"],
        STAMP: ["2024-13-01T00:00:00", "yesterday", "2024-05-01T25:00:00", "1714521600"],
        ID: ["not-a-uuid", "1234", "g" * 32, "urn:uuid:12345678-1234-5678-1234-567812345678"],
        MONEY: ["1e12", "1e2", "1.5E1", "12.345", "-5.00", "abc", "1_000.50"],
    }
    for model, texts in cases.items():
        assert same_as_pydantic(model, texts * 3) == 0, model.__name__
    got, _ = run(ID, ["not-a-uuid"])
    assert got == [
        (
            "error",
            [
                (
                    "uuid_parsing",
                    "Input should be a valid UUID, invalid character: found `n` at 0",
                    '"not-a-uuid"',
                )
            ],
        )
    ]


def test_a_value_the_column_cannot_hold_still_goes_to_pydantic() -> None:
    """Year 0 in UTC: the leaf accepts it, the column cannot hold it; the row is Pydantic's,
    and a storage error."""
    texts = ["0001-01-01T00:00:00+01:00", "2024-05-01T25:00:00", "0001-01-01T00:00:00+01:00"]
    assert same_as_pydantic(STAMP, texts) == 2


def test_a_zero_with_an_exponent_past_the_column_is_stored_as_zero() -> None:
    """``0e40`` is a valid Decimal (zero); Polars refuses it written that way: it is stored on
    the column's grid, 0.00, not a crash (found by the generated decimal texts below)."""
    texts = ["0e40", "0E+40", "-0e-50", "0.000e3"]
    assert same_as_pydantic(MONEY, texts) == 0
    got, _ = run(MONEY, texts)
    assert got == [("ok", Decimal("0.00"))] * 4


DATETIME_ALPHABET = "0123456789-:T+Z. tz_e"


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(
            st.text(DATETIME_ALPHABET, min_size=1, max_size=30),
            st.datetimes().map(lambda d: d.isoformat()),
            st.datetimes().map(lambda d: d.isoformat().replace("T", " ") + "+05:30"),
            st.builds(  # the fast form, with offsets in and just outside their range
                lambda d, tail: d.strftime("%Y-%m-%dT%H:%M:%S") + tail,
                st.datetimes(),
                st.sampled_from(
                    [
                        "",
                        "Z",
                        "z",
                        "+00:00",
                        "-00:00",
                        "+23:59",
                        "-23:59",
                        "+24:00",
                        "+05:60",
                        "+0530",
                        "-12:30",
                        "+01:00",
                        "Z ",
                    ]
                ),
            ),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_generated_datetime_texts_agree_with_pydantic(texts: list[str]) -> None:
    same_as_pydantic(STAMP, texts)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.text("0123456789.eE+-_ ", min_size=1, max_size=14), min_size=1, max_size=40))
def test_generated_decimal_texts_agree_with_pydantic(texts: list[str]) -> None:
    same_as_pydantic(MONEY, texts)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    key=st.sampled_from(["ge", "gt", "le", "lt", "multiple_of"]),
    bound=st.one_of(
        st.decimals(min_value=-1000, max_value=1000, places=4, allow_nan=False),
        st.floats(min_value=-1000, max_value=1000, allow_nan=False).filter(lambda f: f != 0),
        st.sampled_from(
            [Decimal("0.0"), Decimal("0.50"), Decimal("-1E+2"), Decimal("1E-50"), 1e-45]
        ),
    ),
    texts=st.lists(
        st.decimals(min_value=-2000, max_value=2000, places=3, allow_nan=False).map(str),
        min_size=1,
        max_size=20,
    ),
)
def test_decimal_bounds_of_any_written_form_agree_with_pydantic(
    key: str, bound: Any, texts: list[str]
) -> None:
    """Decimal and float bounds, on or off the column's grid, beyond 38 digits: the verdicts
    and the messages (a bound as Pydantic writes it: ``0.50``, ``-1E+2``) are Pydantic's."""
    if key == "multiple_of" and (isinstance(bound, float) or bound <= Decimal("0.0001")):
        return  # Pydantic refuses multiple_of <= 0; a float one is its own float remainder
    model = create_model("Bounded", x=(Decimal, Field(decimal_places=2, **{key: bound})))
    same_as_pydantic(model, texts)
