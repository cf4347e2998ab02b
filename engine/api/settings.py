"""What the server needs to know, as one frozen object built at the edge (``cli.py serve``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.lake.location import Lake
from engine.schemas import DEFAULT_SCHEMA
from engine.store.paths import database_path
from engine.streaming.settings import ConsumerSettings

MiB = 1 << 20
DEFAULT_MAX_UPLOAD_BYTES = 2048 * MiB
DEFAULT_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ApiSettings:
    """One server: its database, where files may be read from, and what to validate with."""

    db: Path
    # Files that ``file_path`` may name live here; None: ingest by path is refused (403).
    data_dir: Path | None = None
    # Uploads and exports are staged in a directory made here per server (default: beside
    # the database, so a large upload never lands in a memory-backed /tmp).
    spool_dir: Path | None = None
    schema: str = DEFAULT_SCHEMA
    context: Mapping[str, Any] = field(default_factory=dict)
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # How long an ingest waits for the writer (another ingest, a Kafka batch) before a 409.
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    consumer: ConsumerSettings | None = None
    # Serve a lake (Delta tables shared with other writers) instead of the DuckDB file.
    lake: Lake | None = None

    def __post_init__(self) -> None:
        # The file DuckDB will open (``~/``, ``file:``): the spool beside it, /health's name.
        object.__setattr__(self, "db", database_path(self.db))
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise ConfigError(f"--data-dir {self.data_dir}: not a directory")
        if self.spool_dir is not None and not self.spool_dir.is_dir():
            raise ConfigError(f"--spool-dir {self.spool_dir}: not a directory")
        if self.max_upload_bytes < 1:
            raise ConfigError(f"the upload limit must be positive, got {self.max_upload_bytes}")
        if self.busy_timeout_s < 0:
            raise ConfigError(f"--busy-timeout must not be negative, got {self.busy_timeout_s:g}")

    @property
    def spool_root(self) -> Path:
        return self.spool_dir if self.spool_dir is not None else self.db.resolve().parent
