"""ingest-engine as a library: ``engine.validate`` and ``engine.ingest`` are the product; the
CLI, the REST API and the Kafka consumer call them.

    import engine
    result = engine.validate(frame, Transaction)          # in memory, no database
    summary = engine.ingest("data.csv.gz", db="reporting.duckdb", schema=Transaction)

Names are loaded when first used, so ``import engine`` costs nothing (the CLI imports it for
every command) and never loads the REST API's server or the Kafka client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.errors import (
        ConfigError,
        EngineError,
        Remedy,
        SchemaError,
        SourceError,
        StoreError,
    )
    from engine.gate import QualityGate
    from engine.ingesting import ingest
    from engine.lake.location import Lake
    from engine.outcomes import Progress, RunSummary, Tally
    from engine.replaying import ReplayResult, replay
    from engine.sources.remote import RemoteSettings
    from engine.store.diff import SchemaDiff, schema_diff
    from engine.store.retention import Reclaimed, compact, delete_run, prune_raw
    from engine.store.store import Store
    from engine.validating import Validation, validate

_WHERE = {
    "validate": "engine.validating",
    "Validation": "engine.validating",
    "ingest": "engine.ingesting",
    "replay": "engine.replaying",
    "ReplayResult": "engine.replaying",
    "schema_diff": "engine.store.diff",
    "SchemaDiff": "engine.store.diff",
    "delete_run": "engine.store.retention",
    "prune_raw": "engine.store.retention",
    "compact": "engine.store.retention",
    "Reclaimed": "engine.store.retention",
    "RunSummary": "engine.outcomes",
    "Tally": "engine.outcomes",
    "Progress": "engine.outcomes",
    "QualityGate": "engine.gate",
    "RemoteSettings": "engine.sources.remote",
    "Store": "engine.store.store",
    "Lake": "engine.lake.location",
    "EngineError": "engine.errors",
    "ConfigError": "engine.errors",
    "SchemaError": "engine.errors",
    "SourceError": "engine.errors",
    "StoreError": "engine.errors",
    "Remedy": "engine.errors",
}

__all__ = [
    "ConfigError",
    "EngineError",
    "Lake",
    "Progress",
    "QualityGate",
    "Reclaimed",
    "Remedy",
    "RemoteSettings",
    "ReplayResult",
    "RunSummary",
    "SchemaDiff",
    "SchemaError",
    "SourceError",
    "Store",
    "StoreError",
    "Tally",
    "Validation",
    "compact",
    "delete_run",
    "ingest",
    "prune_raw",
    "replay",
    "schema_diff",
    "validate",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
