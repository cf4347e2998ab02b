"""Reading a lake: an in-memory DuckDB database whose views have the names, columns and
meaning of a DuckDB file's, so ``summary``, ``sql``, ``export`` and ``report`` run unchanged.

Each Delta table is a pyarrow dataset over pyarrow's own file system (``engine.lake.datasets``)
registered in DuckDB (never ``to_pyarrow_table()``: processes that materialise Delta tables
that way abort at exit about half the time). A batch is visible only once its manifest row is committed: every
data view keeps the rows whose ``(run_id, batch)`` the manifest lists, and the manifest is
loaded before the data tables, so each data table's snapshot holds at least every batch the
manifest's snapshot lists (a batch's rows are appended before its manifest row). Orphans of
a writer that died between the two, and batches committed after the manifest was read, are
never counted. A typed table is the union of its generations (``engine.lake.generations``),
each column cast to the widest of its types. Rows a committed replay moved (``replayed_rows``) leave ``ingestion_errors``
and ``error_details``; a run's counts are those of its latest manifest row. ``row_versions``
names the schema version that validated each row, as in a DuckDB file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

from engine.errors import Remedy, StoreError
from engine.lake.datasets import dataset
from engine.lake.evolve import table_columns, versions_view
from engine.lake.generations import generations, union_sql
from engine.lake.location import Lake
from engine.lake.modes import replaced_view
from engine.lake.tables import (
    ERRORS,
    KAFKA_LINEAGE,
    LAKE_TABLES,
    MANIFEST,
    RAW,
    REPLACED,
    VERSIONS,
    open_table,
    read_failure,
)
from engine.reports.lockdown import lock_down
from engine.store.connect import connect
from engine.store.ddl import ERROR_DETAILS, OFFSETS, RUNS, quote
from engine.store.history import REPLAYED_ROWS, REPLAYS, ROW_VERSIONS, row_versions_sql
from engine.store.store import READ_MEMORY, Store, private_spill

RUN_COLUMNS = (
    "run_id, source_kind, source_path, format, schema_name, schema_fingerprint, target_table, "
    "content_hash, quick_hash, file_size, started_at, finished_at, status, rows_total, "
    "rows_valid, rows_invalid, rows_python, blank_lines, duration_s, message"
)
COMMITTED = "SEMI JOIN _committed USING (run_id, batch)"
EMPTY_RAW = (
    "SELECT NULL::BIGINT AS run_id, NULL::BIGINT AS row_number, NULL::BIGINT AS line_number, "
    "NULL::VARCHAR AS raw WHERE false"
)
EMPTY_ERRORS = (
    "SELECT NULL::BIGINT AS run_id, NULL::BIGINT AS row_number, NULL::VARCHAR AS raw, "
    'NULL::STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR, "input" VARCHAR)[] AS errors '
    "WHERE false"
)
EMPTY_KAFKA_LINEAGE = (
    "SELECT NULL::BIGINT AS run_id, NULL::BIGINT AS row_number, NULL::VARCHAR AS kafka_topic, "
    "NULL::INTEGER AS kafka_partition, NULL::BIGINT AS kafka_offset, NULL::VARCHAR AS kafka_key, "
    "NULL::TIMESTAMPTZ AS kafka_timestamp, NULL::VARCHAR AS kafka_headers WHERE false"
)


def open_lake_reader(lake: Lake, *, writable: Iterable[Path] = ()) -> Store:
    """A locked-down reader over the lake's committed batches (see ``lockdown``)."""
    manifest = open_table(lake, MANIFEST)
    if manifest is None:
        raise StoreError(
            lake.uri,
            "no lake here (it has no ingestion_batches table)",
            hint=Remedy("run an ingestion into it first, or pass another {}", "lake"),
        )
    # An in-memory database spills into ./.tmp by default: a directory of its own instead,
    # in a directory only this user can enter; and capped like a database file's readers.
    spill = private_spill(_own_directory() / "ingest-lake")
    con = connect(":memory:", config={"temp_directory": spill, "memory_limit": READ_MEMORY})
    try:
        con.execute("SET TimeZone = 'UTC'")
        _register(con, "_manifest", dataset(lake, MANIFEST, manifest))  # first: see above
        con.execute(
            "CREATE VIEW _committed AS SELECT DISTINCT run_id, batch FROM _manifest "
            "WHERE status <> 'failed'"
        )
        con.execute(f"CREATE VIEW {MANIFEST} AS SELECT * FROM _manifest")
        manifest_columns = {str(r[0]) for r in con.execute("DESCRIBE _manifest").fetchall()}
        modes = (
            ", coalesce(load_mode, 'append') AS load_mode, read_options"
            if "load_mode" in manifest_columns
            else ", 'append' AS load_mode, NULL::VARCHAR AS read_options"
        )
        con.execute(
            f"CREATE VIEW {RUNS} AS SELECT {RUN_COLUMNS}{modes} FROM _manifest "
            "QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY batch DESC) = 1"
        )
        con.execute(
            f"CREATE VIEW {OFFSETS} AS SELECT group_id, o.topic AS topic, "
            'o."partition" AS "partition", max(o.next_offset) AS next_offset, '
            "arg_max(run_id, o.next_offset) AS run_id, max(committed_at) AS updated_at, "
            "NULL::VARCHAR AS topic_id "
            "FROM (SELECT group_id, run_id, committed_at, unnest(offsets) AS o FROM _manifest "
            "WHERE offsets IS NOT NULL) GROUP BY ALL"
        )
        targets = [
            str(row[0])
            for row in con.execute(
                "SELECT target_table FROM _manifest GROUP BY target_table ORDER BY min(run_id)"
            ).fetchall()
        ]
        for name in (n for n in LAKE_TABLES if n != MANIFEST):  # the manifest: above
            table = open_table(lake, name)
            if table is not None:
                _register(con, f"_lake_{name}", dataset(lake, name, table))
            elif name == RAW:
                _no_raw_without_rows(lake, con)
        typed: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for name in targets:
            for generation, table in generations(lake, name):
                _register(con, f"_lake_{generation}", dataset(lake, generation, table))
                columns = table_columns(table)
                typed.setdefault(name, []).append((quote(f"_lake_{generation}"), columns))
        _views(con, typed)
        store = Store.over(con, lake.uri)
    except duckdb.Error as exc:
        con.close()
        raise read_failure(lake, exc) from exc
    except BaseException:
        con.close()
        raise
    try:
        lock_down(store, writable)
    except BaseException:
        store.close()
        raise
    return store


def _no_raw_without_rows(lake: Lake, con: duckdb.DuckDBPyConnection) -> None:
    """Every row a committed batch stored has its raw text in raw_data: a lake whose manifest
    lists such batches but has no raw_data table lost it (deleted, not restored), and its
    errors and lineage would read as empty."""
    (batches,) = con.execute(
        "SELECT count(*) FROM _manifest SEMI JOIN _committed USING (run_id, batch) "
        "WHERE batch_rows > 0"
    ).fetchone() or (0,)
    if batches:
        raise StoreError(
            lake.uri,
            f"table {RAW} of the lake is missing, though {batches} committed "
            f"batch{'es' if batches != 1 else ''} stored rows in it",
            hint=Remedy("restore it, or pass another {}", "lake"),
        )


def _register(con: duckdb.DuckDBPyConnection, name: str, dataset: object) -> None:
    con.register(name, dataset)


def _views(
    con: duckdb.DuckDBPyConnection, targets: dict[str, list[tuple[str, dict[str, str]]]]
) -> None:
    def has(name: str) -> bool:
        try:
            con.execute(f"SELECT * FROM {quote('_lake_' + name)} LIMIT 0").fetchall()
        except duckdb.CatalogException:
            return False
        return True

    if has(RAW):
        con.execute(
            f"CREATE VIEW {RAW} AS SELECT run_id, row_number, line_number, raw "
            f"FROM _lake_{RAW} {COMMITTED}"
        )
    else:  # only failed runs so far
        con.execute(f"CREATE VIEW {RAW} AS {EMPTY_RAW}")
    con.execute(f"CREATE VIEW {REPLAYED_ROWS} AS {replayed_view(has(REPLAYED_ROWS))}")
    con.execute(f"CREATE VIEW {REPLAYS} AS {replays_view(has(REPLAYS))}")
    if has(ERRORS) and has(RAW):
        # Rows a committed replay moved into the typed table are no longer invalid.
        con.execute(
            f"CREATE VIEW {ERRORS} AS SELECT e.run_id, e.row_number, r.raw, e.errors "
            f"FROM _lake_{ERRORS} AS e {COMMITTED} "
            f"JOIN _lake_{RAW} AS r USING (run_id, batch, row_number) "
            f"ANTI JOIN {REPLAYED_ROWS} USING (run_id, row_number)"
        )
    else:
        con.execute(f"CREATE VIEW {ERRORS} AS {EMPTY_ERRORS}")
    con.execute(
        f"CREATE VIEW {ERROR_DETAILS} AS SELECT run_id, row_number, "
        'array_to_string(e.loc, \'.\') AS loc, e."type" AS "type", e.msg AS msg, '
        'e."input" AS "input" '
        f"FROM (SELECT run_id, row_number, unnest(errors) AS e FROM {ERRORS})"
    )
    if has(KAFKA_LINEAGE):
        con.execute(
            f"CREATE VIEW {KAFKA_LINEAGE} AS SELECT * EXCLUDE (batch) "
            f"FROM _lake_{KAFKA_LINEAGE} {COMMITTED}"
        )
    else:
        con.execute(f"CREATE VIEW {KAFKA_LINEAGE} AS {EMPTY_KAFKA_LINEAGE}")
    con.execute(f"CREATE VIEW {VERSIONS} AS {versions_view(has(VERSIONS))}")
    con.execute(f"CREATE VIEW {ROW_VERSIONS} AS {row_versions_sql(RAW, RUNS)}")
    con.execute(f"CREATE VIEW {REPLACED} AS {replaced_view(has(REPLACED))}")
    for name, sources in targets.items():
        if name in LAKE_TABLES:
            continue
        # Rows a committed replace or merge run replaced are gone from the table's view.
        gone = (
            f"ANTI JOIN (SELECT run_id, row_number FROM {REPLACED} "
            f"WHERE target_table = '{name.replace(chr(39), chr(39) * 2)}') "
            "USING (run_id, row_number)"
            if has(REPLACED)
            else ""
        )
        # Its generations as one table, each column of its widest type.
        union = sources[0][0] if len(sources) == 1 else f"({union_sql(sources)})"
        con.execute(
            f"CREATE VIEW {quote(name)} AS SELECT * EXCLUDE (batch) "
            f"FROM {union} AS _typed {COMMITTED} {gone}"
        )


def replayed_view(has_table: bool) -> str:
    """The reader's ``replayed_rows``: rows moved by a committed replay."""
    if not has_table:
        return (
            "SELECT NULL::BIGINT AS run_id, NULL::BIGINT AS row_number, NULL::BIGINT AS "
            'replay_id, NULL::STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR, '
            '"input" VARCHAR)[] AS errors, NULL::VARCHAR AS raw WHERE false'
        )
    return (
        "SELECT run_id, row_number, replay_id, errors, raw "
        f"FROM _lake_{REPLAYED_ROWS} SEMI JOIN _committed USING (run_id, batch)"
    )


def replays_view(has_table: bool) -> str:
    """The reader's ``replays``: the committed replays."""
    if not has_table:
        return (
            "SELECT NULL::BIGINT AS replay_id, NULL::VARCHAR AS schema_fingerprint, "
            "NULL::VARCHAR AS target_table, NULL::BIGINT[] AS runs, NULL::VARCHAR AS where_sql, "
            "NULL::TIMESTAMPTZ AS replayed_at, NULL::BIGINT AS rows_checked, "
            "NULL::BIGINT AS rows_moved WHERE false"
        )
    return (
        f"SELECT * FROM _lake_{REPLAYS} AS r WHERE EXISTS (SELECT 1 FROM _committed AS c "
        "WHERE c.batch = r.replay_id AND list_contains(r.runs, c.run_id))"
    )


def _own_directory() -> Path:
    """``ingest-<uid>`` in the system's temp directory, made private (0700) to this user: the
    lake readers' spill files are the lake's rows, not for other users of the machine."""
    path = Path(tempfile.gettempdir()) / f"ingest-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.is_symlink() or path.stat().st_uid != os.getuid():
        raise StoreError(path, "a temp directory of this user's name that is not this user's")
    path.chmod(0o700)
    return path
