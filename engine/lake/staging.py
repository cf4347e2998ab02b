"""A run's private staging DuckDB file: where the one data path stores it before publishing.

The pipeline (``engine.pipeline``) validates and stores into this file exactly as into a
user's DuckDB file, so a lake run has the same verdicts, lineage and figures by
construction. The lake's completed file runs of the same schema are copied into its
``ingestion_runs`` first, so the pipeline's own check (before reading a plain file, and at
the commit) finds content already in the lake and reports the run skipped with the lake's
run id.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from engine.lake.datasets import query
from engine.lake.location import Lake
from engine.lake.tables import MANIFEST, open_table
from engine.store.ddl import RUNS
from engine.store.history import SCHEMA_VERSIONS
from engine.store.store import Store
from engine.validation.compiler import CompiledSchema
from engine.validation.storage_options import table_name

# The columns of a lake run that the pipeline's idempotency check reads.
KNOWN_COLUMNS = (
    "run_id",
    "source_kind",
    "source_path",
    "format",
    "schema_name",
    "schema_fingerprint",
    "target_table",
    "content_hash",
    "quick_hash",
    "file_size",
    "started_at",
    "status",
)
# Local (staging) run ids come from the file's sequence, from 1; lake run ids are far above.
LOCAL_IDS_BELOW = 1 << 40


PREFIX = "ingest-lake-"


def remove_stale(directory: Path) -> list[Path]:
    """Remove staging directories left by processes that died (``kill -9``): each is named
    after its process, which no longer runs."""
    removed = []
    for path in directory.glob(f"{PREFIX}*-*"):
        pid = path.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and path.is_dir() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Staging:
    """A temporary DuckDB file (removed on exit) seeded with the lake's completed file runs."""

    def __init__(self, lake: Lake, directory: Path | None = None) -> None:
        self.lake = lake
        root = Path(directory or tempfile.gettempdir())
        remove_stale(root)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
        try:
            self.store = Store(self.directory / "staging.duckdb")
            self.store.execute("SET TimeZone = 'UTC'")
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    def seed(self, fingerprint: str, *, latest_per_table: bool = False) -> None:
        """Copy the lake's completed file runs of schema version ``fingerprint`` (and, for
        a replace or merge run, the latest completed run into each table, whatever its
        schema: only content that run stored is unchanged by loading it again)."""
        manifest = open_table(self.lake, MANIFEST)
        if manifest is None:
            return
        columns = ", ".join(KNOWN_COLUMNS)
        known = query(
            self.lake,
            {"manifest": (MANIFEST, manifest)},
            f"SELECT DISTINCT ON (run_id) {columns} FROM manifest "
            "WHERE status = 'completed' AND ((source_kind = 'file' "
            "AND schema_fingerprint = ?) OR (? AND run_id IN (SELECT max(run_id) "
            "FROM manifest WHERE status = 'completed' GROUP BY target_table)))",
            [fingerprint, latest_per_table],
        )
        if known:
            marks = ", ".join("?" for _ in KNOWN_COLUMNS)
            with self.store.lock:
                self.store.con.executemany(
                    f"INSERT INTO {RUNS} ({columns}) VALUES ({marks})", [list(r) for r in known]
                )

    def redirect(self, schema: CompiledSchema) -> None:
        """Make the pipeline store this schema version's rows into ``schema.table``, the
        table the lake chose for it (``engine.lake.targets``): as if the version wrote there
        before."""
        declared = table_name(schema.model)
        if schema.table == declared:
            return
        self.store.execute(
            f"INSERT INTO {SCHEMA_VERSIONS} (schema_fingerprint, schema_name, declared_table, "
            "target_table, version, created_at) VALUES (?, ?, ?, ?, 1, now())",
            [schema.fingerprint, schema.name, declared, schema.table],
        )

    def run_row(self, run_id: int) -> dict[str, Any]:
        """A staged run's ``ingestion_runs`` row, by column."""
        with self.store.lock:
            cursor = self.store.con.execute(f"SELECT * FROM {RUNS} WHERE run_id = ?", [run_id])
            names = [d[0] for d in cursor.description or ()]
            rows = cursor.fetchall()
        found = rows[0] if rows else None
        if found is None:
            raise LookupError(f"no staged run {run_id}")
        return dict(zip(names, found, strict=True))

    def last_local_run(self) -> int | None:
        rows = self.store.rows(
            f"SELECT max(run_id) FROM {RUNS} WHERE run_id < ?", [LOCAL_IDS_BELOW]
        )
        return None if rows[0][0] is None else int(rows[0][0])

    def close(self) -> None:
        try:
            self.store.con.close()  # nothing to checkpoint: the file is thrown away
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
