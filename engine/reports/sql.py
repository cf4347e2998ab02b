"""Read-only SQL over the DuckDB file: one query, streamed in batches, as rows or text.

The file is opened read-only and locked down in DuckDB itself (``engine.reports.lockdown``):
whatever the statement, it cannot reach a file, URL, database or extension outside the
database, nor change a setting. The statement is also checked up front on DuckDB's own
parse (``engine.reports.sql_checks``): one statement, a read, nothing in it that writes or
runs other statements.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO

import duckdb

from engine.errors import ConfigError
from engine.reports.json_text import json_object
from engine.reports.reader import query_error
from engine.reports.sql_checks import check_statement
from engine.store.ddl import quote
from engine.store.store import Store

# Types Arrow or Python misread (UHUGEINT past 2**127 as negative, BIGNUM as bytes, TIME
# '24:00:00' as midnight): shown as DuckDB's own text in CSV and the terminal table.
AS_DUCKDB_TEXT = frozenset({"UHUGEINT", "BIGNUM", "VARINT", "TIME"})

Row = tuple[Any, ...]
NEEDS_QUOTES = re.compile(r'[",\r\n]')
NESTED_TIME = re.compile(r"[\[(].*\bTIME\b|\bTIME\b.*[\])]")  # a TIME inside a nested type


@dataclass
class QueryResult:
    columns: list[str]
    types: list[str]
    batches: Iterator[list[Row]]


def run_query(
    store: Store, query: str, *, batch_rows: int = 10_000, rows: int | None = None
) -> QueryResult:
    """Start one read-only query; rows arrive in batches so that any size streams. With
    ``rows``, only that many are fetched (DuckDB's batches cut to them before Python sees
    them: ``--limit 1`` of wide rows held a whole batch of 10,000 as Python objects)."""
    if rows is not None:
        batch_rows = max(1, min(batch_rows, rows))
    relation = _relation(store, query)
    if relation is None:  # a statement with no result set
        return QueryResult([], [], iter(()))
    columns, types = list(relation.columns), [str(t) for t in relation.types]
    shown = [_as_text(quote(name), kind) for name, kind in zip(columns, types, strict=True)]
    if shown != [quote(name) for name in columns]:
        try:
            relation = relation.project(", ".join(shown))
        except duckdb.Error as exc:
            raise ConfigError(f"query {query_error(exc)}") from exc
    return QueryResult(columns, types, _started(relation, batch_rows, rows))


def _as_text(column: str, kind: str) -> str:
    """The column as Python gets it, or as DuckDB's text where Arrow or Python would misread
    it: a TIME WITH TIME ZONE lost its offset, and a TIME inside a list or struct showed
    '24:00:00' as midnight (written as DuckDB's JSON of it, as a list's cell is JSON)."""
    if kind in AS_DUCKDB_TEXT or kind == "TIME WITH TIME ZONE":
        return f"{column}::VARCHAR AS {column}"
    if NESTED_TIME.search(kind) and kind not in ("TIME",):
        return f"to_json({column})::VARCHAR AS {column}"
    return column


def run_json(store: Store, query: str, *, batch_rows: int = 10_000) -> Iterator[list[str]]:
    """Start one read-only query whose rows arrive, in batches, as the text of JSON objects
    written by DuckDB as ``export --format json`` writes them (``engine.reports.json_text``)."""
    relation = _relation(store, query)
    if relation is None:
        return iter(())
    try:
        rendered = relation.project(json_object(relation.columns, relation.types))
    except duckdb.Error as exc:
        raise ConfigError(f"query {query_error(exc)}") from exc
    return ([str(row[0]) for row in batch] for batch in _started(rendered, batch_rows))


def _relation(store: Store, query: str) -> duckdb.DuckDBPyRelation | None:
    check_statement(store.con, query)
    try:
        return store.con.sql(query)
    except duckdb.Error as exc:
        raise ConfigError(f"query {query_error(exc)}") from exc


def _started(
    relation: duckdb.DuckDBPyRelation, batch_rows: int, rows: int | None = None
) -> Iterator[list[Row]]:
    try:
        reader = relation.to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise ConfigError(f"query {query_error(exc)}") from exc
    batches = _rows(reader, rows)
    # The first batch is read now: most failures (a refusal, a bad cast) stop the command
    # before anything is printed.
    first = next(batches, None)
    return itertools.chain([] if first is None else [first], batches)


def _rows(reader: Any, rows: int | None = None) -> Iterator[list[Row]]:
    """The reader's batches as rows of Python values; with ``rows``, that many at most."""
    left = rows
    try:
        for batch in reader:
            if left is not None:
                if left <= 0:
                    return
                batch = batch.slice(0, left)
                left -= batch.num_rows
            yield list(zip(*(column.to_pylist() for column in batch.columns), strict=True))
    except (duckdb.Error, OSError) as exc:  # DuckDB's errors, as Arrow's reader raises them
        raise ConfigError(f"query {query_error(exc)}") from exc
    except (OverflowError, ValueError) as exc:  # an infinite or BC date Python cannot hold
        raise ConfigError(
            f"query result holds a value Python cannot show as text ({exc})",
            hint="use --format json, or cast the column to VARCHAR in the query",
        ) from exc


def head(result: QueryResult, limit: int) -> tuple[list[Row], bool]:
    """The first ``limit`` rows, and whether there were more."""
    rows: list[Row] = []
    for batch in result.batches:
        rows.extend(batch)
        if len(rows) > limit:
            return rows[:limit], True
    return rows, False


def write_csv(result: QueryResult, out: TextIO) -> int:
    """RFC 4180 as Python's ``csv`` writes it, but for one thing it cannot say (before 3.12):
    an empty string is ``""``, apart from NULL's empty cell, as DuckDB's own CSV (``export``)
    writes them."""
    out.write(_csv_line(result.columns))
    count = 0
    for batch in result.batches:
        out.write("".join(_csv_line(row) for row in batch))
        count += len(batch)
    return count


def _csv_line(values: Iterable[Any]) -> str:
    return ",".join(_csv_field(value) for value in values) + "\n"


def _csv_field(value: Any) -> str:
    if value is None:
        return ""
    text = text_value(value)
    if text == "" or NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_json(batches: Iterable[list[str]], out: TextIO) -> int:
    """A JSON array of ``run_json``'s objects, one per line."""
    out.write("[")
    count = 0
    for batch in batches:
        for text in batch:
            out.write(("\n" if count == 0 else ",\n") + text)
            count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def json_text(value: Any) -> str:
    """A list or struct from DuckDB as compact JSON text for one text cell (CSV, the
    terminal, XLSX); ``sql --format json`` is DuckDB's own text instead. Decimals keep every
    digit and their scale, as DuckDB writes them (a float would round past 17 digits)."""
    if isinstance(value, dict):
        items = (
            json.dumps(str(k), ensure_ascii=False) + ":" + json_text(v) for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, datetime | date | time):
        return json.dumps(value.isoformat())
    if isinstance(value, bytes):
        return json.dumps(value.hex())
    return json.dumps(str(value), ensure_ascii=False)


def text_value(value: Any) -> str:
    """A value as one cell of text (CSV and the terminal table); NULL is the empty string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return format(value, "f")  # every digit, never an exponent (str() gives 1.00E-7)
    if isinstance(value, date | time | timedelta | float | int):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json_text(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
