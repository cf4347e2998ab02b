"""The ``schema_versions`` table, and fitting a schema's typed table to the model.

Before a run (or a consumer, or the API server) writes, ``fit_table`` finds the table the
model's rows go to, brings it to the model's shape when ``engine.store.evolution`` allows it
(in one transaction with the version row that records the change), or refuses with one line.
Each schema fingerprint gets a version row the first time it writes into a table: its JSON
schema and context, the columns it wanted, its unique key and what it changed.

A schema version writes where it wrote before. A new version of a model goes to its declared
table (``__table_name__``) or that table's latest redirection: after a run with ``new_table``
started ``processed_data_v2``, later runs of that model, and new versions of it, go there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Remedy, StoreError
from engine.store.ddl import ENGINE_NAMES, data_table_ddl, quote
from engine.store.evolution import Change, Plan, case_clashes, plan_evolution
from engine.store.history import SCHEMA_VERSIONS

if TYPE_CHECKING:
    from engine.store.store import Store
    from engine.validation.compiler import CompiledSchema

ENGINE_COLUMNS = ("run_id", "row_number")
LAKE_ENGINE_COLUMNS = (*ENGINE_COLUMNS, "batch")  # a lake's tables also name each row's batch


class SchemaChangeError(StoreError):
    """The model cannot write into its stored table as it is (a narrowing, a new required
    field over stored rows, a changed unique key)."""


@dataclass(frozen=True)
class Target:
    """Where a schema's rows would go and what that would take."""

    declared: str
    table: str
    exists: bool
    stored_rows: int
    plan: Plan
    version: int | None  # this fingerprint's recorded version in that table, if any
    next_table: str  # what ``new_table`` would start


def _engine_named(engine: tuple[str, ...]) -> str:
    return f"is named like a column the engine adds to every table ({', '.join(engine)})"


def _rename(name: str) -> str:
    return (
        f"rename the field; it can still read the input key with Field(validation_alias={name!r})"
    )


def reserved_fields(schema: CompiledSchema) -> list[str]:
    """The fields that storing refuses by name (see ``refuse_case_clashes``), said before any
    database is opened: for ``schema explain``."""
    notes = []
    for program in schema.fields:
        if program.name in LAKE_ENGINE_COLUMNS:
            where, own = (
                ("", ENGINE_COLUMNS)
                if program.name in ENGINE_COLUMNS
                else (" on a lake", LAKE_ENGINE_COLUMNS)
            )
            notes.append(
                f"field {program.name!r} cannot be stored{where}: it {_engine_named(own)} "
                f"({_rename(program.name)})"
            )
    return notes


def refuse_case_clashes(
    where: str | Path,
    schema: CompiledSchema,
    table: str,
    stored: Iterable[str],
    engine: Iterable[str] = ENGINE_COLUMNS,
) -> None:
    """A SchemaChangeError when a field is named like a column the engine adds to every table
    (``engine``), or its name equals another field's, or a column's of ``table``
    (``stored``, the engine's columns included), ignoring case only."""
    own = tuple(engine)
    for program in schema.fields:
        if program.name in own:  # in another case: a case clash, below
            raise SchemaChangeError(
                where,
                f"schema {schema.name}: field {program.name!r} {_engine_named(own)}",
                hint=_rename(program.name),
            )
    clashes = case_clashes(stored, (p.name for p in schema.fields))
    if clashes:
        raise SchemaChangeError(
            where,
            f"table {table!r} cannot take schema {schema.name}: "
            + "; ".join(clashes)
            + " differ only in case, and a table's names ignore case",
            hint="rename the field so that no two names differ only in case",
        )


def stored_columns(store: Store, table: str) -> dict[str, str]:
    found = store.table_columns(table)
    return {name: kind for name, kind in found.items() if name not in ENGINE_COLUMNS}


def wanted_columns(schema: CompiledSchema) -> dict[str, str]:
    return {p.name: p.sql_type for p in schema.fields}


def _has_versions(store: Store) -> bool:
    return bool(store.table_columns(SCHEMA_VERSIONS))


def _latest(store: Store, declared: str) -> tuple[str, int] | None:
    """The declared table's latest target and the number of versions it has."""
    if not _has_versions(store):
        return None
    rows = store.rows(
        f"SELECT target_table, (SELECT count(*) FROM {SCHEMA_VERSIONS} "
        "WHERE lower(declared_table) = lower(?)) FROM "
        f"{SCHEMA_VERSIONS} WHERE lower(declared_table) = lower(?) ORDER BY created_at DESC, version DESC "
        "LIMIT 1",
        [declared, declared],
    )
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def _own_table(store: Store, fingerprint: str, declared: str) -> str | None:
    """The table this schema version last wrote to, if it did."""
    if not _has_versions(store):
        return None
    rows = store.rows(
        f"SELECT target_table FROM {SCHEMA_VERSIONS} WHERE schema_fingerprint = ? "
        "AND lower(declared_table) = lower(?) ORDER BY created_at DESC, version DESC LIMIT 1",
        [fingerprint, declared],
    )
    return str(rows[0][0]) if rows else None


def _next_table(store: Store, declared: str, versions: int) -> str:
    n = max(2, versions + 1)
    while store.table_columns(f"{declared}_v{n}"):
        n += 1
    return f"{declared}_v{n}"


def _stored_unique(store: Store, table: str) -> tuple[str, ...] | None:
    if not _has_versions(store):
        return None
    rows = store.rows(
        f"SELECT unique_key FROM {SCHEMA_VERSIONS} WHERE lower(target_table) = lower(?) "
        "AND unique_key IS NOT NULL ORDER BY created_at DESC, version DESC LIMIT 1",
        [table],
    )
    return tuple(json.loads(rows[0][0])) if rows else None


def _version_of(store: Store, fingerprint: str, table: str) -> int | None:
    if not _has_versions(store):
        return None
    rows = store.rows(
        f"SELECT version FROM {SCHEMA_VERSIONS} WHERE schema_fingerprint = ? "
        "AND lower(target_table) = lower(?) ORDER BY version DESC LIMIT 1",
        [fingerprint, table],
    )
    return int(rows[0][0]) if rows else None


def find_target(store: Store, schema: CompiledSchema, *, new_table: bool = False) -> Target:
    """Where the schema's rows go and the plan for that table (nothing written)."""
    declared = schema.table
    if declared.lower() in {name.lower() for name in ENGINE_NAMES}:  # DuckDB ignores case
        raise StoreError(
            store.path,
            f"schema {schema.name} names its table {declared!r}, which the engine uses "
            "for its own data",
            hint="give the model another __table_name__",
        )
    latest = _latest(store, declared)
    own = _own_table(store, schema.fingerprint, declared)
    table = store.spelling(own or (latest[0] if latest else declared))
    next_table = _next_table(store, declared, latest[1] if latest else 1)
    if new_table:
        table = next_table
    stored = stored_columns(store, table)
    refuse_case_clashes(store.path, schema, table, [*ENGINE_COLUMNS, *stored])
    wanted = wanted_columns(schema)
    if not stored:
        plan = Plan(tuple(Change("add", n, None, k) for n, k in wanted.items()))
        return Target(declared, table, False, 0, plan, None, next_table)
    rows = int(store.rows(f"SELECT count(*) FROM {quote(table)}")[0][0])
    plan = plan_evolution(
        stored,
        wanted,
        required=[p.name for p in schema.fields if p.required],
        stored_rows=rows,
        stored_unique=_stored_unique(store, table),
        wanted_unique=schema.unique,
    )
    return Target(
        declared, table, True, rows, plan, _version_of(store, schema.fingerprint, table), next_table
    )


def refusal(store: Store, schema: CompiledSchema, target: Target) -> SchemaChangeError:
    return SchemaChangeError(
        store.path,
        f"table {target.table!r} cannot take schema {schema.name} as it is: "
        + "; ".join(target.plan.refusals),
        hint=Remedy(
            f"pass {{}} to store this model's rows in a new table {target.next_table}, "
            "or give the model another __table_name__",
            "new_table",
        ),
    )


def fit_table(store: Store, schema: CompiledSchema, *, new_table: bool = False) -> CompiledSchema:
    """The schema, aimed at the table its rows go to, which is made to fit it (created,
    altered) with the change recorded; a SchemaChangeError when it cannot fit."""
    target = find_target(store, schema, new_table=new_table)
    if not target.plan.compatible:
        raise refusal(store, schema, target)
    altering = [c for c in target.plan.changes if c.kind != "keep"]
    if target.version is not None and (target.exists and not altering):
        return dataclasses.replace(schema, table=target.table)
    with store.transaction():
        if not target.exists:
            store.execute(data_table_ddl(target.table, wanted_columns(schema), schema.compression))
        else:
            for change in altering:
                store.execute(_alter(target.table, change))
        changes = (
            f"created table {target.table}"
            + (f" (a new table for {target.declared})" if target.table != target.declared else "")
            if not target.exists
            else _news(store, target)
        )
        _record_version(store, schema, target, changes)
    return dataclasses.replace(schema, table=target.table)


def _news(store: Store, target: Target) -> str:
    """What this version changes: its alterations, and the columns it leaves that the
    table's previous version still wrote (not those an earlier version left already)."""
    rows = store.rows(
        f"SELECT columns FROM {SCHEMA_VERSIONS} WHERE lower(target_table) = lower(?) "
        "ORDER BY created_at DESC, version DESC LIMIT 1",
        [target.table],
    )
    before = json.loads(rows[0][0]) if rows and rows[0][0] is not None else None
    news = [
        c for c in target.plan.changes if c.kind != "keep" or before is None or c.column in before
    ]
    return Plan(tuple(news)).summary()


def _alter(table: str, change: Change) -> str:
    if change.kind == "add":
        return f"ALTER TABLE {quote(table)} ADD COLUMN {quote(change.column)} {change.new}"
    return f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(change.column)} TYPE {change.new}"


def _record_version(store: Store, schema: CompiledSchema, target: Target, changes: str) -> None:
    version = int(
        store.rows(
            f"SELECT count(*) + 1 FROM {SCHEMA_VERSIONS} WHERE lower(declared_table) = lower(?)",
            [target.declared],
        )[0][0]
    )
    store.execute(
        f"INSERT INTO {SCHEMA_VERSIONS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            schema.fingerprint,
            schema.name,
            target.declared,
            target.table,
            version,
            json.dumps(schema.model.model_json_schema(), sort_keys=True, default=str),
            json.dumps(dict(schema.context), sort_keys=True, default=str),
            json.dumps(wanted_columns(schema)),
            json.dumps(list(schema.unique)),
            changes,
            datetime.now(UTC),
        ],
    )


def versions(store: Store, table: str | None = None) -> list[dict[str, Any]]:
    """The recorded versions (of one target table), oldest first."""
    if not _has_versions(store):
        return []
    where = (
        "WHERE lower(target_table) = lower(?) OR lower(declared_table) = lower(?)" if table else ""
    )
    frame = store.frame(
        f"SELECT * FROM {SCHEMA_VERSIONS} {where} ORDER BY created_at, version",
        [table, table] if table else None,
    )
    return frame.to_dicts()
