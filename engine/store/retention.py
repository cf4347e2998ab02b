"""Retention and size: ``delete_run``, ``prune_raw`` and ``compact``, each recorded in
``store_actions`` with the space it reclaimed.

DuckDB frees the blocks of deleted rows at its next checkpoint and reuses them for new
rows; the file itself shrinks only when it is rewritten (``compact``). So ``delete_run`` and
``prune_raw`` report the bytes their blocks held (used blocks before and after, after a
checkpoint), and ``compact`` the file's size before and after.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import interrupts
from engine.errors import ConfigError, StoreError
from engine.store import raw_codec
from engine.store.ddl import INVALID_ROWS, KAFKA_LINEAGE, RUNS, SOURCE_ROWS, SOURCE_ROWS_DDL, quote
from engine.store.history import (
    PRUNED_RAW,
    REPLACED_ROWS,
    REPLAYED_ROWS,
    REPLAYS,
    STORE_ACTIONS,
    STORE_SETTINGS,
)
from engine.store.paths import database_path
from engine.store.store import Store


@dataclass(frozen=True)
class Reclaimed:
    """What an action did, and the space: bytes in used blocks and the file's size."""

    action: str
    note: str
    used_before: int
    used_after: int
    file_before: int
    file_after: int

    @property
    def reclaimed(self) -> int:
        """Bytes given back: to the system (``compact``), or to DuckDB for reuse; never less
        than 0 (a checkpoint may write new blocks for what a deletion left in a block it
        could not free: the before and after figures show that growth)."""
        if self.action == "compact":
            return max(0, self.file_before - self.file_after)
        return max(0, self.used_before - self.used_after)

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "note": self.note,
            "bytes_reclaimed": self.reclaimed,
            "used_bytes_before": self.used_before,
            "used_bytes_after": self.used_after,
            "file_bytes_before": self.file_before,
            "file_bytes_after": self.file_after,
        }


def used_bytes(store: Store) -> int:
    """Bytes in the database's used blocks, after a checkpoint (what is stored now)."""
    store.execute("CHECKPOINT")
    size = store.rows("SELECT block_size, used_blocks FROM pragma_database_size()")[0]
    return int(size[0]) * int(size[1])


def _finish(store: Store, result: Reclaimed, run_id: int | None = None) -> Reclaimed:
    """Record the action, then measure the database as the action leaves it: its own record
    (in ``store_actions``, with the figures measured before it) may take a new block."""
    with store.writing():
        _record(store, result, run_id)
    used = used_bytes(store)  # after a checkpoint: the file holds the record too
    return dataclasses.replace(result, used_after=used, file_after=_file_size(store.path))


def _record(store: Store, result: Reclaimed, run_id: int | None = None) -> None:
    store.execute(
        f"INSERT INTO {STORE_ACTIONS} VALUES (?, ?, ?, ?, ?, ?)",
        [
            result.action,
            run_id,
            datetime.now(UTC),
            result.note,
            result.used_before if result.action != "compact" else result.file_before,
            result.used_after if result.action != "compact" else result.file_after,
        ],
    )


def delete_run(store: Store, run_id: int) -> Reclaimed:
    """All of a run's rows (typed, invalid, raw, Kafka coordinates, replay and replace
    records), atomically; the run stays in ``ingestion_runs`` as ``deleted``. Refused for a
    run that replaced rows of earlier runs (``merge``, ``replace``): their typed values are
    not kept, so deleting it could not bring them back."""
    store.refuse_if_new()
    found = store.rows(f"SELECT status, target_table FROM {RUNS} WHERE run_id = ?", [run_id])
    if not found:
        raise StoreError(store.path, f"no run {run_id} in this database")
    status, target = str(found[0][0]), str(found[0][1])
    if status in ("deleted", "running"):
        raise StoreError(store.path, f"run {run_id} is {status}")
    replaced = store.rows(
        f"SELECT how, count(*) FROM {REPLACED_ROWS} WHERE by_run_id = ? AND run_id <> ? "
        "GROUP BY how ORDER BY how",
        [run_id, run_id],
    )
    if replaced:
        words = ", ".join(f"{n:,} by {how}" for how, n in replaced)
        raise StoreError(
            store.path,
            f"run {run_id} replaced rows of earlier runs ({words}); deleting it would not bring "
            "them back (only their raw text is kept)",
            hint="ingest the earlier content again after deleting it, or keep the run",
        )
    tables = {target} | {
        str(row[0])
        for row in store.rows(
            f"SELECT DISTINCT target_table FROM {REPLAYS} WHERE list_contains(runs, ?)", [run_id]
        )
    }
    tables = {t for t in tables if store.table_columns(t)}
    file_before, used_before = _file_size(store.path), used_bytes(store)
    counts: dict[str, int] = {}
    with store.writing(), store.transaction():
        for table in sorted(tables):
            counts[table] = _deleted(store, quote(table), run_id)
        for table in (INVALID_ROWS, SOURCE_ROWS, KAFKA_LINEAGE, REPLAYED_ROWS, PRUNED_RAW):
            counts[table] = _deleted(store, table, run_id)
        _deleted(store, REPLACED_ROWS, run_id)
        note = (
            f"deleted run {run_id}: {counts[SOURCE_ROWS]:,} raw rows, "
            f"{sum(counts[t] for t in tables):,} valid rows, {counts[INVALID_ROWS]:,} invalid rows"
        )
        store.execute(
            f"UPDATE {RUNS} SET status = 'deleted', message = ? WHERE run_id = ?",
            [f"{note} ({datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC; was {status})", run_id],
        )
        interrupts.committing()  # the command line holds a signal from here: kept
    result = Reclaimed(
        "delete-run", note, used_before, used_bytes(store), file_before, _file_size(store.path)
    )
    return _finish(store, result, run_id)


def _deleted(store: Store, table: str, run_id: int) -> int:
    found = store.rows(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
    return int(found[0][0]) if found else 0


def prune_raw(store: Store, older_than_days: float, *, now: datetime | None = None) -> Reclaimed:
    """Drop the raw text of the valid rows of runs that finished more than ``older_than_days``
    ago, keeping its SHA-256 in ``pruned_raw``. Invalid rows keep theirs (``replay`` reads
    it)."""
    if older_than_days < 0:
        raise ConfigError("--raw-older-than must be 0 days or more")
    store.refuse_if_new()
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    chosen = (
        f"FROM {SOURCE_ROWS} AS s WHERE s.raw IS NOT NULL AND s.run_id IN (SELECT run_id FROM "
        f"{RUNS} WHERE finished_at < ? AND status IN ('completed', 'interrupted')) "
        f"AND NOT EXISTS (SELECT 1 FROM {INVALID_ROWS} AS i "
        "WHERE i.run_id = s.run_id AND i.row_number = s.row_number)"
    )
    file_before, used_before = _file_size(store.path), used_bytes(store)
    with store.writing(), store.transaction():
        hashed = store.rows(
            f"INSERT INTO {PRUNED_RAW} SELECT s.run_id, s.row_number, sha256(s.raw), ? {chosen}",
            [datetime.now(UTC), cutoff],
        )
        pruned = int(hashed[0][0]) if hashed else 0
        store.execute(
            f"UPDATE {SOURCE_ROWS} AS t SET raw = NULL FROM {PRUNED_RAW} AS p "
            "WHERE t.run_id = p.run_id AND t.row_number = p.row_number AND t.raw IS NOT NULL",
        )
        interrupts.committing()
    note = (
        f"pruned the raw text of {pruned:,} valid rows of runs finished before "
        f"{cutoff:%Y-%m-%d %H:%M:%S} UTC (their SHA-256 kept in {PRUNED_RAW})"
    )
    result = Reclaimed(
        "prune", note, used_before, used_bytes(store), file_before, _file_size(store.path)
    )
    return _finish(store, result)


def _file_size(path: Path) -> int:
    size = path.stat().st_size if path.exists() else 0
    wal = Path(f"{path}.wal")
    return size + (wal.stat().st_size if wal.exists() else 0)


def compact(path: str | os.PathLike[str], *, raw_compression: str | None = None) -> Reclaimed:
    """Rewrite the database into a new file (DuckDB's ``COPY FROM DATABASE``: tables, views,
    sequences and column compressions) and put it in the old one's place; the file then
    holds only what is stored. ``raw_compression`` changes how the raw text is compressed
    (``raw_codec``). Needs the database to itself, and free disk space for a copy. Through
    a symlink, the file it leads to is rewritten (replacing the link broke it off)."""
    path = Path(os.path.realpath(database_path(path)))
    if raw_compression is not None:
        raw_codec.check(raw_compression)
    fresh = path.with_name(f".{path.name}.compacting")
    _remove(fresh)
    try:
        with Store(path, create=False) as store:
            used_before = used_bytes(store)
            file_before = _file_size(path)
            codec_before = raw_codec.stored_codec(store.con)
            codec = raw_compression or codec_before
            with store.writing():
                name = quote(str(store.rows("SELECT current_database()")[0][0]))
                store.execute(f"ATTACH '{_sql_text(str(fresh))}' AS __compacted")
                try:
                    store.execute(f"COPY FROM DATABASE {name} TO __compacted (SCHEMA)")
                    if codec != codec_before:
                        store.execute(f"DROP TABLE __compacted.{SOURCE_ROWS}")
                        store.execute(
                            raw_codec.with_codec(SOURCE_ROWS_DDL, codec).replace(
                                f"EXISTS {SOURCE_ROWS}", f"EXISTS __compacted.{SOURCE_ROWS}"
                            )
                        )
                    store.execute(f"COPY FROM DATABASE {name} TO __compacted (DATA)")
                    store.execute(
                        f"INSERT OR REPLACE INTO __compacted.{STORE_SETTINGS} VALUES (?, ?)",
                        [raw_codec.SETTING, codec],
                    )
                finally:
                    store.execute("DETACH __compacted")
        os.chmod(fresh, stat.S_IMODE(path.stat().st_mode))  # a 600 database stays 600
        interrupts.committing()  # the command line holds a signal from here: kept
    except BaseException:  # interrupted or failed: no half-written copy left beside it
        _remove(fresh)
        raise
    os.replace(fresh, path)
    fresh_wal = Path(f"{fresh}.wal")
    if fresh_wal.exists():  # DETACH checkpoints, so normally none
        os.replace(fresh_wal, Path(f"{path}.wal"))
    note = "rewrote the database" + (
        f"; raw text now {codec} (was {codec_before})" if codec != codec_before else ""
    )
    with Store(path) as store:
        result = Reclaimed(
            "compact", note, used_before, used_bytes(store), file_before, _file_size(path)
        )
        result = _finish(store, result)
    return dataclasses.replace(result, file_after=_file_size(path))  # as closed


def _remove(fresh: Path) -> None:
    for leftover in (fresh, Path(f"{fresh}.wal")):
        leftover.unlink(missing_ok=True)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")
