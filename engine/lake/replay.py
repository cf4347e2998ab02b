"""``replay`` on a lake: the rows that now pass, published as one batch per replay.

The invalid rows (their raw text, and a CSV run's recorded header and dialect) are read
through the lake reader and validated again by the DuckDB store's own path
(``engine.replaying.passing``). The rows that pass are stored, as a run's are, into a
private staging DuckDB file (so their columns are the typed table's), then published like a
run: appended, under their original ``run_id`` and ``row_number`` and the batch
``replay_id``, to the typed table, their invalid-row records to ``replayed_rows`` and the
replay to ``replays``, all orphans until one manifest commit adds, for each run replayed, a
row ``(run_id, replay_id)`` with the run's new counts. Readers then show the rows in the
typed table, no longer in ``ingestion_errors`` / ``error_details``, and the run's new
``rows_valid`` / ``rows_invalid`` (``ingestion_runs`` shows a run's latest batch): all of
it or none of it. Nothing is deleted.

Concurrency: the invalid rows are read from one snapshot. The commit claims, per run, the
idempotency key ``lake-replay-<run_id>`` at the version read with that snapshot plus one: of
two replays of one run from the same snapshot, one commits and the other finds the key
moved on, reads again (the rows the first moved are gone from ``ingestion_errors``) and
publishes what is left, under a new replay id (its first attempt's rows are orphans no
reader counts). A row is moved once.

A unique key (``__unique__``) is checked as a DuckDB file's replay checks it: against the
rows the lake shows, then against the rows this replay moves from the runs before (in
``run_id`` order, staged in the staging file's typed table before the next run is checked).
A replay that moves rows into a keyed table also claims the table's key that merge and
replace runs claim (``lake-table-<name>``, ``engine.lake.modes``): of replays of different
runs at once, or a replay and a merge, one commits and the other reads again, so a key is
stored once, as when a DuckDB file's writers take turns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from pydantic import BaseModel

from engine.errors import StoreError
from engine.lake.evolve import check_fit, record_version, version_row
from engine.lake.generations import GenerationMoved
from engine.lake.ids import new_run_id
from engine.lake.location import Lake
from engine.lake.modes import table_app_id
from engine.lake.reader import open_lake_reader
from engine.lake.staging import Staging
from engine.lake.tables import MANIFEST, MANIFEST_SCHEMA, ensure_table, open_table, write_failure
from engine.lake.targets import lake_target
from engine.lake.writer import Claim, StagedBatch, append_data, commit_batch
from engine.pipeline import prepare_schema
from engine.replaying import ReplayResult, ReplayRun, edits_of, passing, replayable
from engine.store.ddl import ERRORS, RUNS
from engine.store.history import REPLAYED_ROWS, REPLAYS
from engine.store.store import Store
from engine.store.uniqueness import split_duplicates
from engine.validation.compiler import CompiledSchema, compile_schema

ATTEMPTS = 20
REPLAYS_SCHEMA = pa.schema(
    [
        pa.field("replay_id", pa.int64()),
        pa.field("schema_fingerprint", pa.string()),
        pa.field("target_table", pa.string()),
        pa.field("runs", pa.list_(pa.int64())),
        pa.field("where_sql", pa.string()),
        pa.field("replayed_at", pa.timestamp("us", tz="UTC")),
        pa.field("rows_checked", pa.int64()),
        pa.field("rows_moved", pa.int64()),
    ]
)


def replay_app_id(run_id: int) -> str:
    return f"lake-replay-{int(run_id)}"


def replay_lake(
    lake: Lake,
    model: type[BaseModel],
    *,
    runs: Sequence[int] | None = None,
    where: str | None = None,
    context: Mapping[str, Any] | None = None,
    edits: Mapping[tuple[int, int], str] | None = None,
    staging_dir: Path | None = None,
) -> ReplayResult:
    """``engine.replaying.replay`` on a lake (same arguments, same result)."""
    context = dict(context or {})
    if edits is not None and runs is None:
        runs = sorted({run_id for run_id, _ in edits})
    for _attempt in range(ATTEMPTS):
        ids = list(runs) if runs is not None else _failed_runs(lake)
        # The table the model's rows go to in the lake (a --new-table's), for the pipeline.
        aimed, _ = lake_target(lake, compile_schema(model, typed=False, context=context))
        apps = [replay_app_id(r) for r in ids] + _keyed(aimed)
        manifest = ensure_table(lake, MANIFEST, MANIFEST_SCHEMA)  # before the reader's snapshot
        seen = {a: int(manifest.transaction_version(a) or 0) for a in apps}
        result = _attempt_replay(
            lake, model, aimed, ids, runs is None, where, context, edits, seen, staging_dir
        )
        if result is not None:
            return result
        # else another replay came first, or another writer started the generation chosen
    raise write_failure(
        lake, "cannot publish the replay", RuntimeError(f"{ATTEMPTS} concurrent replays came first")
    )


def _keyed(aimed: CompiledSchema) -> list[str]:
    """The key of a table with a unique key (``__unique__``) that merge and replace runs
    claim (``lake-table-<name>``): a replay moving rows into it claims it too, so that it
    takes turns with them and with replays of other runs, each checking keys against the
    rows the ones before stored."""
    return [table_app_id(aimed.table)] if aimed.unique else []


def _attempt_replay(
    lake: Lake,
    model: type[BaseModel],
    aimed: CompiledSchema,
    runs: Sequence[int],
    all_failed: bool,
    where: str | None,
    context: Mapping[str, Any],
    edits: Mapping[tuple[int, int], str] | None,
    seen: Mapping[str, int],
    staging_dir: Path | None,
) -> ReplayResult | None:
    """One try from one snapshot; None when another replay of one of the runs came first (or
    another writer started the generation chosen with other types)."""
    reader = open_lake_reader(lake)
    try:
        chosen = _runs(reader, runs, all_failed)
        with Staging(lake, staging_dir) as staging:
            staging.redirect(aimed)
            schemas = {
                typed: prepare_schema(staging.store, model, typed=typed, context=context)
                for typed in {run.fmt != "csv" for run in chosen}
            }
            fits = {typed: check_fit(lake, schema) for typed, schema in schemas.items()}
            table = next(iter(schemas.values())).table if schemas else ""
            replay_id = new_run_id()
            by_run: dict[int, tuple[int, int]] = {}
            moved_rows: dict[int, pl.DataFrame] = {}
            formats = {run.run_id: run.fmt != "csv" for run in chosen}
            for run in chosen:
                schema = schemas[run.fmt != "csv"]
                mine = edits_of(edits, run.run_id)
                checked, valid = _passing(reader, staging.store, schema, run, where, mine)
                by_run[run.run_id] = (checked, valid.height)
                if valid.height:
                    moved_rows[run.run_id] = valid
                    # Staged before the next run is checked: its keys are then taken.
                    staging.store.append(table, valid, run_id=run.run_id)
            checked = sum(c for c, _ in by_run.values())
            moved = sum(m for _, m in by_run.values())
            unused = (len(edits) - checked) if edits is not None else 0
            ran = tuple(r.run_id for r in chosen)
            if checked == 0:
                return ReplayResult(None, table, ran, 0, 0, by_run, unused)
            existed = {s.table: open_table(lake, s.table) is not None for s in schemas.values()}
            for run_id, valid in moved_rows.items():
                staged = StagedBatch(
                    run_id,
                    run_id,
                    replay_id,
                    table,
                    0,
                    valid.height,
                    0,
                    lake_table=fits[formats[run_id]].generation,
                )
                try:
                    append_data(lake, staging.store, staged)
                except GenerationMoved:
                    return None  # another writer started that generation with other types
            for typed in schemas:
                if not any(formats[run_id] == typed for run_id in moved_rows):
                    # No row moved under this version: its new columns are added all the same.
                    staged = StagedBatch(
                        0, 0, replay_id, table, 0, 0, 0, lake_table=fits[typed].generation
                    )
                    try:
                        append_data(lake, staging.store, staged)
                    except GenerationMoved:
                        return None

            _append_records(lake, reader, moved_rows, replay_id, edits)
            for typed, schema in schemas.items():  # the version that validated the rows
                row = version_row(
                    lake,
                    schema,
                    fits[typed].plan,
                    existed=existed[schema.table],
                    run_id=ran[0],
                    batch=replay_id,
                )
                record_version(lake, row)
            fingerprint = next(iter(schemas.values())).fingerprint
            _append(
                lake,
                REPLAYS,
                pa.Table.from_pylist(
                    [
                        {
                            "replay_id": replay_id,
                            "schema_fingerprint": fingerprint,
                            "target_table": table,
                            "runs": list(ran),
                            "where_sql": where,
                            "replayed_at": datetime.now(UTC),
                            "rows_checked": checked,
                            "rows_moved": moved,
                        }
                    ],
                    schema=REPLAYS_SCHEMA,
                ),
            )
            rows = _manifest_rows(reader, by_run, replay_id)
        apps = [replay_app_id(r) for r in by_run if by_run[r][0]]
        if moved:  # a replay that moves no row changes no key another writer checks
            apps += _keyed(aimed)
        claims = tuple(Claim(a, seen[a], seen[a] + 1) for a in apps)
        if commit_batch(lake, rows, claims):
            return None
        return ReplayResult(replay_id, table, ran, checked, moved, by_run, unused)
    finally:
        reader.close()


def _failed_runs(lake: Lake) -> list[int]:
    """The runs that have invalid rows left (for ``--all-failed``)."""
    reader = open_lake_reader(lake)
    try:
        rows = reader.rows(f"SELECT DISTINCT run_id FROM {ERRORS} ORDER BY run_id")
    finally:
        reader.close()
    return [int(r[0]) for r in rows]


def _runs(reader: Store, runs: Sequence[int], all_failed: bool) -> list[ReplayRun]:
    rows = reader.rows(
        f"SELECT run_id, format, read_options, status FROM {RUNS} WHERE run_id IN "
        "(SELECT unnest(?)) ORDER BY run_id",
        [list(runs)],
    )
    missing = sorted(set(runs) - {int(r[0]) for r in rows})
    if missing and not all_failed:
        raise StoreError(reader.path, f"no run {missing[0]} in this lake")
    return replayable(rows, reader.path, skip=all_failed)


def _passing(
    reader: Store,
    staged: Store,
    schema: CompiledSchema,
    run: ReplayRun,
    where: str | None,
    edits: Mapping[int, str] | None,
) -> tuple[int, pl.DataFrame]:
    """(rows checked, the rows that pass) of one run; a unique key is checked, as a DuckDB
    file's replay checks it, against the rows the lake shows, the rows this replay moves
    from the runs before this one (``staged``: the staging file's typed table) and the
    run's own rows before them."""
    checked, parts = 0, []
    # On a lake every invalid row's raw text is in ingestion_errors: ``TRUE`` selects them all.
    for count, valid in passing(reader, schema, run, where or "TRUE", edits):
        checked += count
        if valid.height:
            parts.append(valid)
    if not parts:
        return checked, pl.DataFrame()
    valid = pl.concat(parts, how="diagonal_relaxed")
    if schema.unique:
        for store in (reader, staged):
            valid, _ = split_duplicates(
                store, schema.table, schema.unique, schema.unique_loc, run.run_id, valid
            )
    return checked, valid


def _append(lake: Lake, name: str, data: pa.Table) -> None:
    """A blind append (an orphan until the replay's manifest rows commit)."""
    table = ensure_table(lake, name, data.schema)
    try:
        write_deltalake(table, data, mode="append")
    except (CommitFailedError, DeltaError, OSError) as exc:
        raise write_failure(lake, f"cannot append to table {name}", exc) from exc


def _append_records(
    lake: Lake,
    reader: Store,
    moved: Mapping[int, pl.DataFrame],
    replay_id: int,
    edits: Mapping[tuple[int, int], str] | None,
) -> None:
    """The moved rows' invalid-row records (their errors, and an edited row's corrected
    text) into ``replayed_rows``, batch ``replay_id``."""
    if not moved:
        return
    keys = pl.concat(
        [
            frame.select(pl.lit(run_id, pl.Int64).alias("run_id"), "row_number")
            for run_id, frame in moved.items()
        ]
    )
    keys = keys.with_columns(
        pl.Series(
            "edited",
            [(edits or {}).get((r, n)) for r, n in keys.iter_rows()],
            pl.String,
        )
    )
    query = (
        f"SELECT e.run_id, e.row_number, {int(replay_id)}::BIGINT AS replay_id, e.errors, "
        f"m.edited AS raw, {int(replay_id)}::BIGINT AS batch FROM {ERRORS} AS e "
        "JOIN __moved AS m USING (run_id, row_number) ORDER BY run_id, row_number"
    )
    with reader.lock:
        relation = reader.con.from_arrow(keys.to_arrow()).query("__moved", query)
        assert relation is not None
        arrow = relation.to_arrow_table()
    _append(lake, REPLAYED_ROWS, arrow)


def _manifest_rows(
    reader: Store, by_run: Mapping[int, tuple[int, int]], replay_id: int
) -> list[dict[str, Any]]:
    """A manifest row per run checked: its latest row, with the counts after the replay."""
    now = datetime.now(UTC)
    rows = []
    for run_id, (checked, moved) in by_run.items():
        if not checked:
            continue
        with reader.lock:
            cursor = reader.con.execute(
                f"SELECT * FROM {MANIFEST} WHERE run_id = ? ORDER BY batch DESC LIMIT 1", [run_id]
            )
            names = [d[0] for d in cursor.description or ()]
            found = cursor.fetchall()
        row = dict(zip(names, found[0], strict=True))
        row.update(
            batch=replay_id,
            rows_valid=int(row["rows_valid"]) + moved,
            rows_invalid=int(row["rows_invalid"]) - moved,
            batch_rows=0,
            committed_at=now,
            offsets=None,
        )
        rows.append(row)
    return rows
