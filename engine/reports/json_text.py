"""Values as JSON text, written by DuckDB itself: `export --format json` and `sql --format json`.

Both render every value through DuckDB's JSON writer (``COPY ... (FORMAT json)`` for an
export, ``to_json`` for ``sql``, which write the same text), never through Python floats: a
DECIMAL keeps every digit (``12345678901234567.89``), HUGEINT and BIGINT are exact integers,
dates and times are DuckDB's text of them (timestamps with time zone in the reader's UTC:
``"2024-01-01 10:34:56.789+00"``) and JSON columns are embedded as JSON. JSON has no NaN or
Infinity, so ``finite`` turns them into null, inside lists, structs and maps too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from duckdb.sqltypes import DuckDBPyType

from engine.store.ddl import quote

FLOAT_IDS = ("float", "double")


def finite(expr: str, type_: DuckDBPyType, depth: int = 0) -> str:
    """``expr`` with NaN and infinities as NULL wherever its type holds a float; unchanged
    (the same text) when it holds none."""
    if type_.id in FLOAT_IDS:
        return f"CASE WHEN isfinite({expr}) THEN {expr} END"
    variable = f"v{depth}"
    if type_.id in ("list", "array"):
        inner = finite(variable, _members(type_)[0][1], depth + 1)
        if inner == variable:
            return expr
        return f"list_transform({expr}, lambda {variable}: {inner})"
    if type_.id == "struct":
        children = _members(type_)
        members = {name: f"struct_extract({expr}, {_literal(name)})" for name, _ in children}
        fields = {name: finite(members[name], child, depth) for name, child in children}
        if fields == members:
            return expr
        packed = ", ".join(f"{quote(name)} := {value}" for name, value in fields.items())
        return f"CASE WHEN {expr} IS NOT NULL THEN struct_pack({packed}) END"
    if type_.id == "map":
        value = finite(f"{variable}.value", _members(type_)[1][1], depth + 1)
        if value == f"{variable}.value":
            return expr
        entry = f"struct_pack(key := {variable}.key, value := {value})"
        return f"map_from_entries(list_transform(map_entries({expr}), lambda {variable}: {entry}))"
    return expr  # a UNION of floats keeps NaN: DuckDB cannot rebuild a union member by member


def json_object(columns: Sequence[str], types: Sequence[DuckDBPyType]) -> str:
    """One row as the text of a JSON object, as a SQL expression over the result's columns
    (``#1``, ``#2``... : names may repeat). Keys are in column order; NULL is ``null``."""
    parts = []
    for position, (name, type_) in enumerate(zip(columns, types, strict=True), start=1):
        key = json.dumps(name, ensure_ascii=False) + ":"
        parts.append(_literal(("{" if position == 1 else ",") + key))
        parts.append(f"coalesce(to_json({finite(f'#{position}', type_)}), 'null')")
    if not parts:
        return "'{}'"
    return f"concat({', '.join(parts)}, '}}')"


def _members(type_: DuckDBPyType) -> list[tuple[str, DuckDBPyType]]:
    """A nested type's member types (an array's size, an enum's values left out)."""
    return [(name, child) for name, child in type_.children if isinstance(child, DuckDBPyType)]


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
