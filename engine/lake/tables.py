"""The lake's Delta tables: their names, the manifest's schema, creating and opening them.

Data tables (``raw_data``, ``ingestion_errors``, ``kafka_lineage``, one typed table per
schema) hold the public shapes a DuckDB file's views show, plus a ``batch`` column; they are
created by the first batch that writes them, with the schema of its Arrow data. The manifest
``ingestion_batches`` holds one row per committed batch (a file run is one batch) with its
run's figures so far: it alone decides what readers see.

Writers that race to create the same table fail with ``CommitFailedError: Protocol
changed`` (or find it created meanwhile): creating is retried until the table is there.
"""

from __future__ import annotations

import random
import time

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from engine.errors import StoreError, StoreWriteError
from engine.lake.location import Lake
from engine.store.history import REPLACED_ROWS, REPLAYED_ROWS, REPLAYS, SCHEMA_VERSIONS

RAW = "raw_data"
ERRORS = "ingestion_errors"
KAFKA_LINEAGE = "kafka_lineage"
MANIFEST = "ingestion_batches"
DATA_TABLES = (RAW, ERRORS, KAFKA_LINEAGE)
VERSIONS = SCHEMA_VERSIONS  # engine.lake.evolve
REPLACED = REPLACED_ROWS  # engine.lake.modes
# Every Delta table the engine keeps in a lake beside the schemas' typed tables (replays:
# engine.lake.replay): no schema's typed table may take one of these names.
LAKE_TABLES = (MANIFEST, *DATA_TABLES, VERSIONS, REPLACED, REPLAYED_ROWS, REPLAYS)

UTC_TIME = pa.timestamp("us", tz="UTC")
OFFSET = pa.struct(
    [
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("next_offset", pa.int64()),
    ]
)
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.int64(), nullable=False),
        pa.field("batch", pa.int64(), nullable=False),
        pa.field("source_kind", pa.string()),
        pa.field("source_path", pa.string()),
        pa.field("format", pa.string()),
        pa.field("schema_name", pa.string()),
        pa.field("schema_fingerprint", pa.string()),
        pa.field("target_table", pa.string()),
        pa.field("content_hash", pa.string()),
        pa.field("quick_hash", pa.string()),
        pa.field("file_size", pa.int64()),
        pa.field("started_at", UTC_TIME),
        pa.field("finished_at", UTC_TIME),
        pa.field("status", pa.string()),
        pa.field("rows_total", pa.int64()),
        pa.field("rows_valid", pa.int64()),
        pa.field("rows_invalid", pa.int64()),
        pa.field("rows_python", pa.int64()),
        pa.field("blank_lines", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("message", pa.string()),
        pa.field("batch_rows", pa.int64()),
        pa.field("committed_at", UTC_TIME),
        pa.field("group_id", pa.string()),
        pa.field("offsets", pa.list_(OFFSET)),
        pa.field("load_mode", pa.string()),
        pa.field("read_options", pa.string()),
    ]
)

# delta-rs says only "Generic S3 error" for a missing bucket, bad credentials or a wrong endpoint.
S3_HINT = (
    "check that the bucket exists and the AWS_* variables: AWS_ACCESS_KEY_ID, "
    "AWS_SECRET_ACCESS_KEY, AWS_REGION, and AWS_ENDPOINT_URL for a server other than AWS"
)

PROTOCOL_RACE = ("Protocol changed", "already exists", "Version mismatch", "version 0")


def open_table(lake: Lake, name: str) -> DeltaTable | None:
    """The table's latest version, or None if it does not exist yet."""
    try:
        return DeltaTable(lake.table_uri(name), storage_options=dict(lake.storage_options))
    except TableNotFoundError:
        return None
    except (DeltaError, OSError) as exc:
        raise StoreError(
            lake.uri,
            f"cannot read table {name} of the lake ({_first(exc)})",
            hint=S3_HINT if lake.uri.startswith("s3://") else None,
        ) from exc


def ensure_table(lake: Lake, name: str, schema: pa.Schema) -> DeltaTable:
    """The table, created with ``schema`` if it does not exist (racing creators retried)."""
    for attempt in range(30):
        table = open_table(lake, name)
        if table is not None:
            return table
        try:
            return DeltaTable.create(
                lake.table_uri(name),
                schema,
                mode="ignore",
                storage_options=dict(lake.storage_options),
            )
        except (CommitFailedError, DeltaError) as exc:
            if not any(text in str(exc) for text in PROTOCOL_RACE) or attempt == 29:
                raise write_failure(lake, f"cannot create table {name}", exc) from exc
            time.sleep(random.uniform(0.01, 0.1))
    raise AssertionError("unreachable")


def read_failure(lake: Lake, exc: BaseException) -> StoreError:
    """A file of a table's snapshot that cannot be read (deleted under the reader by a
    vacuum, damaged, unreachable): one line, as a table that cannot be opened."""
    return StoreError(
        lake.uri,
        f"cannot read the lake's files ({_first(exc)})",
        hint=S3_HINT if lake.uri.startswith("s3://") else None,
    )


def write_failure(lake: Lake, what: str, exc: BaseException) -> StoreWriteError:
    return StoreWriteError(lake.uri, f"{what} ({_first(exc)})")


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
