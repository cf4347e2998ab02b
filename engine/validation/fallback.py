"""Pydantic itself, for the rows the vectorized rules cannot decide.

Those are rows reaching a Python validator with no vectorized twin, or values in forms the
compiler leaves to Pydantic (e.g. unusual datetime strings). Each such row is validated with
``model_validate`` exactly as a user would, and the result is turned back into typed columns
or violations (``engine.validation.error_list``), so downstream code cannot tell which path a
row took. An error that is one of the validator's rules word for word is stored as that rule's
code; any other (speedate's messages, a custom validator's) is given whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import polars as pl
from pydantic import ValidationError

from engine.columns import RAW, ROW
from engine.sources.json_values import SURROGATE, escape_surrogates
from engine.validation.compiler import CompiledSchema
from engine.validation.error_list import (
    INPUT,
    LOC,
    MSG,
    RULE,
    SEQ,
    TYPE,
    VIOLATION_SCHEMA,
    RuleText,
)


def python_input(row: dict[str, Any], keys: Sequence[str], typed: bool) -> Any:
    """What ``model_validate`` gets for a row: the parsed JSON, or the non-empty CSV cells."""
    if typed:
        return json.loads(row[RAW])
    return {key: row[key] for key in keys if row.get(key) is not None}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return repr(value)


def json_input(value: Any) -> str:
    """An error's input as JSON text, the way Python's json writes it (NaN, Infinity), with
    lone surrogates escaped (a UTF-8 column cannot hold them)."""
    text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    return escape_surrogates(text)


def utc_time(value: time) -> time:
    """A time with an offset as UTC wall time (DuckDB TIME has no offset)."""
    offset = value.utcoffset() or timedelta(0)
    moment = datetime.combine(date(2000, 1, 3), value.replace(tzinfo=None)) - offset
    return moment.time()


# Valid per Pydantic, but not storable as it is: (error type, message) per problem. These are
# the engine's documented storage-range errors (README, "Known, deliberate differences").
STORAGE_ERRORS = {
    "int_storage_overflow": "Valid integer, but too large for the {column} column it is stored in",
    "datetime_storage_overflow": (
        "Valid datetime, but in UTC it falls outside years 1-9999, "
        "which the {column} column it is stored in cannot give back"
    ),
    "string_storage_surrogate": (
        "Valid string, but it holds a lone surrogate, which the {column} column "
        "(UTF-8) cannot store"
    ),
}


class Unstorable(Exception):
    def __init__(self, error_type: str) -> None:
        self.error_type = error_type
        super().__init__(error_type)


def storable(value: Any, dtype: pl.DataType) -> Any:
    """The value as its column holds it, or :class:`Unstorable` saying why it cannot be."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if isinstance(dtype, pl.Decimal) and abs(value) >= 10 ** (dtype.precision or 38):
            raise Unstorable("int_storage_overflow")
        if dtype == pl.Int64() and not -(2**63) <= value < 2**63:
            raise Unstorable("int_storage_overflow")
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise Unstorable("datetime_storage_overflow") from None
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            value = value.replace(tzinfo=None)
        return value
    if isinstance(value, time) and value.tzinfo is not None:
        return utc_time(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str) and SURROGATE.search(value):
        raise Unstorable("string_storage_surrogate")
    return value


def _storage_error(key: str, error_type: str, value: Any, sql_type: str) -> dict[str, Any]:
    return {
        "type": error_type,
        "loc": [key],
        "msg": STORAGE_ERRORS[error_type].format(column=sql_type),
        "input": json_input(value),
    }


def run_pydantic(
    schema: CompiledSchema,
    rows: pl.DataFrame,
    keys: Sequence[str],
    codes: Mapping[RuleText, int] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid typed rows, violations of the invalid ones) for rows that need Pydantic; an
    error found in ``codes`` (the validator's rules) is stored by its code."""
    codes = codes or {}
    valid_rows: list[int] = []
    values: dict[str, list[Any]] = {p.name: [] for p in schema.fields}
    flat: dict[str, list[Any]] = {key: [] for key in VIOLATION_SCHEMA}

    def add(row_number: int, problems: list[dict[str, Any]]) -> None:
        for seq, problem in enumerate(problems):
            text = RuleText(problem["type"], tuple(problem["loc"]), problem["msg"])
            code = codes.get(text)
            flat[ROW].append(row_number)
            flat[SEQ].append(seq)
            flat[RULE].append(code)
            flat[INPUT].append(problem["input"])
            coded = code is not None
            flat[TYPE].append(None if coded else text.type)
            flat[LOC].append(None if coded else list(text.loc))
            flat[MSG].append(None if coded else text.msg)

    context = dict(schema.context)
    for row in rows.iter_rows(named=True):
        data = python_input(row, keys, schema.typed)
        try:
            model = schema.model.model_validate(data, context=context)
        except ValidationError as exc:
            problems = [
                {
                    "type": e["type"],
                    "loc": [escape_surrogates(str(part)) for part in e["loc"]],
                    "msg": escape_surrogates(e["msg"]),
                    "input": json_input(e["input"]),
                }
                for e in exc.errors(include_url=False)
            ]
            add(row[ROW], problems)
            continue
        stored: dict[str, Any] = {}
        unstorable = []
        for program in schema.fields:
            try:
                stored[program.name] = storable(getattr(model, program.name), program.dtype)
            except Unstorable as problem:
                # Like Pydantic's own errors: located by the key used, with the input as given.
                key = next((k for k in program.keys if k in data), program.loc_name)
                loc = key if program.loc_by_alias else program.name
                given = data.get(key) if isinstance(data, dict) else None
                unstorable.append(_storage_error(loc, problem.error_type, given, program.sql_type))
        if unstorable:
            add(row[ROW], unstorable)
            continue
        valid_rows.append(row[ROW])
        for program in schema.fields:
            values[program.name].append(stored[program.name])
    valid = pl.DataFrame(
        {ROW: pl.Series(valid_rows, dtype=pl.Int64)}
        | {p.name: pl.Series(values[p.name], dtype=p.dtype, strict=False) for p in schema.fields}
    )
    violations = pl.DataFrame(
        {name: pl.Series(flat[name], dtype=dtype) for name, dtype in VIOLATION_SCHEMA.items()}
    )
    return valid, violations
