"""Pydantic itself, for the rows the vectorized rules cannot decide.

Those are rows reaching a Python validator with no vectorized twin, or values in forms the
compiler leaves to Pydantic (e.g. unusual datetime strings). Each such row is validated with
``model_validate`` exactly as a user would, and the result is turned back into typed columns
or violations (``engine.validation.error_list``), so downstream code cannot tell which path a
row took. An error that is one of the validator's rules word for word is stored as that rule's
code; any other (speedate's messages, a custom validator's, the storage errors) is given whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import polars as pl
from polars._typing import PolarsDataType
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from engine.columns import RAW, ROW
from engine.sources.json_forms import unwritable
from engine.sources.json_values import escape_surrogates
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
from engine.validation.rules import FieldProgram
from engine.validation.storable import Unstorable, column_values, storable, utc_time

__all__ = ["json_input", "python_input", "run_pydantic", "utc_time"]


def python_input(row: dict[str, Any], keys: Sequence[str], typed: bool) -> Any:
    """What ``model_validate`` gets for a row: the parsed JSON, or the non-empty CSV cells."""
    if typed:
        return json.loads(row[RAW])
    return {key: row[key] for key in keys if row.get(key) is not None}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return to_jsonable_python(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    try:  # what Pydantic's own ValidationError.json() writes (a UUID's text, a set's list)
        return to_jsonable_python(value)
    except Exception:  # an arbitrary object: its repr
        return repr(value)


def json_input(value: Any) -> str:
    """An error's input as JSON text, the way Python's json writes it (NaN, Infinity), with
    lone surrogates escaped (a UTF-8 column cannot hold them)."""
    try:
        text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    except (RecursionError, ValueError):  # nested deeper than the stack, or circular
        text = json.dumps(f"<{unwritable(value)}>")
    return escape_surrogates(text)


def _storage_error(key: str, problem: Unstorable, value: Any, sql_type: str) -> dict[str, Any]:
    return {
        "type": problem.error_type,
        "loc": [key],
        "msg": problem.message(sql_type),
        "input": json_input(value),
    }


def _raised(exc: Exception, data: Any) -> dict[str, Any]:
    """Pydantic itself failed on the row with an exception other than a ValidationError (a
    constraint it could not apply, a validator's bug): the row is invalid, and says why."""
    return _unstored(f"raised {type(exc).__name__}: {exc}", data)


def _unstored(what: str, data: Any) -> dict[str, Any]:
    """A row Pydantic did not give a model to store (``what`` it did instead)."""
    return {
        "type": "validation_exception",
        "loc": [],
        "msg": escape_surrogates(f"Validation {what}"),
        "input": json_input(data),
    }


def run_pydantic(
    schema: CompiledSchema,
    rows: pl.DataFrame,
    keys: Sequence[str],
    inputs: Callable[[int], Any] | None = None,
    codes: Mapping[RuleText, int] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid typed rows, violations of the invalid ones) for rows that need Pydantic; an
    error found in ``codes`` (the validator's rules) is stored by its code; ``inputs`` gives
    a row's own data by row number when it is held in memory (see RawBatch)."""
    candidates: list[tuple[int, str, Any, dict[str, Any]]] = []
    problems: dict[int, tuple[str, list[dict[str, Any]]]] = {}
    # No context given: None, as ``model_validate(row)`` gives its validators.
    context = dict(schema.context) or None
    for row in rows.iter_rows(named=True):
        data = inputs(row[ROW]) if inputs is not None else python_input(row, keys, schema.typed)
        try:
            model = schema.model.model_validate(data, context=context)
        except ValidationError as exc:
            problems[row[ROW]] = (
                row[RAW],
                [
                    {
                        "type": e["type"],
                        "loc": [escape_surrogates(str(part)) for part in e["loc"]],
                        "msg": escape_surrogates(e["msg"]),
                        "input": json_input(e["input"]),
                    }
                    for e in exc.errors(include_url=False)
                ],
            )
            continue
        except Exception as exc:
            problems[row[ROW]] = (row[RAW], [_raised(exc, data)])
            continue
        if not isinstance(model, schema.model):  # an after model validator's slip
            returned = f"returned {type(model).__name__}, not a {schema.model.__name__}"
            problems[row[ROW]] = (row[RAW], [_unstored(returned, data)])
            continue
        stored: dict[str, Any] = {}
        unstorable = []
        for program in schema.fields:
            if program.name not in model.__dict__:  # omitted (PydanticOmit)
                left = f"left no value for field {program.name!r}"
                problems[row[ROW]] = (row[RAW], [_unstored(left, data)])
                break
            try:
                stored[program.name] = storable(getattr(model, program.name), program.dtype)
            except Unstorable as problem:
                unstorable.append(
                    _storage_error(
                        _loc(program, data), problem, _given(program, data), program.sql_type
                    )
                )
        if row[ROW] in problems:
            continue
        if unstorable:
            problems[row[ROW]] = (row[RAW], unstorable)
        else:
            candidates.append((row[ROW], row[RAW], data, stored))
    valid = _valid_frame(schema, candidates, problems)
    return valid, _violations(problems, codes or {})


def _loc(program: FieldProgram, data: Any) -> str:
    """Like Pydantic's own errors: located by the key used."""
    key = next((k for k in program.keys if isinstance(data, dict) and k in data), program.loc_name)
    return key if program.loc_by_alias else program.name


def _given(program: FieldProgram, data: Any) -> Any:
    """The field's input as given (None when absent: a default)."""
    if not isinstance(data, dict):
        return None
    return next((data[k] for k in program.keys if k in data), None)


def _valid_frame(
    schema: CompiledSchema,
    candidates: list[tuple[int, str, Any, dict[str, Any]]],
    problems: dict[int, tuple[str, list[dict[str, Any]]]],
) -> pl.DataFrame:
    """The valid rows' columns; a value its column cannot hold makes its row invalid."""
    while True:
        columns: dict[str, pl.Series] = {ROW: pl.Series([c[0] for c in candidates], dtype=pl.Int64)}
        bad: int | None = None
        for program in schema.fields:
            values = [c[3][program.name] for c in candidates]
            try:
                columns[program.name] = column_values(values, program.dtype)
            except Unstorable as problem:
                bad = next(i for i, v in enumerate(values) if not _fits_column(v, program.dtype))
                number, raw, data, _ = candidates[bad]
                problems[number] = (
                    raw,
                    [
                        _storage_error(
                            _loc(program, data), problem, _given(program, data), program.sql_type
                        )
                    ],
                )
                break
        if bad is None:
            return pl.DataFrame(columns)
        del candidates[bad]


def _fits_column(value: Any, dtype: PolarsDataType) -> bool:
    try:
        column_values([value], dtype)
    except Unstorable:
        return False
    return True


def _violations(
    problems: dict[int, tuple[str, list[dict[str, Any]]]], codes: Mapping[RuleText, int]
) -> pl.DataFrame:
    """The invalid rows' violations in row order, Pydantic's order within a row: coded where
    the error is one of ``codes`` word for word, given whole otherwise."""
    flat: dict[str, list[Any]] = {key: [] for key in VIOLATION_SCHEMA}
    for number in sorted(problems):
        for seq, problem in enumerate(problems[number][1]):
            text = RuleText(problem["type"], tuple(problem["loc"]), problem["msg"])
            code = codes.get(text)
            coded = code is not None
            flat[ROW].append(number)
            flat[SEQ].append(seq)
            flat[RULE].append(code)
            flat[INPUT].append(problem["input"])
            flat[TYPE].append(None if coded else text.type)
            flat[LOC].append(None if coded else list(text.loc))
            flat[MSG].append(None if coded else text.msg)
    return pl.DataFrame(
        {name: pl.Series(flat[name], dtype=dtype) for name, dtype in VIOLATION_SCHEMA.items()}
    )
