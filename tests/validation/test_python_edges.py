"""What models' own Python code may do, as ``model_validate(row)`` takes it: a context that
is None when none is given, a ``default_factory`` that reads the row, a bound given as a
``Decimal`` on a float, and after-validators that forget ``return self`` or omit a field
(a row of its own, never a stopped run). Each was a traceback or a different verdict
(found by an independent parity attack); each runs here through a file run and
``engine.validate``, against Pydantic."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticOmit

import engine


def stored(tmp_path: Path, text: str, model: type[BaseModel]) -> tuple[list[Any], list[Any]]:
    """(valid rows, (row, type, msg) of the errors) of a CSV file run."""
    tmp_path.mkdir(exist_ok=True)
    path, db = tmp_path / "in.csv", tmp_path / "db.duckdb"
    path.write_text(text)
    engine.ingest(path, db=db, schema=model)
    con = duckdb.connect(str(db), read_only=True)
    try:
        ((name,),) = con.sql("SELECT target_table FROM ingestion_runs").fetchall()
        valid = con.sql(f'SELECT * EXCLUDE (run_id) FROM "{name}" ORDER BY row_number')
        errors = con.sql("SELECT row_number, type, msg FROM error_details ORDER BY row_number")
        return valid.fetchall(), errors.fetchall()
    finally:
        con.close()


class Allowed(BaseModel):
    currency: str

    @field_validator("currency")
    @classmethod
    def check(cls, value: str, info: ValidationInfo) -> str:
        if info.context is not None and value not in info.context.get("allowed", "USD"):
            raise ValueError(f"{value} is not allowed")
        return value


def test_without_a_context_validators_see_none(tmp_path: Path) -> None:
    assert Allowed.model_validate({"currency": "EUR"}).currency == "EUR"
    assert stored(tmp_path, "currency\nUSD\nEUR\n", Allowed) == ([(1, "USD"), (2, "EUR")], [])
    assert engine.validate([{"currency": "EUR"}], Allowed).valid_rows == 1
    given = engine.validate([{"currency": "EUR"}], Allowed, context={"allowed": "USD"})
    assert [e["msg"] for e in given.invalid["errors"][0]] == ["Value error, EUR is not allowed"]


class Doubled(BaseModel):
    a: int
    b: int = Field(default_factory=lambda data: data["a"] * 2)


def test_a_default_factory_that_reads_the_row(tmp_path: Path) -> None:
    assert stored(tmp_path, "a,b\n1,\n2,\n3,7\n", Doubled) == (
        [(1, 1, 2), (2, 2, 4), (3, 3, 7)],
        [],
    )
    found = engine.validate([{"a": 5}, {"a": 1, "b": 0}], Doubled)
    assert found.valid.rows() == [(5, 10), (1, 0)]


class DecimalBound(BaseModel):
    a: float = Field(gt=Decimal("1.1"))


def test_a_decimal_bound_on_a_float(tmp_path: Path) -> None:
    assert stored(tmp_path, "a\n1.2\n1.1\n", DecimalBound) == (
        [(1, 1.2)],
        [(2, "greater_than", "Input should be greater than 1.1")],
    )


class Forgetful(BaseModel):
    a: int

    @model_validator(mode="after")
    def check(self) -> Any:
        if self.a == 1:
            return None  # forgot ``return self``
        if self.a == 2:
            return Forgetful.model_construct(a=99)
        return self


class Omitting(BaseModel):
    a: int = 7

    @field_validator("a")
    @classmethod
    def omit(cls, value: int) -> int:
        if value == 8:
            raise PydanticOmit
        return value


def test_an_after_validator_returning_no_model_or_omitting_a_field(tmp_path: Path) -> None:
    assert Forgetful.model_validate({"a": "1"}) is None
    assert stored(tmp_path / "f", "a\n1\n2\n3\n", Forgetful) == (
        [(2, 99), (3, 3)],
        [(1, "validation_exception", "Validation returned NoneType, not a Forgetful")],
    )
    assert stored(tmp_path / "o", "a\n8\n9\n", Omitting) == (
        [(2, 9)],
        [(1, "validation_exception", "Validation left no value for field 'a'")],
    )


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


class Text(BaseModel):
    k: int
    s: str = ""


def test_values_nested_deeper_than_the_stack_or_circular() -> None:
    """Rows Python's json cannot write (nested past the recursion limit, or circular) are
    judged by Pydantic on the row itself; their lineage says why it holds nothing else."""
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for value in (nested(100), nested(3_000), circular):
        found = engine.validate([{"k": 1, "s": value}], Text)
        (errors,) = found.invalid["errors"].to_list()
        assert [(e["type"], e["loc"]) for e in errors] == [("string_type", ["s"])]
    found = engine.validate([{"k": 1, "s": circular}, {"k": 1, "s": nested(3_000)}], Text)
    assert found.invalid["raw"].to_list() == [
        '{"__unwritable__":"a dict nested too deeply (or circular) to write as JSON"}',
        '{"__unwritable__":"a dict nested too deeply (or circular) to write as JSON"}',
    ]
    # The error's input says the same of the value itself.
    inputs = [e[0]["input"] for e in found.invalid["errors"].to_list()]
    assert inputs == [
        '"<a dict nested too deeply (or circular) to write as JSON>"',
        '"<a list nested too deeply (or circular) to write as JSON>"',
    ]


def test_a_file_of_deeply_nested_values_is_read_to_the_end(tmp_path: Path) -> None:
    """Depths around the interpreter's recursion limit: each line is one invalid row (Pydantic's
    string_type, or json_invalid where Python's json itself gives up), never a stopped run."""
    path, db = tmp_path / "deep.ndjson", tmp_path / "db.duckdb"
    depths = range(480, 1_200, 7)
    path.write_text("".join(f'{{"k": 1, "s": {"[" * d}1{"]" * d}}}\n' for d in depths))
    engine.ingest(path, db=db, schema=Text)
    con = duckdb.connect(str(db), read_only=True)
    try:
        types = con.sql("SELECT DISTINCT type FROM error_details ORDER BY 1").fetchall()
        counts = con.sql("SELECT rows_total, rows_invalid FROM ingestion_runs").fetchall()
    finally:
        con.close()
    assert set(types) <= {("json_invalid",), ("string_type",)}
    assert counts == [(len(depths), len(depths))]


class Count(BaseModel):
    n: int


def test_error_inputs_of_python_objects_are_written_as_pydantic_writes_them() -> None:
    import json
    import uuid

    from pydantic import ValidationError

    rows = [{"n": uuid.UUID(int=5)}, {"n": bytearray(b"ab")}, {"n": {1, 2}}]
    found = engine.validate(rows, Count)
    for row, errors in zip(rows, found.invalid["errors"].to_list(), strict=True):
        try:
            Count.model_validate(row)
        except ValidationError as exc:
            (want,) = json.loads(exc.json())
        assert [(e["type"], json.loads(e["input"])) for e in errors] == [
            (want["type"], want["input"])
        ]


def test_a_date_bound_on_a_datetime_is_its_midnight() -> None:
    import datetime as dt

    class Stamped(BaseModel):
        a: dt.datetime = Field(gt=dt.date(2020, 1, 1), le=dt.date(2030, 1, 1))

    values = [
        "2019-01-01T00:00",
        "2020-01-01T00:00",
        "2020-01-01T00:00:01",
        "2020-01-01T00:00:00+01:00",
        "2030-01-01T00:00:00",
        "2030-01-01T00:00:01Z",
    ]
    found = engine.validate([{"a": v} for v in values], Stamped)
    got = {
        r["row_number"]: [(e["type"], e["msg"]) for e in r["errors"]]
        for r in found.invalid.to_dicts()
    }
    for number, value in enumerate(values, start=1):
        try:
            Stamped.model_validate({"a": value})
            want = None
        except ValidationError as exc:
            want = [(e["type"], e["msg"]) for e in exc.errors()]
        assert got.get(number) == want
    assert sorted(got) == [1, 2, 4, 6]
