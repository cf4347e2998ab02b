"""Table and view definitions, and the mapping from Polars dtypes to DuckDB column types.

The public names are a contract (scripts and SQL users depend on them): the table
``ingestion_runs``, one typed table per schema (``processed_data`` for the reference schema),
``kafka_lineage`` and ``kafka_offsets``, and the views ``raw_data``, ``ingestion_errors`` and
``error_details``. The views derive what is not stored (layout 2, ``engine.store.layout``):

- ``source_rows`` holds each input row's raw text once, with ``line_delta`` = its line number
  minus its row number (a constant for most files, which DuckDB stores as nothing);
- ``invalid_rows`` holds each invalid row's errors as codes: lists of rule ids and inputs, in
  Pydantic's order (plus, in ``given``, the type, loc and message where no rule says them:
  errors worded by Pydantic itself, duplicates, rows that could not be split into fields);
- ``error_rules`` holds each rule's type, loc and message once per schema version.

One row per invalid row (not per error) keeps ``ingestion_errors`` a plain projection, about
as cheap to read as the table it replaces: its lists are decoded element by element against
a small map of the run's schema version's rules, with no grouping.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from engine.errors import SchemaError
from engine.store import history

RUNS = "ingestion_runs"
RAW = "raw_data"  # view
ERRORS = "ingestion_errors"  # view
ERROR_DETAILS = "error_details"  # view
OFFSETS = "kafka_offsets"
KAFKA_LINEAGE = "kafka_lineage"
SOURCE_ROWS = "source_rows"
INVALID_ROWS = "invalid_rows"
RULES = "error_rules"
LAYOUT = "layout_versions"

VIEWS = (RAW, ERRORS, ERROR_DETAILS)
# Every name the engine creates: no schema's typed table may take one of them.
ENGINE_NAMES = (
    RUNS,
    *VIEWS,
    OFFSETS,
    KAFKA_LINEAGE,
    SOURCE_ROWS,
    INVALID_ROWS,
    RULES,
    LAYOUT,
    *history.NAMES,
)

# One value per run: RLE stores it as a constant all the same, and naming it skips DuckDB's
# trial of every other compression on each row group (about 10 ns a row: 0.2 s of a
# 10M-row run, which appends 20M rows across the tables).
RUN_ID = "BIGINT NOT NULL USING COMPRESSION rle"

RUNS_DDL = f"""
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

-- A message's coordinates: kept apart from source_rows, whose file rows would otherwise carry
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

CREATE TABLE IF NOT EXISTS {OFFSETS} (
    group_id VARCHAR NOT NULL,
    topic VARCHAR NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    run_id BIGINT,
    updated_at TIMESTAMPTZ,
    -- the id of the topic next_offset is in (layout 4; NULL: stored before, or no broker id)
    topic_id VARCHAR,
    PRIMARY KEY (group_id, topic, "partition")
);
"""

SOURCE_ROWS_DDL = f"""
CREATE TABLE IF NOT EXISTS {SOURCE_ROWS} (
    run_id {RUN_ID},
    row_number BIGINT NOT NULL,
    line_delta BIGINT,
    raw VARCHAR USING COMPRESSION uncompressed
);
"""

# Layout 2: what is stored once.
STORED_DDL = f"""
CREATE TABLE IF NOT EXISTS {LAYOUT} (
    version INTEGER NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL,
    note VARCHAR NOT NULL
);

{SOURCE_ROWS_DDL}
CREATE SEQUENCE IF NOT EXISTS error_rule_ids START 1;

CREATE TABLE IF NOT EXISTS {RULES} (
    rule_id INTEGER PRIMARY KEY,
    schema_fingerprint VARCHAR NOT NULL,
    "type" VARCHAR NOT NULL,
    loc VARCHAR[] NOT NULL,
    msg VARCHAR
);

CREATE TABLE IF NOT EXISTS {INVALID_ROWS} (
    run_id {RUN_ID},
    row_number BIGINT NOT NULL,
    rule_ids INTEGER[] NOT NULL,
    inputs VARCHAR[] NOT NULL,
    given STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR)[]
);
"""

# Each schema version's rules as one map, rule_id -> what it says.
_RULE_MAPS = f"""
    SELECT schema_fingerprint,
           map_from_entries(list({{'key': rule_id,
                                   'value': {{'type': "type", 'loc': loc, 'msg': msg}}}})) AS rules
    FROM {RULES} GROUP BY schema_fingerprint"""

# Error i of a row: what its rule says, unless the row gives it.
_PART = "coalesce(e.given[i].{field}, m.rules[e.rule_ids[i]].{field})"

VIEWS_DDL = f"""
CREATE OR REPLACE VIEW {RAW} AS
SELECT run_id, row_number, row_number + line_delta AS line_number, raw FROM {SOURCE_ROWS};

CREATE OR REPLACE VIEW {ERRORS} AS
SELECT e.run_id, e.row_number, s.raw,
       list_transform(range(1, len(e.inputs) + 1), lambda i: {{
           'type': {_PART.format(field='"type"')},
           'loc': {_PART.format(field="loc")},
           'msg': {_PART.format(field="msg")},
           'input': e.inputs[i]}}) AS errors
FROM {INVALID_ROWS} AS e
JOIN {SOURCE_ROWS} AS s USING (run_id, row_number)
LEFT JOIN {RUNS} AS g USING (run_id)
LEFT JOIN ({_RULE_MAPS}) AS m USING (schema_fingerprint);

CREATE OR REPLACE VIEW {ERROR_DETAILS} AS
SELECT u.run_id, u.row_number,
       array_to_string(coalesce(u.g.loc, r.loc), '.') AS loc,
       coalesce(u.g."type", r."type") AS "type",
       coalesce(u.g.msg, r.msg) AS msg,
       u."input" AS "input"
FROM (SELECT run_id, row_number, unnest(rule_ids) AS rule_id, unnest(inputs) AS "input",
             unnest(given) AS g
      FROM {INVALID_ROWS}) AS u
LEFT JOIN {RULES} AS r USING (rule_id);
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
