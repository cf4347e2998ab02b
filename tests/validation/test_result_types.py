"""Values made by Python (a validator's result, a default, a factory's, a model validator's
assignment) that their column cannot hold as they are: an invalid row with
``value_storage_type``, never a rounded, cut or reinterpreted value, never a crash.

The expectations are the README's column rules, written out here as a table: which value
types each column holds (an int column ints, a float column floats and the ints it holds
exactly, a date column dates but not datetimes...). Every value type is tried against
every column type, one row at a time and all in one batch (a batch mixing ints and floats
once made Polars raise).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

import engine

VALUES: list[Any] = [
    0.5,
    4.0,
    7,
    True,
    Decimal("1.25"),
    Decimal("NaN"),
    dt.date(2024, 1, 1),
    dt.datetime(2024, 1, 1, 12),
    dt.time(1, 2),
    "x",
    uuid.UUID(int=7),
    b"ab",
]
# Field type -> (its column, the indexes of VALUES it holds, and what it stores for them).
COLUMNS: dict[str, tuple[Any, str, dict[int, Any]]] = {
    "int": (int, "DECIMAL(38,0)", {2: 7}),
    "float": (float, "DOUBLE", {0: 0.5, 1: 4.0, 2: 7.0}),
    "str": (str, "VARCHAR", {9: "x", 10: str(uuid.UUID(int=7))}),  # a UUID as its text
    "bool": (bool, "BOOLEAN", {3: True}),
    "dec": (
        Annotated[Decimal, Field(decimal_places=2)],
        "DECIMAL(38,2)",
        {2: Decimal("7.00"), 4: Decimal("1.25")},
    ),
    "date": (dt.date, "DATE", {6: dt.date(2024, 1, 1)}),
    "datetime": (dt.datetime, "TIMESTAMP", {7: dt.datetime(2024, 1, 1, 12)}),
    "time": (dt.time, "TIME", {8: dt.time(1, 2)}),
}


def returning(kind: str) -> type[BaseModel]:
    """A model whose field ``x`` of type ``kind`` is set by its validator to VALUES[k]."""

    def pick(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
        return VALUES[info.data["k"]]

    model: type[BaseModel] = create_model(
        f"Returns_{kind}",
        k=(int, ...),
        x=(COLUMNS[kind][0] | None, None),
        __validators__={"pick": field_validator("x")(classmethod(pick))},  # type: ignore[dict-item]
    )
    return model


def expected(kind: str, index: int) -> list[tuple[str, str]] | Any:
    """The error list (type, msg) of the row whose validator returns VALUES[index], or the
    value stored when the column holds it."""
    _, column, holds = COLUMNS[kind]
    if index in holds:
        return holds[index]
    if kind in ("int", "dec") and isinstance(VALUES[index], Decimal):  # DECIMAL columns
        message = f"Valid decimal, but it does not fit the {column} column it is stored in"
        return [("decimal_storage_overflow", message)]
    name = type(VALUES[index]).__name__
    return [
        ("value_storage_type", f"Valid, but a {name} value cannot be stored in the {column} column")
    ]


def outcomes(model: type[BaseModel], rows: list[dict[str, Any]]) -> dict[int, Any]:
    """Per row's ``k``: its error list (type, msg), or the value stored for ``x``."""
    found = engine.validate(rows, model)
    out: dict[int, Any] = {}
    for error_row in found.invalid.to_dicts():
        k = rows[error_row["row_number"] - 1]["k"]
        out[k] = [(e["type"], e["msg"]) for e in error_row["errors"]]
    valid_keys = found.valid.get_column("k").to_list()
    for k, value in zip(valid_keys, found.valid.get_column("x").to_list(), strict=True):
        out[int(k)] = value
    return out


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_a_validators_result_the_column_cannot_hold_is_value_storage_type(kind: str) -> None:
    model = returning(kind)
    rows: list[dict[str, Any]] = [{"k": k, "x": None} for k in range(len(VALUES))]
    want = {k: expected(kind, k) for k in range(len(VALUES))}
    assert outcomes(model, rows) == want  # all in one batch
    for k in range(len(VALUES)):  # and each row alone
        assert outcomes(model, [rows[k]]) == {k: want[k]}
    # Pydantic itself accepts every one of those rows.
    for row in rows:
        validated: Any = model.model_validate(row)
        assert validated.x is VALUES[row["k"]]


class Defaults(BaseModel):
    k: int
    ratio: int = 0.5  # type: ignore[assignment]
    day: dt.date = dt.datetime(2024, 1, 1, 12)
    at: dt.time = dt.date(2024, 1, 1)  # type: ignore[assignment]
    score: float = Decimal("NaN")  # type: ignore[assignment]
    made: dt.date = Field(default_factory=lambda: 3)  # type: ignore[assignment]
    whole: float = 3


def test_defaults_and_factories_the_column_cannot_hold_are_value_storage_type() -> None:
    found = engine.validate([{"k": 1}], Defaults)
    assert found.valid_rows == 0
    (errors,) = found.invalid.get_column("errors").to_list()
    assert [(e["type"], e["loc"], e["msg"]) for e in errors] == [
        (
            "value_storage_type",
            [name],
            f"Valid, but a {kind} value cannot be stored in the {column} column",
        )
        for name, kind, column in (
            ("ratio", "float", "DECIMAL(38,0)"),
            ("day", "datetime", "DATE"),
            ("at", "date", "TIME"),
            ("score", "Decimal", "DOUBLE"),
            ("made", "int", "DATE"),
        )
    ]


class AfterModel(BaseModel):
    k: int
    day: dt.date | None = None

    @model_validator(mode="after")
    def stamp(self) -> AfterModel:
        self.day = dt.datetime(2024, 1, 1, 12) if self.k else dt.date(2024, 1, 2)
        return self


def test_a_model_validators_assignment_the_column_cannot_hold_is_value_storage_type() -> None:
    found = engine.validate([{"k": 0}, {"k": 1}], AfterModel)
    assert found.valid.to_dicts() == [{"k": 0, "day": dt.date(2024, 1, 2)}]
    assert [
        (r["row_number"], [(e["type"], e["loc"], e["msg"]) for e in r["errors"]])
        for r in found.invalid.to_dicts()
    ] == [
        (
            2,
            [
                (
                    "value_storage_type",
                    ["day"],
                    "Valid, but a datetime value cannot be stored in the DATE column",
                )
            ],
        )
    ]


def test_a_float_column_takes_the_ints_it_holds_exactly() -> None:
    class Whole(BaseModel):
        k: int
        x: float = 0.0

        @field_validator("x")
        @classmethod
        def big(cls, value: float, info: ValidationInfo) -> Any:
            return [3, 2**53, 2**53 + 1][info.data["k"]]

    found = engine.validate([{"k": k, "x": 1.0} for k in range(3)], Whole)
    assert found.valid.get_column("x").to_list() == [3.0, float(2**53)]
    (errors,) = found.invalid.get_column("errors").to_list()
    assert [(e["type"], e["msg"]) for e in errors] == [
        ("value_storage_type", "Valid, but a int value cannot be stored in the DOUBLE column")
    ]
