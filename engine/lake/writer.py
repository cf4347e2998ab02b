"""Publishing a staged batch into the lake: data first, then the manifest row that makes it
visible, with Delta's idempotent-write records.

1. Each data table gets the batch's rows in one blind append (appends never conflict, so any
   number of writers append at once). Until step 2 they are orphans: no reader counts them.
2. One row in ``ingestion_batches`` commits the batch. Its commit carries a
   ``Transaction(app_id, version)`` per idempotency key: a file's content and schema
   (version 1), or a Kafka group's partition (version = the next offset). Before
   committing, the writer reads each key's ``transaction_version`` from the same
   ``DeltaTable`` it commits through: a key already at or past the batch's start means the
   batch (or part of it) is stored already, and nothing is committed. A concurrent commit in
   between makes delta-rs refuse ours (``Concurrent transaction``): the table is reloaded
   and the check made again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, SchemaMismatchError

from engine.errors import StoreError
from engine.lake.evolve import duckdb_columns, table_columns
from engine.lake.generations import GenerationMoved
from engine.lake.location import Lake
from engine.lake.tables import (
    ERRORS,
    KAFKA_LINEAGE,
    MANIFEST,
    MANIFEST_SCHEMA,
    RAW,
    ensure_table,
    write_failure,
)
from engine.store.ddl import quote
from engine.store.store import Store

BATCH_ROWS = 256 * 1024  # rows per Arrow batch handed to delta-rs
COMMIT_ATTEMPTS = 100
APPEND_ATTEMPTS = 20


@dataclass(frozen=True)
class Claim:
    """An idempotency key: the batch commits only if the key's stored version is at most
    ``after`` (nothing of the batch stored yet), and then sets it to ``version``."""

    app_id: str
    after: int
    version: int


@dataclass(frozen=True)
class StagedBatch:
    """Which staged rows make one lake batch: a staged run's rows (``where``: a condition on
    ``row_number``, for a Kafka batch), and how many of each kind there are."""

    local_run: int
    lake_run: int
    batch: int
    target_table: str
    rows: int
    valid: int
    invalid: int
    kafka: bool = False
    where: str = "TRUE"
    lake_table: str | None = None  # the typed table's generation (default: target_table)


def append_data(lake: Lake, staging: Store, staged: StagedBatch) -> None:
    """Step 1: append the batch's rows to each data table (orphans until the manifest).
    GenerationMoved: the typed rows' generation no longer has their types (nothing of the
    typed rows appended; the writer decides again, under a new batch)."""
    head = f"SELECT {int(staged.lake_run)}::BIGINT AS run_id, {int(staged.batch)}::BIGINT AS batch"
    only = f"WHERE run_id = {int(staged.local_run)} AND ({staged.where})"
    typed = staged.lake_table or staged.target_table
    parts = [
        (
            typed,
            f"{head}, * EXCLUDE (run_id) FROM {quote(staged.target_table)} {only}",
            staged.valid,
        ),
        (RAW, f"{head}, row_number, line_number, raw FROM raw_data {only}", staged.rows),
        (ERRORS, f"{head}, row_number, errors FROM ingestion_errors {only}", staged.invalid),
    ]
    if staged.kafka:
        parts.append((KAFKA_LINEAGE, f"{head}, * EXCLUDE (run_id) FROM kafka_lineage {only}", 1))
    for name, query, count in parts:
        for attempt in range(APPEND_ATTEMPTS):
            with staging.lock:
                data = staging.con.sql(f"{query} ORDER BY row_number").to_arrow_reader(BATCH_ROWS)
            try:
                last = attempt == APPEND_ATTEMPTS - 1
                if _append(lake, name, data, count, last=last, exact=name == typed):
                    break
            finally:
                data.close()  # a reader left open would block the staging connection
            time.sleep(random.uniform(0.01, 0.1))


def _append(
    lake: Lake, name: str, data: pa.RecordBatchReader, count: int, *, last: bool, exact: bool
) -> bool:
    """Append (merging the schema: a model's new fields are new nullable columns, checked by
    ``engine.lake.evolve`` beforehand, added even when no row is appended, as a DuckDB file's
    ``ALTER TABLE`` adds them); False when a concurrent change of the table's
    metadata (another writer's new column) refused it and it may be tried again. ``exact``
    (a typed table): every column the table has must have the data's type, or delta-rs would
    cast the values (GenerationMoved)."""
    _refuse_unsupported(lake, name, data.schema)
    table = ensure_table(lake, name, data.schema)
    if count == 0 and {f.name for f in data.schema} <= {f.name for f in table.schema().fields}:
        return True  # nothing to append; with new columns, an empty append adds them
    if exact:
        have = table_columns(table)
        given = duckdb_columns(data.schema)
        if any(have.get(column, kind) != kind for column, kind in given.items()):
            raise GenerationMoved(name)
    try:
        write_deltalake(table, data, mode="append", schema_mode="merge")
    except SchemaMismatchError as exc:
        raise StoreError(
            lake.uri,
            f"table {name!r} of the lake does not match the data ({exc})",
            hint="use another lake, or give the model another __table_name__",
        ) from exc
    except (CommitFailedError, DeltaError) as exc:
        if not last and any(word in str(exc) for word in ("oncurrent", "etadata")):
            return False
        raise write_failure(lake, f"cannot append to table {name}", exc) from exc
    except OSError as exc:
        raise write_failure(lake, f"cannot append to table {name}", exc) from exc
    return True


def commit_batch(
    lake: Lake,
    row: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    claims: tuple[Claim, ...] = (),
    marks: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Step 2: commit the batch's manifest row (or rows, in one commit: a replay's, one per
    run) with its claims, and ``marks`` (keys set to a version whatever they held). Returns
    {} once committed, else the claims found taken ({app_id: its stored version}); nothing is
    then committed."""
    rows = [dict(row)] if isinstance(row, Mapping) else [dict(r) for r in row]
    data = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    transactions = [Transaction(c.app_id, c.version) for c in claims]
    transactions += [Transaction(app_id, version) for app_id, version in (marks or {}).items()]
    for _attempt in range(COMMIT_ATTEMPTS):
        table = ensure_table(lake, MANIFEST, MANIFEST_SCHEMA)
        taken = {}
        for claim in claims:
            stored = table.transaction_version(claim.app_id)
            if stored is not None and stored > claim.after:
                taken[claim.app_id] = int(stored)
        if taken:
            return taken
        try:
            write_deltalake(
                table,
                data,
                mode="append",
                schema_mode="merge",  # a manifest from before load_mode gains the column
                commit_properties=CommitProperties(app_transactions=transactions or None),
            )
            return {}
        except (CommitFailedError, DeltaError) as exc:
            text = str(exc)
            if (
                not any(w in text for w in ("oncurrent", "etadata"))
                and "version" not in text.lower()
            ):
                raise write_failure(lake, "cannot commit to the lake's manifest", exc) from exc
        except OSError as exc:
            raise write_failure(lake, "cannot commit to the lake's manifest", exc) from exc
        time.sleep(random.uniform(0.005, 0.05))
    raise write_failure(
        lake, "cannot commit to the lake's manifest", RuntimeError("too many concurrent commits")
    )


def _refuse_unsupported(lake: Lake, table: str, schema: pa.Schema) -> None:
    for field in schema:
        kind = (
            "time"
            if pa.types.is_time(field.type)
            else "timedelta"
            if pa.types.is_interval(field.type) or pa.types.is_duration(field.type)
            else None
        )
        if kind is not None:
            raise StoreError(
                lake.uri,
                f"table {table!r}: column {field.name!r} holds a {kind}, which Delta Lake "
                "tables cannot hold",
                hint="store it in a DuckDB file (--db), or make the field a str",
            )
