"""Schema evolution on the lake: a typed table fitted to the model, and its versions.

The decisions are the DuckDB store's (``engine.store.evolution.plan_evolution``): both the
table's columns and the model's are named as DuckDB names them, each read through Delta's
own type mapping (so the two sides compare like for like). A field the table lacks becomes
a new nullable column by a schema merge on the append (old rows read NULL), a field the
model no longer has stays (new rows NULL), and a wider type starts a new generation of the
table (``engine.lake.generations``: Delta cannot change a type in place). Refused with one
line before anything is read, and again when the run publishes (another writer may have
changed the table meanwhile): a narrowing (against every generation), a new required field
over stored rows, a changed unique key.

Each schema version that writes into a table leaves one row in the ``schema_versions`` Delta
table (its JSON schema, context, columns, unique key, what it changed), appended before its
run's manifest row; readers show one row per (fingerprint, table) that a committed run used,
numbered by first appearance, as the DuckDB file's ``schema_versions``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, Schema, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from engine.errors import Remedy
from engine.lake.datasets import query
from engine.lake.generations import (
    generation_name,
    generations,
    holds,
    union_columns,
)
from engine.lake.location import Lake
from engine.lake.names import lake_spelling
from engine.lake.tables import MANIFEST, VERSIONS, ensure_table, open_table, write_failure
from engine.store.connect import connect
from engine.store.ddl import quote
from engine.store.evolution import Change, Plan, plan_evolution
from engine.store.versions import LAKE_ENGINE_COLUMNS, SchemaChangeError, refuse_case_clashes
from engine.validation.compiler import CompiledSchema
from engine.validation.storage_options import table_name

VERSIONS_SCHEMA = pa.schema(
    [
        pa.field("schema_fingerprint", pa.string()),
        pa.field("schema_name", pa.string()),
        pa.field("declared_table", pa.string()),
        pa.field("target_table", pa.string()),
        pa.field("version", pa.int32()),
        pa.field("json_schema", pa.string()),
        pa.field("context", pa.string()),
        pa.field("columns", pa.string()),
        pa.field("unique_key", pa.string()),
        pa.field("changes", pa.string()),
        pa.field("created_at", pa.timestamp("us", tz="UTC")),
        pa.field("run_id", pa.int64()),
        pa.field("batch", pa.int64()),
    ]
)
ENGINE_COLUMNS = LAKE_ENGINE_COLUMNS


def duckdb_columns(schema: pa.Schema) -> dict[str, str]:
    """Column name -> DuckDB type of an Arrow schema as a Delta table holds it."""
    with contextlib.suppress(Exception):  # a type Delta cannot hold: the writer refuses it
        schema = pa.schema(Schema.from_arrow(schema).to_arrow())
    con = connect()
    try:
        con.register("shape", schema.empty_table())
        rows = con.execute("DESCRIBE shape").fetchall()
    finally:
        con.close()
    return {str(r[0]): str(r[1]) for r in rows if r[0] not in ENGINE_COLUMNS}


def table_columns(table: DeltaTable) -> dict[str, str]:
    """A Delta table's columns, as DuckDB names their types (the engine's left out)."""
    return duckdb_columns(pa.schema(table.schema().to_arrow()))


def model_columns(schema: CompiledSchema) -> dict[str, str]:
    """The model's columns as its staged table would hand them to Delta."""
    con = connect()
    try:
        columns = ", ".join(f"{quote(p.name)} {p.sql_type}" for p in schema.fields)
        con.execute(f"CREATE TABLE shape ({columns})")
        arrow = con.sql("SELECT * FROM shape").to_arrow_table().schema
    finally:
        con.close()
    return duckdb_columns(arrow)


def stored_rows(lake: Lake, table: str) -> int:
    """The rows the read commands show in the table (over its generations), as a DuckDB
    file's table holds them."""
    from engine.lake.reader import open_lake_reader  # the reader imports this module

    if open_table(lake, MANIFEST) is None:
        return 0
    with open_lake_reader(lake) as reader:
        try:
            return int(reader.rows(f"SELECT count(*) FROM {quote(table)}")[0][0])
        except duckdb.CatalogException:  # no committed run wrote into it
            return 0


def stored_unique(lake: Lake, table: str) -> tuple[str, ...] | None:
    versions = open_table(lake, VERSIONS)
    if versions is None:
        return None
    rows = query(
        lake,
        {"versions": (VERSIONS, versions)},
        "SELECT unique_key FROM versions WHERE target_table = ? AND unique_key IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        [table],
    )
    return tuple(json.loads(rows[0][0])) if rows else None


@dataclass(frozen=True)
class Fit:
    """What a model's run does to the lake's table: its plan against the table as readers
    see it (the union of its generations, ``engine.lake.generations``; for a model a newer
    generation left behind, against its own generation), the generation its rows go to,
    whether that is a new one, and how many rows the table holds (0 when they did not
    matter to the plan)."""

    plan: Plan
    generation: str
    new_generation: bool = False
    stored_rows: int = 0
    stored: Mapping[str, str] = field(default_factory=dict)  # what the plan compared with


def plan_for(lake: Lake, schema: CompiledSchema, wanted: Mapping[str, str]) -> Fit:
    """Where the model's rows go in the lake's table and what that takes (a Plan with
    refusals when it cannot take them)."""
    found = generations(lake, schema.table)
    if not found:
        return Fit(Plan(tuple(Change("add", n, None, k) for n, k in wanted.items())), schema.table)
    columns = [(name, table_columns(t)) for name, t in found]
    required = [p.name for p in schema.fields if p.required]
    unique = stored_unique(lake, schema.table)
    rekeyed = unique is not None and tuple(unique) != tuple(schema.unique)
    # Rows are counted only when they matter: a new required field, or a changed key.
    lacking = any(set(required) - set(stored) for _, stored in columns)
    rows = stored_rows(lake, schema.table) if lacking or rekeyed else 0

    def plan(stored: Mapping[str, str]) -> Plan:
        return plan_evolution(
            stored,
            wanted,
            required=required,
            stored_rows=rows,
            stored_unique=unique,
            wanted_unique=schema.unique,
        )

    # The table as readers see it (what a DuckDB file's table would be) decides, ...
    table = union_columns([stored for _, stored in columns])
    refuse_case_clashes(lake.uri, schema, schema.table, [*ENGINE_COLUMNS, *table], ENGINE_COLUMNS)
    decided = plan(table)
    if decided.compatible:
        # ... and the rows go to the newest generation that holds the types (it only needs
        # the model's new columns, if any), or a widening starts the next one.
        if not any(c.kind == "widen" for c in decided.changes):
            for name, stored in reversed(columns):
                if holds(stored, wanted):
                    return Fit(decided, name, False, rows, table)
        return Fit(decided, generation_name(schema.table, len(found) + 1), True, rows, table)
    # A model a newer generation's widening left behind (other writers may still run it)
    # keeps writing into the generation of its types.
    for name, stored in reversed(columns):
        own = plan(stored)
        if own.compatible and not any(c.kind == "widen" for c in own.changes):
            return Fit(own, name, False, rows, stored)
    return Fit(decided, columns[-1][0], False, rows, table)


def refusal(lake: Lake, schema: CompiledSchema, plan: Plan, next_table: str) -> SchemaChangeError:
    return SchemaChangeError(
        lake.uri,
        f"table {schema.table!r} of the lake cannot take schema {schema.name} as it is: "
        + "; ".join(plan.refusals),
        hint=Remedy(
            f"pass {{}} to store this model's rows in a new table {next_table}, "
            "or give the model another __table_name__",
            "new_table",
        ),
    )


def check_fit(
    lake: Lake,
    schema: CompiledSchema,
    wanted: Mapping[str, str] | None = None,
    *,
    next_table: str | None = None,
) -> Fit:
    """The fit of the model (``wanted``: its columns, by default from the model), or a
    SchemaChangeError naming what the table cannot take and how to proceed (``next_table``:
    what ``--new-table`` would start)."""
    fit = plan_for(lake, schema, model_columns(schema) if wanted is None else wanted)
    if not fit.plan.compatible:
        from engine.lake.targets import next_table as following  # targets imports this module

        declared = lake_spelling(lake, table_name(schema.model))
        raise refusal(lake, schema, fit.plan, next_table or following(lake, declared))
    return fit


def version_row(
    lake: Lake,
    schema: CompiledSchema,
    plan: Plan,
    *,
    existed: bool,
    run_id: int,
    batch: int,
) -> dict[str, Any] | None:
    """The ``schema_versions`` row this run adds, or None if its version is recorded."""
    versions = open_table(lake, VERSIONS)
    declared = table_name(schema.model)
    count, before = 0, None
    if versions is not None:
        found, count, before = query(
            lake,
            {"versions": (VERSIONS, versions)},
            "SELECT count(*) FILTER (WHERE schema_fingerprint = ? AND target_table = ?), "
            "count(DISTINCT schema_fingerprint) FILTER (WHERE lower(declared_table) = lower(?)), "
            "arg_max(columns, created_at) FILTER (WHERE target_table = ?) FROM versions",
            [schema.fingerprint, schema.table, declared, schema.table],
        )[0]
        if found:
            return None
    if existed:
        # As a DuckDB file says it: the columns it leaves that the previous version wrote.
        wrote = json.loads(before) if before is not None else None
        news = [c for c in plan.changes if c.kind != "keep" or wrote is None or c.column in wrote]
        changes = Plan(tuple(news)).summary()
    else:
        changes = f"created table {schema.table}" + (
            f" (a new table for {declared})" if schema.table != declared else ""
        )
    return {
        "schema_fingerprint": schema.fingerprint,
        "schema_name": schema.name,
        "declared_table": declared,
        "target_table": schema.table,
        "version": int(count) + 1,
        "json_schema": json.dumps(schema.model.model_json_schema(), sort_keys=True, default=str),
        "context": json.dumps(dict(schema.context), sort_keys=True, default=str),
        "columns": json.dumps({p.name: p.sql_type for p in schema.fields}),
        "unique_key": json.dumps(list(schema.unique)),
        "changes": changes,
        "created_at": datetime.now(UTC),
        "run_id": run_id,
        "batch": batch,
    }


def record_version(lake: Lake, row: Mapping[str, Any] | None) -> None:
    """Append a version row (an orphan until its run's manifest row commits)."""
    if row is None:
        return
    table: DeltaTable = ensure_table(lake, VERSIONS, VERSIONS_SCHEMA)
    data = pa.Table.from_pylist([dict(row)], schema=VERSIONS_SCHEMA)
    try:
        write_deltalake(table, data, mode="append")
    except (CommitFailedError, DeltaError, OSError) as exc:
        raise write_failure(lake, f"cannot append to table {VERSIONS}", exc) from exc


def versions_view(has_versions: bool) -> str:
    """The reader's ``schema_versions``: the first row of each (fingerprint, table) that a
    committed run used, numbered per declared table by first appearance."""
    if not has_versions:
        return (
            "SELECT NULL::VARCHAR AS schema_fingerprint, NULL::VARCHAR AS schema_name, "
            "NULL::VARCHAR AS declared_table, NULL::VARCHAR AS target_table, "
            "NULL::INTEGER AS version, NULL::VARCHAR AS json_schema, NULL::VARCHAR AS context, "
            "NULL::VARCHAR AS columns, NULL::VARCHAR AS unique_key, NULL::VARCHAR AS changes, "
            "NULL::TIMESTAMPTZ AS created_at WHERE false"
        )
    return (
        "SELECT schema_fingerprint, schema_name, declared_table, target_table, "
        "(row_number() OVER (PARTITION BY lower(declared_table) ORDER BY created_at))::INTEGER "
        "AS version, json_schema, context, columns, unique_key, changes, created_at FROM ("
        f"SELECT * FROM _lake_{VERSIONS} SEMI JOIN (SELECT DISTINCT schema_fingerprint, "
        f"target_table FROM {MANIFEST} WHERE status <> 'failed' "
        "UNION SELECT schema_fingerprint, target_table FROM replays) "  # a replay's version
        "USING (schema_fingerprint, target_table) "
        "QUALIFY row_number() OVER (PARTITION BY schema_fingerprint, target_table "
        "ORDER BY created_at) = 1)"
    )
