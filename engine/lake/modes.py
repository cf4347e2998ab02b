"""Load modes on the lake: ``replace`` and ``merge`` as rows the manifest makes visible.

A ``replace`` or ``merge`` run is staged as any run (the pipeline keeps, in a merge, the
latest valid row of each key within the run). Publishing it adds, beside its data, the rows
it replaces to the ``replaced_rows`` Delta table: every row the typed table shows
(``replace``), or those whose ``__unique__`` key one of its valid rows has (``merge``), plus
the rows of the run itself a later row of the same key replaced. Those rows carry the run's
id and batch, so, like its data, they count once its manifest row commits: readers show the
typed table without the replaced rows, so a reader sees the old rows or the new ones, never
a mix. Nothing is deleted from the typed table's files: the rows a run replaced keep their
lineage and stay readable through ``replaced_rows``. The rows replaced are those of every
generation of the table (``engine.lake.generations``).

Concurrency: the replaced rows are computed from one snapshot of the manifest. A run
appended after it is not replaced (it comes after this run, as Delta's WriteSerializable
orders a blind append after a rewrite): its rows stay, none is lost. Two replace or merge
runs into one table must not both compute from the same snapshot: each commits with an
idempotency key per table (``lake-table-<name>``) set to the version it read plus one; a
run that finds the key moved on publishes again, from the fresh snapshot, under a new run
id (its first attempt's rows are orphans no reader counts). A replay moving rows into a table
with a unique key claims the same key (``engine.lake.replay``).
"""

from __future__ import annotations

import contextlib

import pyarrow as pa
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from engine.lake.datasets import dataset
from engine.lake.generations import generations
from engine.lake.location import Lake
from engine.lake.tables import (
    MANIFEST,
    MANIFEST_SCHEMA,
    REPLACED,
    ensure_table,
    open_table,
    write_failure,
)
from engine.lake.writer import Claim
from engine.store.ddl import quote
from engine.store.history import REPLACED_ROWS
from engine.store.store import Store

REPLACED_SCHEMA = pa.schema(
    [
        pa.field("target_table", pa.string()),
        pa.field("run_id", pa.int64()),
        pa.field("row_number", pa.int64()),
        pa.field("by_run_id", pa.int64()),
        pa.field("by_row_number", pa.int64()),
        pa.field("how", pa.string()),
        pa.field("batch", pa.int64()),
    ]
)
EMPTY_REPLACED = (
    "SELECT NULL::VARCHAR AS target_table, NULL::BIGINT AS run_id, NULL::BIGINT AS row_number, "
    "NULL::BIGINT AS by_run_id, NULL::BIGINT AS by_row_number, NULL::VARCHAR AS how WHERE false"
)
COMMITTED = "(SELECT DISTINCT run_id, batch FROM {manifest} WHERE status <> 'failed')"


def table_app_id(table: str) -> str:
    return f"lake-table-{table}"


def replaced_view(has_replaced: bool, manifest: str = "_manifest") -> str:
    """Rows replaced by a committed run (the reader's ``replaced_rows``)."""
    if not has_replaced:
        return EMPTY_REPLACED
    committed = COMMITTED.format(manifest=manifest)
    return (
        "SELECT target_table, run_id, row_number, by_run_id, by_row_number, how "
        f"FROM _lake_{REPLACED} AS r WHERE EXISTS (SELECT 1 FROM {committed} AS c "
        "WHERE c.run_id = r.by_run_id AND c.batch = r.batch)"
    )


def publish_replaced(
    lake: Lake,
    staging: Store,
    *,
    mode: str,
    table: str,
    key: tuple[str, ...],
    local_run: int,
    lake_run: int,
    lake_table: str | None = None,
) -> Claim:
    """Append the rows a ``replace`` or ``merge`` run replaces (orphans until its manifest
    row commits); returns the claim on the table its manifest commit must make. ``table``:
    the staged table; ``lake_table``: the lake's (by default the same name)."""
    target_table = lake_table or table
    manifest = ensure_table(lake, MANIFEST, MANIFEST_SCHEMA)
    seen = int(manifest.transaction_version(table_app_id(target_table)) or 0)
    # After the manifest: they hold every batch listed there.
    typed = generations(lake, target_table)
    replaced = open_table(lake, REPLACED)
    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {quote('_lake_' + g)}" for g, _ in typed)
    name, staged = target_table.replace("'", "''"), table.replace("'", "''")
    with staging.lock:
        con = staging.con
        con.register("_manifest", dataset(lake, MANIFEST, manifest))
        try:
            con.register(
                f"_lake_{REPLACED}",
                REPLACED_SCHEMA.empty_table()
                if replaced is None
                else dataset(lake, REPLACED, replaced),
            )
            for generation, opened in typed:
                con.register(f"_lake_{generation}", dataset(lake, generation, opened))
            head = f"SELECT '{name}' AS target_table"
            within = (
                f"{head}, {lake_run}::BIGINT AS run_id, row_number, {lake_run}::BIGINT, "
                f"by_row_number, 'merge', 0::BIGINT FROM {REPLACED_ROWS} WHERE by_run_id = "
                f"{int(local_run)} AND target_table = '{staged}'"
            )
            parts = [within]
            if typed:
                visible = (
                    f"SELECT * FROM ({union}) SEMI JOIN {COMMITTED.format(manifest='_manifest')} "
                    f"USING (run_id, batch) ANTI JOIN (SELECT run_id, row_number FROM "
                    f"({replaced_view(True)}) WHERE target_table = '{name}') "
                    "USING (run_id, row_number)"
                )
                if mode == "replace":
                    parts.append(
                        f"{head}, v.run_id, v.row_number, {lake_run}::BIGINT, NULL::BIGINT, "
                        f"'replace', 0::BIGINT FROM ({visible}) AS v"
                    )
                else:
                    on = " AND ".join(f"s.{quote(c)} = v.{quote(c)}" for c in key)
                    parts.append(
                        f"{head}, v.run_id, v.row_number, {lake_run}::BIGINT, s.row_number, "
                        f"'merge', 0::BIGINT FROM ({visible}) AS v JOIN {quote(table)} AS s "
                        f"ON s.run_id = {int(local_run)} AND {on}"
                    )
            rows = con.sql(" UNION ALL ".join(parts)).to_arrow_table()
        finally:
            for registered in ("_manifest", f"_lake_{REPLACED}", *(f"_lake_{g}" for g, _ in typed)):
                with contextlib.suppress(Exception):  # not registered: no typed table yet
                    con.unregister(registered)
    if rows.num_rows:
        target = ensure_table(lake, REPLACED, REPLACED_SCHEMA)
        data = pa.Table.from_arrays(
            [rows.column(i).cast(f.type) for i, f in enumerate(REPLACED_SCHEMA)],
            schema=REPLACED_SCHEMA,
        )
        try:
            write_deltalake(target, data, mode="append")
        except (CommitFailedError, DeltaError, OSError) as exc:
            raise write_failure(lake, f"cannot append to table {REPLACED}", exc) from exc
    return Claim(table_app_id(target_table), seen, seen + 1)
