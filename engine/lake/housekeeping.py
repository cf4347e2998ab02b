"""Housekeeping while writers run: compacting small files, removing old ones.

``compact`` rewrites each table's small files (a Kafka micro-batch appends a few small
files per table) into large ones with Delta's OPTIMIZE: a commit that removes and adds files
with the same rows, which readers and concurrent appends do not notice (blind appends never
conflict with it; a conflicting one is retried by delta-rs, and a table whose compaction
still conflicts is reported and left for the next time).

``vacuum`` deletes files no version newer than ``older_than`` references (those compaction
replaced, and orphans no commit names), as Delta's VACUUM does. A reader that started
before and still reads an old version may lose files under it: keep ``older_than`` longer
than the longest read (the default, a week, as Delta's). Rows of a writer that died before
its manifest commit stay in files the tables name; they are never counted (readers go
through the manifest) and take space until a future cleanup rewrites them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import unquote, urlsplit

import pyarrow.fs as pa_fs
from deltalake.exceptions import CommitFailedError, DeltaError

from engine.errors import StoreError
from engine.lake.datasets import query, s3_filesystem
from engine.lake.generations import generations
from engine.lake.location import Lake
from engine.lake.tables import LAKE_TABLES, MANIFEST, open_table, write_failure


@dataclass(frozen=True)
class TableWork:
    table: str
    files_removed: int
    files_added: int
    problem: str = ""


def tables(lake: Lake) -> list[str]:
    """The lake's tables: the manifest, the fixed ones and every generation of each typed
    table it names."""
    manifest = open_table(lake, MANIFEST)
    if manifest is None:  # a typo: as the read commands say, not "nothing to do"
        raise StoreError(
            lake.uri,
            "no lake here (it has no ingestion_batches table)",
            hint="run an ingestion into it first, or give another URI",
        )
    found = query(
        lake, {"manifest": (MANIFEST, manifest)}, "SELECT DISTINCT target_table FROM manifest"
    )
    typed = [g for r in sorted(str(r[0]) for r in found) for g, _ in generations(lake, r)]
    return [name for name in LAKE_TABLES if open_table(lake, name) is not None] + typed


def compact(lake: Lake, *, target_size: int | None = None) -> list[TableWork]:
    """Rewrite each table's small files into large ones (Delta's OPTIMIZE compact)."""
    done = []
    for name in tables(lake):
        table = open_table(lake, name)
        assert table is not None
        try:
            metrics = table.optimize.compact(target_size=target_size)
        except (CommitFailedError, DeltaError) as exc:
            if "oncurrent" in str(exc):
                done.append(TableWork(name, 0, 0, "a concurrent commit conflicted; try again"))
                continue
            raise write_failure(lake, f"cannot compact table {name}", exc) from exc
        except OSError as exc:
            raise write_failure(lake, f"cannot compact table {name}", exc) from exc
        done.append(TableWork(name, int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"])))
    return done


def vacuum(lake: Lake, *, older_than: timedelta, dry_run: bool = False) -> dict[str, list[str]]:
    """Delete the files of each table no version younger than ``older_than`` needs; says
    which were there to delete (delta-rs names every file its tombstones list, including
    those an earlier vacuum deleted). Delta's retention is in whole hours: ``older_than`` is
    rounded up (90m keeps 2 hours, 59m one), never down, so a file is never deleted younger
    than asked."""
    hours = max(0, math.ceil(older_than.total_seconds() / 3600))
    removed: dict[str, list[str]] = {}
    for name in tables(lake):
        table = open_table(lake, name)
        assert table is not None
        try:
            listed = table.vacuum(
                retention_hours=hours, dry_run=True, enforce_retention_duration=False
            )
            present = existing(lake, name, list(listed))
            if present and not dry_run:
                deleted = table.vacuum(
                    retention_hours=hours, dry_run=False, enforce_retention_duration=False
                )
                present = [path for path in present if path in set(deleted)]
        except (DeltaError, OSError) as exc:
            raise write_failure(lake, f"cannot vacuum table {name}", exc) from exc
        removed[name] = present
    return removed


def existing(lake: Lake, name: str, files: list[str]) -> list[str]:
    """Those of ``files`` (paths in table ``name``) that exist."""
    if not files:
        return []
    uri = urlsplit(lake.table_uri(name))
    if lake.is_local:
        system: pa_fs.FileSystem = pa_fs.LocalFileSystem()
        root = uri.path if uri.scheme == "file" else lake.table_uri(name)
    else:
        system, root = s3_filesystem(lake.storage_options), f"{uri.netloc}{uri.path}"
    found = system.get_file_info([f"{root.rstrip('/')}/{unquote(path)}" for path in files])
    return [
        path
        for path, info in zip(files, found, strict=True)
        if info.type != pa_fs.FileType.NotFound
    ]
