"""Which tables a database file has, and bringing an older file up to date.

Layout 1 (before ``layout_versions`` existed) stored ``raw_data`` and ``ingestion_errors``
as tables: each invalid row's raw text twice, each error's type, loc and message in full.
Layout 2 stores each fact once (``engine.store.ddl``) and keeps those names as views.
Layout 3 adds what a table's life over time leaves (``engine.store.history``: schema
versions, load modes, replaced, replayed and pruned rows). Layout 4 keeps the id of the topic
each of ``kafka_offsets``' offsets is in (``engine.streaming.topic_ids``: a topic deleted and
created again is read from its beginning). A writer opening an older file
migrates it in one transaction and records that in ``layout_versions``; a file from a newer
engine is refused. Readers never write: they read
the public names, which both layouts have.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from engine.errors import Remedy, StoreError
from engine.store import raw_codec
from engine.store.ddl import (
    ERROR_DETAILS,
    ERRORS,
    INVALID_ROWS,
    LAYOUT,
    OFFSETS,
    RAW,
    RULES,
    RUNS,
    RUNS_DDL,
    SOURCE_ROWS,
    STORED_DDL,
    VIEWS,
    VIEWS_DDL,
)
from engine.store.history import BACKFILL_VERSIONS, HISTORY_DDL, HISTORY_VIEWS_DDL

LAYOUT_VERSION = 4
LAYOUT_COLUMNS = ["version", "applied_at", "note"]

# What layout 1 stored, as its last version created it (kept to recognise and test it).
LAYOUT_1_DDL = f"""
CREATE TABLE {RAW} (
    run_id BIGINT NOT NULL USING COMPRESSION rle,
    row_number BIGINT NOT NULL,
    line_number BIGINT,
    raw VARCHAR USING COMPRESSION uncompressed
);
CREATE TABLE {ERRORS} (
    run_id BIGINT NOT NULL USING COMPRESSION rle,
    row_number BIGINT NOT NULL,
    raw VARCHAR USING COMPRESSION uncompressed,
    errors STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR, "input" VARCHAR)[] NOT NULL
);
CREATE OR REPLACE VIEW {ERROR_DETAILS} AS
SELECT run_id, row_number,
       array_to_string(e.loc, '.') AS loc,
       e."type" AS "type",
       e.msg AS msg,
       e."input" AS "input"
FROM (SELECT run_id, row_number, unnest(errors) AS e FROM {ERRORS});
"""
LAYOUT_1_COLUMNS = {
    RAW: ["run_id", "row_number", "line_number", "raw"],
    ERRORS: ["run_id", "row_number", "raw", "errors"],
}

# Layout 1's errors as codes. An error whose type, loc and message occur more than once
# under a schema version becomes a rule; one that occurs once stays given whole.
_OLD_ERRORS = f"""
    SELECT x.run_id, x.row_number, x.seq, x.e, g.schema_fingerprint AS fingerprint
    FROM (SELECT run_id, row_number, unnest(range(len(errors))) AS seq, unnest(errors) AS e
          FROM {ERRORS}) AS x
    LEFT JOIN {RUNS} AS g USING (run_id)"""
MIGRATE_1_TO_2 = f"""
ALTER TABLE {RAW} RENAME TO {SOURCE_ROWS};
ALTER TABLE {SOURCE_ROWS} RENAME COLUMN line_number TO line_delta;
UPDATE {SOURCE_ROWS} SET line_delta = line_delta - row_number;
{STORED_DDL}
INSERT INTO {RULES}
SELECT nextval('error_rule_ids'), fingerprint, t, l, m FROM (
    SELECT fingerprint, e."type" AS t, e.loc AS l, e.msg AS m, min(run_id) AS first_run
    FROM ({_OLD_ERRORS}) AS o
    WHERE fingerprint IS NOT NULL AND e."type" IS NOT NULL AND e.loc IS NOT NULL
    GROUP BY ALL HAVING count(*) > 1
    ORDER BY first_run, t, l, m
);
INSERT INTO {INVALID_ROWS}
SELECT o.run_id, o.row_number,
       list(r.rule_id ORDER BY o.seq),
       list(o.e."input" ORDER BY o.seq),
       CASE WHEN bool_or(r.rule_id IS NULL) THEN list(
           CASE WHEN r.rule_id IS NULL
                THEN {{'type': o.e."type", 'loc': o.e.loc, 'msg': o.e.msg}} END
           ORDER BY o.seq) END
FROM ({_OLD_ERRORS}) AS o
LEFT JOIN {RULES} AS r
  ON r.schema_fingerprint = o.fingerprint AND r."type" = o.e."type" AND r.loc = o.e.loc
 AND r.msg = o.e.msg
GROUP BY o.run_id, o.row_number
ORDER BY o.run_id, o.row_number;
DROP VIEW IF EXISTS {ERROR_DETAILS};
DROP TABLE {ERRORS};
"""


# Layout 4: older files' offsets have no topic id (NULL: not known, so never read as another
# topic's). RUNS_DDL, run first, makes the table if a file lacks it.
TOPIC_IDS = f"ALTER TABLE {OFFSETS} ADD COLUMN IF NOT EXISTS topic_id VARCHAR;"


def _kinds(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Name -> 'table' or 'view', for what the main schema holds."""
    rows = con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {str(name): "view" if kind == "VIEW" else "table" for name, kind in rows}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [str(row[0]) for row in rows]


# What a database holds besides the built-ins, in any schema: a database holding any of it
# is someone's (``check_layout``).
_OBJECTS = """
SELECT schema_name || '.' || table_name FROM duckdb_tables()
    WHERE database_name = current_database() AND NOT temporary
UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views()
    WHERE database_name = current_database() AND NOT internal AND NOT temporary
UNION ALL SELECT schema_name FROM duckdb_schemas()
    WHERE database_name = current_database() AND NOT internal
UNION ALL SELECT schema_name || '.' || sequence_name FROM duckdb_sequences()
    WHERE database_name = current_database() AND NOT temporary
UNION ALL SELECT schema_name || '.' || function_name FROM duckdb_functions()
    WHERE database_name = current_database() AND NOT internal
UNION ALL SELECT schema_name || '.' || type_name FROM duckdb_types()
    WHERE database_name = current_database() AND NOT internal
"""


def _objects(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table, view, schema, sequence, macro and type the file holds (``main.`` left
    out of the names), sorted."""
    names = {str(row[0]).removeprefix("main.") for row in con.execute(_OBJECTS).fetchall()}
    return sorted(names)


def _holds_nothing(con: duckdb.DuckDBPyConnection) -> bool:
    """The opened file has no blocks and no log: nothing was ever stored in it (a new file).
    Asked of the connection, not of the path (which DuckDB may read as ``~/...`` or a
    ``file:`` URI, or another process may create meanwhile): 1 ms, where listing what a file
    holds takes 20 (DuckDB lists its 3,000 functions to find macros). Anything else, or an
    answer in another form, takes the full listing."""
    found = con.execute(
        "SELECT total_blocks, wal_size FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()
    return found == [(0, "0 bytes")]


def layout_version(con: duckdb.DuckDBPyConnection, kinds: dict[str, str]) -> int | None:
    """The file's layout (``kinds``: what its main schema holds, ``_kinds``): the last
    recorded version, 1 for a file from before versions were recorded, None for a file
    without the engine's tables."""
    if kinds.get(LAYOUT) == "table":
        if _columns(con, LAYOUT) != LAYOUT_COLUMNS:
            return None  # a table of that name, not the engine's: see check_layout
        found = con.execute(f"SELECT max(version) FROM {LAYOUT}").fetchall()[0][0]
        return found if isinstance(found, int) else None  # not ours if not an integer
    if kinds.get(RAW) == "table":
        return 1
    return None


# What every layout from 2 on holds: a file recording such a layout without them was made by
# something else, or damaged (reading it gave tracebacks: independent attack).
CORE = {RUNS: "table", SOURCE_ROWS: "table", INVALID_ROWS: "table", RULES: "table"} | {
    view: "view" for view in VIEWS
}


def _check_core(kinds: dict[str, str], path: Path, version: int) -> None:
    missing = [f"{kind} {name}" for name, kind in CORE.items() if kinds.get(name) != kind]
    if missing:
        raise StoreError(
            path,
            f"the database records layout {version} but has no {', '.join(missing)} "
            "(made by something else, or damaged)",
            hint="give --db a file of its own (a new name creates one)",
        )


def check_layout(con: duckdb.DuckDBPyConnection, path: Path, *, create: bool = False) -> int | None:
    """The file's layout, if this engine can use it: refused when newer than this engine's,
    or when the file holds objects but not the engine's tables (someone else's database:
    never written into, nor read as if it were ours). None: a database holding nothing (new,
    or left by a run stopped before it made its tables), which only a writer that may
    ``create`` takes."""
    kinds = _kinds(con)
    version = layout_version(con, kinds)
    if version == 1:
        _check_layout_1(con, path)  # tables of the same names, someone else's
    elif version is not None and version <= LAYOUT_VERSION:  # a newer one is said below
        _check_core(kinds, path, version)
    if version is not None and version > LAYOUT_VERSION:
        raise StoreError(
            path,
            f"the database has layout {version}, made by a newer version of the engine "
            f"(this one knows layouts up to {LAYOUT_VERSION})",
            hint="use the engine that made it, or another --db file",
        )
    if version is None:
        others = [] if _holds_nothing(con) else _objects(con)
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if others[5:] else "")
            raise StoreError(
                path,
                f"not a database of this engine: it holds other objects ({shown})",
                hint="give --db a file of its own (a new name creates one)",
            )
        if not create:
            raise StoreError(
                path,
                "the database has no tables yet (no run has been stored in it)",
                hint=Remedy("run an ingestion first or pass another {}", "db"),
            )
    return version


def ensure_layout(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    raw_compression: str = raw_codec.DEFAULT,
    *,
    create: bool = True,
) -> None:
    """Make a writer's file current: create the tables (the raw text compressed by
    ``raw_compression``; only if it may ``create``), migrate an older layout, or refuse."""
    version = check_layout(con, path, create=create)
    if version == LAYOUT_VERSION:
        return
    if version == 1:
        steps = MIGRATE_1_TO_2 + HISTORY_DDL + BACKFILL_VERSIONS + TOPIC_IDS
        note = _migration_note(con)
    elif version == 2:
        steps, note = HISTORY_DDL + BACKFILL_VERSIONS + TOPIC_IDS, _migration_2_note(con)
    elif version == 3:
        steps = TOPIC_IDS
        note = "migrated from layout 3: kafka_offsets keeps each offset's topic id from now on"
    else:
        steps = raw_codec.with_codec(STORED_DDL, raw_compression) + HISTORY_DDL
        steps += f"INSERT INTO store_settings VALUES ('{raw_codec.SETTING}', '{raw_compression}');"
        note = f"created with layout {LAYOUT_VERSION}"
    con.begin()
    try:
        con.execute(RUNS_DDL)
        con.execute(steps)
        con.execute(VIEWS_DDL)
        con.execute(HISTORY_VIEWS_DDL)
        con.execute(
            f"INSERT INTO {LAYOUT} VALUES (?, ?, ?)", [LAYOUT_VERSION, datetime.now(UTC), note]
        )
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        if version is None or isinstance(exc, duckdb.IOException):
            raise  # the caller's ``Store.writing`` says what failed writing the file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(
            path,
            f"cannot migrate the database to layout {LAYOUT_VERSION} ({first})",
            hint="nothing was changed; ingest into another --db file, or report this",
        ) from exc


def _check_layout_1(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    for table, expected in LAYOUT_1_COLUMNS.items():
        found = _columns(con, table)
        if found != expected:
            raise StoreError(
                path,
                f"table {table} has columns {', '.join(found) or 'none'}, not those of any "
                "layout this engine can migrate",
                hint="ingest into another --db file; read this one with the engine that made it",
            )


def _migration_note(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(f"SELECT count(*) FROM {RAW}").fetchall()[0][0]
    invalid = con.execute(f"SELECT count(*), sum(len(errors)) FROM {ERRORS}").fetchall()[0]
    return (
        f"migrated from layout 1: {rows} raw rows kept as {SOURCE_ROWS}, "
        f"{invalid[1] or 0} errors of {invalid[0]} invalid rows as {INVALID_ROWS} and {RULES}"
    )


def _migration_2_note(con: duckdb.DuckDBPyConnection) -> str:
    found = con.execute(
        f"SELECT count(DISTINCT (schema_fingerprint, target_table)) FROM {RUNS}"
    ).fetchall()[0][0]
    return (
        f"migrated from layout 2: {found} schema versions recorded from earlier runs "
        "(their JSON schemas were not kept)"
    )
