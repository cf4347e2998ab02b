"""What a model says about storing its rows, as class attributes next to its fields:
``__table_name__``, ``__unique__`` and ``__compression__``."""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb
from pydantic import BaseModel

from engine.errors import SchemaError
from engine.store.connect import connect


def table_name(model: type[BaseModel]) -> str:
    explicit = getattr(model, "__table_name__", None)
    if isinstance(explicit, str):
        return explicit
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


def unique_key(model: type[BaseModel], name: str, fields: set[str]) -> tuple[str, ...]:
    """The fields forming the model's unique key (``__unique__``), if it has one."""
    declared = getattr(model, "__unique__", ())
    key = (declared,) if isinstance(declared, str) else tuple(declared)
    for i, field in enumerate(key):
        if field not in fields:
            raise SchemaError(name, f"__unique__ names {field!r}, which is not a field")
        if field in key[:i]:
            raise SchemaError(name, f"__unique__ names {field!r} twice")
    return key


def checked_table_name(model: type[BaseModel], name: str) -> str:
    """``table_name``, refusing a ``__table_name__`` that names no table."""
    explicit = getattr(model, "__table_name__", None)
    if explicit is not None and (not isinstance(explicit, str) or not explicit.strip()):
        raise SchemaError(
            name,
            f"__table_name__ must be a table's name, got {explicit!r}",
            hint="name the table, or leave __table_name__ out for one made from the model's name",
        )
    return table_name(model)


def compression(model: type[BaseModel], name: str, fields: Mapping[str, str]) -> dict[str, str]:
    """DuckDB compression per column, where the model chooses (``__compression__``); checked
    against each column's DuckDB type now, not at the first ingest into a new database."""
    declared = getattr(model, "__compression__", {})
    if not isinstance(declared, Mapping):
        raise SchemaError(name, "__compression__ must map field names to DuckDB compression names")
    for field, method in declared.items():
        if field not in fields:
            raise SchemaError(name, f"__compression__ names {field!r}, which is not a field")
        if not isinstance(method, str) or not re.fullmatch(r"[a-z_]+", method):
            raise SchemaError(
                name, f"__compression__ for {field!r} is not a compression name: {method!r}"
            )
        _check(name, field, fields[field], method)
    return dict(declared)


def _check(name: str, field: str, sql_type: str, method: str) -> None:
    with connect(":memory:", config={"threads": 1}) as con:  # 12 ms, not 20
        try:
            con.execute(f"CREATE TABLE t (c {sql_type} USING COMPRESSION {method})")
        except duckdb.Error as exc:
            raise SchemaError(
                name,
                f"__compression__ for {field!r}: DuckDB cannot store {sql_type} with "
                f"{method!r} ({str(exc).splitlines()[0]})",
            ) from exc
