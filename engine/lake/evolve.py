"""Schema evolution on the lake: a typed Delta table fitted to the model, and its versions.

The decisions are the DuckDB store's (``engine.store.evolution.plan_evolution``): both the
table's columns and the model's are named as DuckDB names them, each read through Delta's
own type mapping (so the two sides compare like for like). What Delta does in place, the
lake does: a field the table lacks becomes a new nullable column by a schema merge on the
append (old rows read NULL), and a field the model no longer has stays (new rows NULL).
What it cannot do is refused with one line before anything is read, and again when the run
publishes (another writer may have changed the table meanwhile): a wider type (Delta has no
in-place type change), a narrowing, a new required field over stored rows, a changed unique
key.

Each schema version that writes into a table leaves one row in the ``schema_versions`` Delta
table (its JSON schema, context, columns, unique key, what it changed), appended before its
run's manifest row; readers show one row per (fingerprint, table) that a committed run used,
numbered by first appearance, as the DuckDB file's ``schema_versions``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, Schema, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from engine.lake.datasets import dataset, query
from engine.lake.location import Lake
from engine.lake.tables import MANIFEST, ensure_table, open_table, write_failure
from engine.store.ddl import quote
from engine.store.evolution import Change, Plan, plan_evolution
from engine.store.versions import SchemaChangeError
from engine.validation.compiler import CompiledSchema

VERSIONS = "schema_versions"
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
ENGINE_COLUMNS = ("run_id", "row_number", "batch")


def duckdb_columns(schema: pa.Schema) -> dict[str, str]:
    """Column name -> DuckDB type of an Arrow schema as a Delta table holds it."""
    with contextlib.suppress(Exception):  # a type Delta cannot hold: the writer refuses it
        schema = pa.schema(Schema.from_arrow(schema).to_arrow())
    con = duckdb.connect()
    try:
        con.register("shape", schema.empty_table())
        rows = con.execute("DESCRIBE shape").fetchall()
    finally:
        con.close()
    return {str(r[0]): str(r[1]) for r in rows if r[0] not in ENGINE_COLUMNS}


def model_columns(schema: CompiledSchema) -> dict[str, str]:
    """The model's columns as its staged table would hand them to Delta."""
    con = duckdb.connect()
    try:
        columns = ", ".join(f"{quote(p.name)} {p.sql_type}" for p in schema.fields)
        con.execute(f"CREATE TABLE shape ({columns})")
        arrow = con.sql("SELECT * FROM shape").to_arrow_table().schema
    finally:
        con.close()
    return duckdb_columns(arrow)


def stored_rows(lake: Lake, table: str) -> int:
    """The typed table's rows, orphans included (what a new required field would leave NULL
    is decided conservatively: any row counts)."""
    found = open_table(lake, table)
    return 0 if found is None else int(dataset(lake, table, found).count_rows())


def stored_unique(lake: Lake, table: str) -> tuple[str, ...] | None:
    versions = open_table(lake, VERSIONS)
    if versions is None:
        return None
    rows = query(
        lake,
        VERSIONS,
        versions,
        "versions",
        "SELECT unique_key FROM versions WHERE target_table = ? AND unique_key IS NOT NULL "
        "ORDER BY created_at DESC LIMIT 1",
        [table],
    )
    return tuple(json.loads(rows[0][0])) if rows else None


def plan_for(lake: Lake, schema: CompiledSchema, wanted: Mapping[str, str]) -> Plan:
    """What the lake's typed table must become for ``wanted``; Delta's limits as refusals."""
    table = open_table(lake, schema.table)
    if table is None:
        return Plan(tuple(Change("add", n, None, k) for n, k in wanted.items()))
    stored = duckdb_columns(pa.schema(table.schema().to_arrow()))
    required = [p.name for p in schema.fields if p.required]
    unique = stored_unique(lake, schema.table)
    rekeyed = unique is not None and tuple(unique) != tuple(schema.unique)
    # Rows are counted only when they matter: a new required field, or a changed key.
    rows = stored_rows(lake, schema.table) if set(required) - set(stored) or rekeyed else 0
    plan = plan_evolution(
        stored,
        wanted,
        required=required,
        stored_rows=rows,
        stored_unique=unique,
        wanted_unique=schema.unique,
    )
    widened = tuple(
        f"{c.column} is {c.old} in the table, the model widens it to {c.new}, which a Delta "
        "table cannot change in place"
        for c in plan.changes
        if c.kind == "widen"
    )
    return Plan(plan.changes, plan.refusals + widened, plan.unchanged)


def check_fit(lake: Lake, schema: CompiledSchema, wanted: Mapping[str, str] | None = None) -> Plan:
    """The plan for the model (``wanted``: its columns, by default from the model), or a
    SchemaChangeError naming what the table cannot take and how to proceed."""
    plan = plan_for(lake, schema, model_columns(schema) if wanted is None else wanted)
    if not plan.compatible:
        raise SchemaChangeError(
            lake.uri,
            f"table {schema.table!r} of the lake cannot take schema {schema.name} as it is: "
            + "; ".join(plan.refusals),
            hint="give the model another __table_name__ to store its rows in a new table "
            "(a lake has no --new-table yet), or use another lake",
        )
    return plan


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
    count = 0
    if versions is not None:
        found, count = query(
            lake,
            VERSIONS,
            versions,
            "versions",
            "SELECT count(*) FILTER (WHERE schema_fingerprint = ? AND target_table = ?), "
            "count(DISTINCT schema_fingerprint) FILTER (WHERE declared_table = ?) FROM versions",
            [schema.fingerprint, schema.table, schema.table],
        )[0]
        if found:
            return None
    news = [c for c in plan.changes if c.kind != "keep"] if existed else []
    changes = Plan(tuple(news)).summary() if existed else f"created table {schema.table}"
    return {
        "schema_fingerprint": schema.fingerprint,
        "schema_name": schema.name,
        "declared_table": schema.table,
        "target_table": schema.table,
        "version": int(count) + 1,
        "json_schema": json.dumps(schema.model.model_json_schema(), sort_keys=True),
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
        "(row_number() OVER (PARTITION BY declared_table ORDER BY created_at))::INTEGER "
        "AS version, json_schema, context, columns, unique_key, changes, created_at FROM ("
        f"SELECT * FROM _lake_{VERSIONS} SEMI JOIN (SELECT DISTINCT schema_fingerprint, "
        f"target_table FROM {MANIFEST} WHERE status <> 'failed' "
        "UNION SELECT schema_fingerprint, target_table FROM replays) "  # a replay's version
        "USING (schema_fingerprint, target_table) "
        "QUALIFY row_number() OVER (PARTITION BY schema_fingerprint, target_table "
        "ORDER BY created_at) = 1)"
    )
