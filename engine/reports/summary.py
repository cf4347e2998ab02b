"""Totals and per-run figures from ``ingestion_runs``, and what the invalid rows got wrong.

Every figure counts completed runs only (a failed run keeps no rows), so the error
breakdowns add up to the invalid-row totals next to them.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from engine.reports.input_json import parsable, plain
from engine.store.ddl import ERROR_DETAILS, RUNS
from engine.store.store import Store

COMPLETED = f"run_id IN (SELECT run_id FROM {RUNS} WHERE status = 'completed')"
# ``error_details`` with each input as JSON DuckDB's reader and the terminal take (a lone
# surrogate's escape shown as text: ``engine.reports.input_json``), and a float written one
# way: the vectorized rules keep DuckDB's JSON text of it (150000000000000000000.0), Pydantic's
# rows Python's (1.5e+20), and one value was counted as two.
#
# Inputs are tested by their first character before they are parsed: only JSON text
# starting with { or [ (or whitespace) can be an object or an array, and only text starting
# with - or a digit a number. DuckDB puts the column's expression in each test of a filter
# on it: 1,000 inputs of 20,000 characters, parsed by each, took 447 MB (47 MB now).
_PARSABLE = parsable("input")
_HEAD = "left(input, 1)"
_SPACE = "' ', chr(9), chr(10), chr(13)"
_FLOAT = f"json_type({_PARSABLE}) = 'DOUBLE' AND isfinite({_PARSABLE}::JSON::DOUBLE)"
_NUMBER_HEADS = "'-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'"
_INPUT = (
    f"CASE WHEN {plain('input')} THEN input "
    f"WHEN {_HEAD} NOT IN ({_NUMBER_HEADS}, {_SPACE}) THEN {_PARSABLE} "
    f"WHEN {_FLOAT} THEN ({_PARSABLE}::JSON::DOUBLE)::VARCHAR ELSE {_PARSABLE} END"
)
# Errors that carry a value of their field: row-level errors and ``missing`` (whose input is
# the whole record) do not.
_FIELD_VALUE = (
    f"CASE WHEN {_HEAD} NOT IN ('{{', '[', {_SPACE}) THEN true "
    f"ELSE json_type({_PARSABLE}) NOT IN ('OBJECT', 'ARRAY') END"
)
DETAILS = (
    f"(SELECT run_id, row_number, loc, type, msg, {_INPUT} AS input, "
    f"{_FIELD_VALUE} AS field_value FROM {ERROR_DETAILS})"
)
FIELD_VALUES = "loc <> '' AND field_value"
WITH_VALUE = f"{COMPLETED} AND {FIELD_VALUES}"


@dataclass(frozen=True)
class RunRow:
    run_id: int
    source_kind: str
    source_path: str
    format: str
    schema_name: str
    status: str
    started_at: datetime
    duration_s: float | None
    rows_total: int
    rows_valid: int
    rows_invalid: int
    success_rate: float | None
    rows_per_s: float | None
    message: str | None


@dataclass(frozen=True)
class ErrorCount:
    """How often one field failed in one way (``field`` is empty for a row-level error)."""

    field: str
    type: str
    count: int


@dataclass(frozen=True)
class OffendingValue:
    """An input value that failed validation of ``field``, as Pydantic saw it."""

    field: str
    value: Any
    count: int

    @property
    def display(self) -> str:
        return repr(self.value) if isinstance(self.value, str) else json.dumps(self.value)


@dataclass(frozen=True)
class Summary:
    runs_completed: int
    runs_failed: int
    rows_total: int
    rows_valid: int
    rows_invalid: int
    success_rate: float | None
    rows_per_s: float | None
    runs: list[RunRow]
    errors_by_field: list[ErrorCount]
    top_values: list[OffendingValue]

    def as_json(self) -> dict[str, Any]:
        """As JSON holds it: a non-finite failing input is null (JSON has no NaN), as the
        API's ``/summary`` writes it."""
        data = asdict(self)
        for run in data["runs"]:
            run["started_at"] = run["started_at"].isoformat()
        for offending in data["top_values"]:
            value = offending["value"]
            if isinstance(value, float) and not math.isfinite(value):
                offending["value"] = None
        return data


def summary(store: Store, *, values_per_field: int = 5) -> Summary:
    return assemble(
        store, run_rows(store), errors_by_field(store), top_values(store, values_per_field)
    )


def assemble(
    store: Store,
    runs: list[RunRow],
    errors: list[ErrorCount],
    values: list[OffendingValue],
) -> Summary:
    """The summary's totals over completed runs, around figures computed elsewhere (the API
    server keeps the error figures up to date run by run: ``engine.api.summaries``)."""
    completed, failed, total, valid, invalid, seconds = store.rows(
        "SELECT count(*) FILTER (status = 'completed'), count(*) FILTER (status = 'failed'), "
        "coalesce(sum(rows_total) FILTER (status = 'completed'), 0), "
        "coalesce(sum(rows_valid) FILTER (status = 'completed'), 0), "
        "coalesce(sum(rows_invalid) FILTER (status = 'completed'), 0), "
        f"sum(duration_s) FILTER (status = 'completed') FROM {RUNS}"
    )[0]
    return Summary(
        runs_completed=int(completed),
        runs_failed=int(failed),
        rows_total=int(total),
        rows_valid=int(valid),
        rows_invalid=int(invalid),
        success_rate=valid / total if total else None,
        rows_per_s=total / seconds if seconds else None,
        runs=runs,
        errors_by_field=errors,
        top_values=values,
    )


def run_rows(
    store: Store, *, run_id: int | None = None, limit: int | None = None, offset: int = 0
) -> list[RunRow]:
    """Runs in order (all, one page of them, or the one ``run_id``), with derived rates."""
    where = "" if run_id is None else f" WHERE run_id = {int(run_id)}"
    page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = store.rows(
        "SELECT run_id, source_kind, source_path, format, schema_name, status, started_at, "
        "duration_s, rows_total, rows_valid, rows_invalid, "
        "CASE WHEN rows_total > 0 THEN rows_valid / rows_total END, "
        "CASE WHEN duration_s > 0 THEN rows_total / duration_s END, message "
        f"FROM {RUNS}{where} ORDER BY run_id{page}"
    )
    return [RunRow(*row) for row in rows]


def errors_by_field(store: Store, *, run_id: int | None = None) -> list[ErrorCount]:
    """Over completed runs, or over one run whatever its status (a Kafka session's so far)."""
    scope = COMPLETED if run_id is None else f"run_id = {int(run_id)}"
    rows = store.rows(
        f"SELECT loc, type, count(*) AS n FROM {ERROR_DETAILS} WHERE {scope} "
        "GROUP BY loc, type ORDER BY n DESC, loc, type"
    )
    return [ErrorCount(str(loc), str(kind), int(n)) for loc, kind, n in rows]


def top_values(store: Store, per_field: int) -> list[OffendingValue]:
    """The most frequent failing inputs of each field, fields with most errors first.

    Row-level errors and ``missing`` (whose input is the whole record) carry no value of
    the field, so they are left out.
    """
    rows = store.rows(
        f"SELECT loc, input, n FROM (SELECT loc, input, count(*) AS n FROM {DETAILS} "
        f"WHERE {WITH_VALUE} GROUP BY loc, input) "
        "QUALIFY row_number() OVER (PARTITION BY loc ORDER BY n DESC, input) <= ? "
        "ORDER BY sum(n) OVER (PARTITION BY loc) DESC, loc, n DESC, input",
        [per_field],
    )
    return [OffendingValue(str(loc), json.loads(text), int(n)) for loc, text, n in rows]


@dataclass(frozen=True)
class ValueTotal:
    """All the failing inputs of one field: how many errors, how many different values."""

    errors: int
    values: int


def value_totals(store: Store) -> dict[str, ValueTotal]:
    """Per field, over the errors ``top_values`` ranks (the report shows both)."""
    rows = store.rows(
        f"SELECT loc, count(*), count(DISTINCT input) FROM {DETAILS} "
        f"WHERE {WITH_VALUE} GROUP BY loc"
    )
    return {str(loc): ValueTotal(int(n), int(distinct)) for loc, n, distinct in rows}
