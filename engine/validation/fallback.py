"""Pydantic itself, for the rows the vectorized rules cannot decide.

Those are rows reaching a Python validator with no vectorized twin, or values in forms the
compiler leaves to Pydantic (e.g. unusual datetime strings). Each such row is validated with
``model_validate`` exactly as a user would, and the result is turned back into typed columns
or structured errors, so downstream code cannot tell which path a row took.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import polars as pl
from pydantic import ValidationError

from engine.batch import RAW, ROW
from engine.validation.compiler import CompiledSchema
from engine.validation.error_list import ERROR_DTYPE, ERRORS


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
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(str(value))
    return json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _store_value(value: Any, dtype: pl.DataType) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            value = value.replace(tzinfo=None)
    if isinstance(value, time) and value.tzinfo is not None:
        value = utc_time(value)
    if isinstance(value, UUID):
        value = str(value)
    return value


def utc_time(value: time) -> time:
    """A time with an offset as UTC wall time (DuckDB TIME has no offset)."""
    offset = value.utcoffset() or timedelta(0)
    moment = datetime.combine(date(2000, 1, 3), value.replace(tzinfo=None)) - offset
    return moment.time()


def _fits(value: Any, dtype: pl.DataType) -> bool:
    """Python ints are unbounded; the storage column is not."""
    if not isinstance(value, int) or isinstance(value, bool):
        return True
    if isinstance(dtype, pl.Decimal):
        return bool(abs(value) < 10 ** (dtype.precision or 38))
    if dtype == pl.Int64():
        return -(2**63) <= value < 2**63
    return True


def _overflow_error(key: str, value: int, dtype: pl.DataType) -> dict[str, Any]:
    column = "HUGEINT (38 digits)" if isinstance(dtype, pl.Decimal) else "BIGINT"
    return {
        "type": "int_storage_overflow",
        "loc": [key],
        "msg": f"Valid integer, but too large for the {column} column it is stored in",
        "input": json_input(value),
    }


def run_pydantic(
    schema: CompiledSchema, rows: pl.DataFrame, keys: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(valid typed rows, invalid rows with errors) for rows that need Pydantic."""
    valid_rows: list[int] = []
    values: dict[str, list[Any]] = {p.name: [] for p in schema.fields}
    invalid_rows: list[int] = []
    invalid_raw: list[str] = []
    flat: dict[str, list[Any]] = {"row": [], "type": [], "loc": [], "msg": [], "input": []}

    def add(row_number: int, raw: str, problems: list[dict[str, Any]]) -> None:
        invalid_rows.append(row_number)
        invalid_raw.append(raw)
        for problem in problems:
            flat["row"].append(row_number)
            for key in ("type", "loc", "msg", "input"):
                flat[key].append(problem[key])

    context = dict(schema.context)
    for row in rows.iter_rows(named=True):
        data = python_input(row, keys, schema.typed)
        try:
            model = schema.model.model_validate(data, context=context)
        except ValidationError as exc:
            problems = [
                {
                    "type": e["type"],
                    "loc": [str(part) for part in e["loc"]],
                    "msg": e["msg"],
                    "input": json_input(e["input"]),
                }
                for e in exc.errors(include_url=False)
            ]
            add(row[ROW], row[RAW], problems)
            continue
        stored = {p.name: _store_value(getattr(model, p.name), p.dtype) for p in schema.fields}
        too_big = [p for p in schema.fields if not _fits(stored[p.name], p.dtype)]
        if too_big:
            add(
                row[ROW],
                row[RAW],
                [_overflow_error(p.keys[0], stored[p.name], p.dtype) for p in too_big],
            )
            continue
        valid_rows.append(row[ROW])
        for program in schema.fields:
            values[program.name].append(stored[program.name])
    valid = pl.DataFrame(
        {ROW: pl.Series(valid_rows, dtype=pl.Int64)}
        | {p.name: pl.Series(values[p.name], dtype=p.dtype, strict=False) for p in schema.fields}
    )
    error_rows = pl.DataFrame(
        {
            ROW: pl.Series(flat["row"], dtype=pl.Int64),
            "type": pl.Series(flat["type"], dtype=pl.String),
            "loc": pl.Series(flat["loc"], dtype=pl.List(pl.String)),
            "msg": pl.Series(flat["msg"], dtype=pl.String),
            "input": pl.Series(flat["input"], dtype=pl.String),
        }
    )
    grouped = error_rows.group_by(ROW, maintain_order=True).agg(
        pl.struct("type", "loc", "msg", "input").alias(ERRORS)
    )
    invalid = (
        pl.DataFrame(
            {
                ROW: pl.Series(invalid_rows, dtype=pl.Int64),
                RAW: pl.Series(invalid_raw, dtype=pl.String),
            }
        )
        .join(grouped, on=ROW, how="left", maintain_order="left")
        .with_columns(pl.col(ERRORS).cast(ERROR_DTYPE))
    )
    return valid, invalid
