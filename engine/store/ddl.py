"""Table definitions, and the mapping from Polars dtypes to DuckDB column types.

The names here are a public contract (scripts and SQL users depend on them): tables
``ingestion_runs``, ``raw_data``, ``ingestion_errors``, one typed table per schema
(``processed_data`` for the reference schema), and the view ``error_details``.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from engine.errors import SchemaError

RUNS = "ingestion_runs"
RAW = "raw_data"
ERRORS = "ingestion_errors"
ERROR_DETAILS = "error_details"
OFFSETS = "kafka_offsets"
KAFKA_LINEAGE = "kafka_lineage"

# One value per run: RLE stores it as a constant all the same, and naming it skips DuckDB's
# trial of every other compression on each row group (about 10 ns a row: 0.2 s of a
# 10M-row run, which appends 20M rows across the tables).
RUN_ID = "BIGINT NOT NULL USING COMPRESSION rle"

SHARED_DDL = f"""
CREATE SEQUENCE IF NOT EXISTS ingestion_run_ids START 1;

CREATE TABLE IF NOT EXISTS {RUNS} (
    run_id BIGINT PRIMARY KEY,
    source_kind VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    schema_name VARCHAR NOT NULL,
    schema_fingerprint VARCHAR NOT NULL,
    target_table VARCHAR NOT NULL,
    content_hash VARCHAR,
    quick_hash VARCHAR,
    file_size BIGINT,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    rows_total BIGINT NOT NULL DEFAULT 0,
    rows_valid BIGINT NOT NULL DEFAULT 0,
    rows_invalid BIGINT NOT NULL DEFAULT 0,
    rows_python BIGINT NOT NULL DEFAULT 0,
    blank_lines BIGINT NOT NULL DEFAULT 0,
    duration_s DOUBLE,
    message VARCHAR
);

CREATE TABLE IF NOT EXISTS {RAW} (
    run_id {RUN_ID},
    row_number BIGINT NOT NULL,
    line_number BIGINT,
    raw VARCHAR USING COMPRESSION uncompressed
);

-- A message's coordinates: kept apart from raw_data, whose file rows would otherwise carry
-- six NULL columns (half again the cost of storing a file's lineage).
CREATE TABLE IF NOT EXISTS {KAFKA_LINEAGE} (
    run_id {RUN_ID},
    row_number BIGINT NOT NULL,
    kafka_topic VARCHAR,
    kafka_partition INTEGER,
    kafka_offset BIGINT,
    kafka_key VARCHAR,
    kafka_timestamp TIMESTAMPTZ,
    kafka_headers VARCHAR
);

CREATE TABLE IF NOT EXISTS {ERRORS} (
    run_id {RUN_ID},
    row_number BIGINT NOT NULL,
    raw VARCHAR USING COMPRESSION uncompressed,
    errors STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR, "input" VARCHAR)[] NOT NULL
);

CREATE OR REPLACE VIEW {ERROR_DETAILS} AS
SELECT run_id, row_number,
       array_to_string(e.loc, '.') AS loc,
       e."type" AS "type",
       e.msg AS msg,
       e."input" AS "input"
FROM (SELECT run_id, row_number, unnest(errors) AS e FROM {ERRORS});

CREATE TABLE IF NOT EXISTS {OFFSETS} (
    group_id VARCHAR NOT NULL,
    topic VARCHAR NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    run_id BIGINT,
    updated_at TIMESTAMPTZ,
    PRIMARY KEY (group_id, topic, "partition")
);
"""


def sql_type(dtype: pl.DataType, *, column: str = "") -> str:
    """DuckDB type for a Polars dtype the validator produces."""
    if dtype == pl.String():
        return "VARCHAR"
    if dtype == pl.Int64():
        return "BIGINT"
    if dtype == pl.Int32():
        return "INTEGER"
    if dtype == pl.Float64():
        return "DOUBLE"
    if dtype == pl.Boolean():
        return "BOOLEAN"
    if dtype == pl.Date():
        return "DATE"
    if dtype == pl.Time():
        return "TIME"
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision or 38},{dtype.scale or 0})"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP WITH TIME ZONE" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.Duration):
        return "INTERVAL"
    if dtype == pl.Binary():
        return "BLOB"
    raise SchemaError(column or "?", f"no DuckDB column type for Polars dtype {dtype}")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def data_table_ddl(
    table: str, columns: dict[str, str], compression: Mapping[str, str] | None = None
) -> str:
    chosen = compression or {}
    body = ",\n    ".join(
        [f"run_id {RUN_ID}", "row_number BIGINT NOT NULL"]
        + [
            f"{quote(name)} {kind}"
            + (f" USING COMPRESSION {chosen[name]}" if name in chosen else "")
            for name, kind in columns.items()
        ]
    )
    return f"CREATE TABLE IF NOT EXISTS {quote(table)} (\n    {body}\n)"
