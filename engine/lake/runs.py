"""A file run (or rows in memory) into the lake: staged through the one data path, then
published as one batch whose manifest commit decides, across all writers, whether this
content and schema were stored before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import EngineError, neutral_spelling
from engine.gate import QualityGate
from engine.lake.datasets import query
from engine.lake.evolve import check_fit, duckdb_columns, record_version, version_row
from engine.lake.generations import GenerationMoved
from engine.lake.ids import new_run_id
from engine.lake.keys import Tentative, check_stored_keys, name_run
from engine.lake.location import Lake
from engine.lake.modes import publish_replaced
from engine.lake.staging import Staging
from engine.lake.tables import MANIFEST, open_table, write_failure
from engine.lake.targets import lake_target, new_table_claim
from engine.lake.writer import Claim, StagedBatch, append_data, commit_batch
from engine.outcomes import RunSummary, Tally
from engine.store.ddl import quote
from engine.store.store import Store
from engine.validation.compiler import CompiledSchema


def file_app_id(content_hash: str, fingerprint: str, fmt: str) -> str:
    """The idempotency key of a content read one way under one schema version (as the
    DuckDB store decides it: CSV, or the rows as JSON records)."""
    read_as = "csv" if fmt == "csv" else "records"
    key = f"{content_hash}|{fingerprint}|{read_as}"
    return "ingest-file-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def ingest_into_lake(
    lake: Lake,
    run: Callable[[Store], RunSummary],
    *,
    fingerprint: str,
    force: bool,
    staging_dir: Path | None = None,
    schema: CompiledSchema | None = None,
    mode: str = "append",
    new_table: bool = False,
    gate: QualityGate | None = None,
) -> RunSummary:
    """``run`` stores into a staging DuckDB file (seeded with the lake's runs of schema
    version ``fingerprint``); what it committed there is then published into the lake.
    ``schema``: the model compiled, to fit the lake's table to it (schema evolution: refused
    here, before anything is read, when the table cannot take it); ``mode``: the load mode
    the run was staged with (``append``, ``replace``, ``merge``); ``new_table``: store the
    rows in a new table (``engine.lake.targets``; ``run`` must stage without it); ``gate``: the
    run's quality gate, decided again when the publish finds duplicates of stored keys."""
    following, declared = None, schema
    if schema is not None:
        schema, following = lake_target(lake, schema, new_table=new_table)
        check_fit(lake, schema, next_table=following)
    with Staging(lake, staging_dir) as staging:
        staging.seed(fingerprint, latest_per_table=mode != "append")
        if schema is not None:
            staging.redirect(schema)
        try:
            summary = run(staging.store)
            if summary.status == "skipped" or summary.run_id is None:
                return summary
            return _publish(
                lake,
                staging,
                summary,
                force=force,
                schema=schema,
                mode=mode,
                following=following,
                new_table_schema=declared if new_table else None,
                gate=gate,
            )
        except BaseException as exc:
            _record_failure(lake, staging, exc)
            raise


PUBLISH_ATTEMPTS = 20
NEVER_TAKEN = 1 << 62  # a replace or merge run sets its content's key, whatever it was


def _publish(
    lake: Lake,
    staging: Staging,
    summary: RunSummary,
    *,
    force: bool,
    schema: CompiledSchema | None,
    mode: str,
    following: str | None = None,
    new_table_schema: CompiledSchema | None = None,
    gate: QualityGate | None = None,
) -> RunSummary:
    """``new_table_schema``: the schema as declared, when the run asked for a new table (which
    another writer may take first: the run then decides again, and takes the next one)."""
    assert summary.run_id is not None
    row = staging.run_row(summary.run_id)
    staged_table = table = str(row["target_table"])
    with staging.store.lock:
        shape = staging.store.con.sql(
            f"SELECT * EXCLUDE (run_id) FROM {quote(staged_table)} LIMIT 0"
        ).to_arrow_table()
    wanted = duckdb_columns(shape.schema)
    created: set[str] = set()  # the tables this run's appends created
    lost: set[str] = set()  # new tables another writer's run committed first
    keyed = mode == "append" and schema is not None and bool(schema.unique)
    for _attempt in range(PUBLISH_ATTEMPTS):
        fresh = new_table_schema
        if fresh is not None and schema is not None and _taken(lake, table, created, lost):
            schema, following = lake_target(lake, fresh, new_table=True)
            table = schema.table
        # Checked again: another writer may have changed the table since the run started.
        fit = check_fit(lake, schema, wanted, next_table=following) if schema is not None else None
        existed = open_table(lake, table) is not None and table not in created
        lake_run = new_run_id()
        with Tentative(staging.store) as stage:  # what it changes in the stage: this attempt's
            claims: tuple[Claim, ...] = ()
            if fresh is not None:
                claims = (new_table_claim(table),)
            duplicates, verdict = Tally(), summary.gate
            if schema is not None and schema.unique:
                name_run(staging.store, summary.run_id, summary.run_id, lake_run)
            if keyed and schema is not None:
                check = check_stored_keys(
                    lake, staging.store, schema, staged_table, summary.run_id, table, lake_run
                )
                claims += (check.claim,)
                duplicates = Tally(0, -check.moved, check.moved, 0, check.errors())
            row = staging.run_row(summary.run_id)
            if duplicates.invalid and gate is not None:  # decided again with the duplicates
                verdict = gate.check(int(row["rows_total"]), int(row["rows_invalid"]))
                row["message"] = verdict
            if mode != "append" and schema is not None:
                claims += (
                    publish_replaced(
                        lake,
                        staging.store,
                        mode=mode,
                        table=staged_table,
                        key=schema.unique,
                        local_run=summary.run_id,
                        lake_run=lake_run,
                        lake_table=table,
                    ),
                )
            staged = StagedBatch(
                summary.run_id,
                lake_run,
                0,
                staged_table,
                int(row["rows_total"]),
                int(row["rows_valid"]),
                int(row["rows_invalid"]),
                lake_table=table if fit is None else fit.generation,
            )
            try:
                append_data(lake, staging.store, staged)
            except GenerationMoved:
                continue  # another writer started that generation with other types: again
            if not existed:
                created.add(table)
            if schema is not None and fit is not None:
                record_version(
                    lake,
                    version_row(lake, schema, fit.plan, existed=existed, run_id=lake_run, batch=0),
                )
            content = None
            if not force and row["content_hash"] is not None:
                app_id = file_app_id(row["content_hash"], row["schema_fingerprint"], row["format"])
                content = Claim(app_id, 0 if mode == "append" else NEVER_TAKEN, 1)
                claims = (content, *claims)
            now = datetime.now(UTC)
            duration = (now - row["started_at"]).total_seconds()
            record = {
                **row,
                "target_table": table,
                "run_id": lake_run,
                "batch": 0,
                "finished_at": now,
                "duration_s": duration,
                "batch_rows": row["rows_total"],
                "committed_at": now,
            }
            taken = commit_batch(lake, record, claims)
            if not taken:
                stage.keep()
                tally = Tally()
                tally.add(summary.tally)
                tally.add(duplicates)
                return dataclasses.replace(
                    summary,
                    run_id=lake_run,
                    duration_s=duration,
                    tally=tally,
                    message=verdict or "",
                    gate=verdict,
                )
        if new_table_claim(table).app_id in taken:
            lost.add(table)  # another run started the same new table first: decide again
        if content is None or content.app_id not in taken:
            continue  # another keyed append, replace or merge into the table came first: again
        previous = previous_run(lake, row) or 0
        return RunSummary(
            None,
            summary.path,
            "skipped",
            Tally(),
            (datetime.now(UTC) - row["started_at"]).total_seconds(),
            f"already ingested as run {previous} with the same schema",
            previous_run=previous,
            format=summary.format,
        )
    raise write_failure(
        lake,
        f"cannot publish the run into table {table}",
        RuntimeError(
            f"{PUBLISH_ATTEMPTS} concurrent keyed, replace, merge or widening runs came first"
        ),
    )


def _taken(lake: Lake, table: str, created: set[str], lost: set[str]) -> bool:
    """Whether another writer took the new table this run chose: it started it, or its run
    into it committed first."""
    return table in lost or (table not in created and open_table(lake, table) is not None)


def previous_run(lake: Lake, row: dict[str, Any]) -> int | None:
    """The first completed lake run of the same content, schema and reading."""
    manifest = open_table(lake, MANIFEST)
    if manifest is None:
        return None
    found = query(
        lake,
        {"manifest": (MANIFEST, manifest)},
        "SELECT run_id FROM manifest WHERE status = 'completed' AND content_hash = ? "
        "AND schema_fingerprint = ? AND (format = 'csv') = ? ORDER BY committed_at LIMIT 1",
        [row["content_hash"], row["schema_fingerprint"], row["format"] == "csv"],
    )
    return int(found[0][0]) if found else None


def _record_failure(lake: Lake, staging: Staging, exc: BaseException) -> None:
    """A run that failed is recorded in the lake as failed (no data), if the lake takes it;
    whatever goes wrong here, the run's own error is the one raised."""
    try:
        local = staging.last_local_run()
        row = None if local is None else staging.run_row(local)
    except Exception:
        return
    if row is None:
        return
    text = exc.render(neutral_spelling) if isinstance(exc, EngineError) else str(exc)
    message = row["message"] if row["status"] == "failed" else f"{type(exc).__name__}: {text}"
    lake_run = new_run_id()
    now = datetime.now(UTC)
    record = {
        **row,
        "run_id": lake_run,
        "batch": 0,
        "status": "failed",
        "rows_total": 0,
        "rows_valid": 0,
        "rows_invalid": 0,
        "rows_python": 0,
        "blank_lines": 0,
        "message": (message or "")[:2000],
        "finished_at": now,
        "duration_s": (now - row["started_at"]).total_seconds(),
        "batch_rows": 0,
        "committed_at": now,
    }
    with contextlib.suppress(Exception):
        commit_batch(lake, record)
        if isinstance(exc, EngineError):
            exc.run_id = lake_run
