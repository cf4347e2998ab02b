"""Read-only SQL over the DuckDB file: one query, streamed in batches, as rows or text.

The file is opened read-only, so nothing can change it; statements that would act outside
the database (COPY, ATTACH, INSTALL, SET ...) are refused up front with a clear message.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO

import duckdb

from engine.errors import ConfigError
from engine.reports.reader import duckdb_message
from engine.store.store import Store

# What `sql` runs, as a person writes it (the README lists the same), and the DuckDB
# statement type each form parses to: only those types are run.
READ_FORMS = {
    "SELECT": "SELECT",
    "FROM ...": "SELECT",
    "DESCRIBE": "SELECT",
    "SUMMARIZE": "SELECT",
    "SHOW": "SELECT",
    "EXPLAIN": "EXPLAIN",
    "PRAGMA": "PRAGMA",
    "CALL": "CALL",
}
READ_STATEMENTS = tuple(dict.fromkeys(READ_FORMS.values()))

Row = tuple[Any, ...]


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    batches: Iterator[list[Row]]


def run_query(store: Store, query: str, *, batch_rows: int = 10_000) -> QueryResult:
    """Start one read-only query; rows arrive in batches so that any size streams."""
    try:
        statements = store.con.extract_statements(query)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {duckdb_message(exc)}") from exc
    if len(statements) != 1:
        raise ConfigError(f"sql runs exactly one statement, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in READ_STATEMENTS:
        raise ConfigError(f"sql runs read-only queries ({', '.join(READ_FORMS)}), not {kind}")
    try:
        relation = store.con.sql(query)
        if relation is None:  # a statement with no result set
            return QueryResult([], [], iter(()))
        columns, types = list(relation.columns), [str(t) for t in relation.types]
        reader = relation.to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {duckdb_message(exc)}") from exc
    return QueryResult(columns, types, _rows(reader))


def _rows(reader: Any) -> Iterator[list[Row]]:
    try:
        for batch in reader:
            yield list(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {duckdb_message(exc)}") from exc


def head(result: QueryResult, limit: int) -> tuple[list[Row], bool]:
    """The first ``limit`` rows, and whether there were more."""
    rows: list[Row] = []
    for batch in result.batches:
        rows.extend(batch)
        if len(rows) > limit:
            return rows[:limit], True
    return rows, False


def write_csv(result: QueryResult, out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    count = 0
    for batch in result.batches:
        writer.writerows([[_csv_value(v) for v in row] for row in batch])
        count += len(batch)
    return count


def write_json(result: QueryResult, out: TextIO) -> int:
    """A JSON array, one object per line (valid JSON: NaN and infinities become null)."""
    out.write("[")
    count = 0
    for batch in result.batches:
        for row in batch:
            record = {name: json_value(v) for name, v in zip(result.columns, row, strict=True)}
            out.write(("\n" if count == 0 else ",\n") + json.dumps(record, ensure_ascii=False))
            count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def json_value(value: Any) -> Any:
    """A Python value from DuckDB as plain JSON data."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def text_value(value: Any) -> str:
    """A value as one cell of text (CSV and the terminal table); NULL is the empty string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time | timedelta | Decimal | float | int):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(json_value(value), ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _csv_value(value: Any) -> str | None:
    return None if value is None else text_value(value)
