"""Layout 3: what a table's life over time leaves behind, beside the rows themselves.

- ``schema_versions``: one row per schema version (fingerprint) a table has taken, with its
  JSON schema, context, columns, unique key and what it changed in the table; so any row can
  be traced to the exact model that validated it (``row_versions``).
- ``ingestion_runs.load_mode`` (``append``, ``replace``, ``merge``) and
  ``ingestion_runs.read_options`` (a CSV run's header and dialect, as JSON: what the raw text
  alone lacks to be read again by ``replay``).
- ``replaced_rows``: a typed row a later run replaced (``merge``: by the row with the same
  key; ``replace``: by the whole run); its raw text stays in ``source_rows``.
- ``replays`` and ``replayed_rows``: an invalid row that passed a later model (or its
  corrected text: ``replay --from``), moved into the typed table under its original run and
  row number, with the errors it had (and the corrected text, when it was edited).
- ``pruned_raw``: the SHA-256 of raw text dropped by ``prune``; ``store_actions``: each
  ``delete-run``, ``prune`` and ``compact``, with the space it reclaimed.
- ``store_settings``: per-database settings (``raw_compression``).
"""

from __future__ import annotations

SCHEMA_VERSIONS = "schema_versions"
REPLACED_ROWS = "replaced_rows"
REPLAYS = "replays"
REPLAYED_ROWS = "replayed_rows"
PRUNED_RAW = "pruned_raw"
STORE_ACTIONS = "store_actions"
STORE_SETTINGS = "store_settings"
ROW_VERSIONS = "row_versions"  # view

NAMES = (
    SCHEMA_VERSIONS,
    REPLACED_ROWS,
    REPLAYS,
    REPLAYED_ROWS,
    PRUNED_RAW,
    STORE_ACTIONS,
    STORE_SETTINGS,
    ROW_VERSIONS,
)

HISTORY_DDL = f"""
ALTER TABLE ingestion_runs ADD COLUMN IF NOT EXISTS load_mode VARCHAR DEFAULT 'append';
ALTER TABLE ingestion_runs ADD COLUMN IF NOT EXISTS read_options VARCHAR;

CREATE TABLE IF NOT EXISTS {SCHEMA_VERSIONS} (
    schema_fingerprint VARCHAR NOT NULL,
    schema_name VARCHAR NOT NULL,
    declared_table VARCHAR NOT NULL,
    target_table VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    json_schema VARCHAR,
    context VARCHAR,
    columns VARCHAR,
    unique_key VARCHAR,
    changes VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS {REPLACED_ROWS} (
    target_table VARCHAR NOT NULL,
    run_id BIGINT NOT NULL USING COMPRESSION rle,
    row_number BIGINT NOT NULL,
    by_run_id BIGINT NOT NULL,
    by_row_number BIGINT,
    how VARCHAR NOT NULL
);

CREATE SEQUENCE IF NOT EXISTS replay_ids START 1;

CREATE TABLE IF NOT EXISTS {REPLAYS} (
    replay_id BIGINT PRIMARY KEY,
    schema_fingerprint VARCHAR NOT NULL,
    target_table VARCHAR NOT NULL,
    runs BIGINT[] NOT NULL,
    where_sql VARCHAR,
    replayed_at TIMESTAMPTZ NOT NULL,
    rows_checked BIGINT NOT NULL,
    rows_moved BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS {REPLAYED_ROWS} (
    run_id BIGINT NOT NULL USING COMPRESSION rle,
    row_number BIGINT NOT NULL,
    replay_id BIGINT NOT NULL,
    rule_ids INTEGER[] NOT NULL,
    inputs VARCHAR[] NOT NULL,
    given STRUCT("type" VARCHAR, loc VARCHAR[], msg VARCHAR)[],
    raw VARCHAR
);

CREATE TABLE IF NOT EXISTS {PRUNED_RAW} (
    run_id BIGINT NOT NULL USING COMPRESSION rle,
    row_number BIGINT NOT NULL,
    raw_sha256 VARCHAR NOT NULL,
    pruned_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS {STORE_ACTIONS} (
    action VARCHAR NOT NULL,
    run_id BIGINT,
    done_at TIMESTAMPTZ NOT NULL,
    note VARCHAR NOT NULL,
    bytes_before BIGINT,
    bytes_after BIGINT
);

CREATE TABLE IF NOT EXISTS {STORE_SETTINGS} (
    name VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);
"""

# Versions of the runs stored before layout 3: their fingerprints and tables are known, their
# JSON schemas are not (NULL).
BACKFILL_VERSIONS = f"""
INSERT INTO {SCHEMA_VERSIONS}
SELECT schema_fingerprint, any_value(schema_name), target_table, target_table,
       row_number() OVER (PARTITION BY target_table ORDER BY min(run_id)),
       NULL, NULL, NULL, NULL, 'recorded before layout 3 (no JSON schema kept)', now()
FROM ingestion_runs
WHERE schema_fingerprint NOT IN (SELECT schema_fingerprint FROM {SCHEMA_VERSIONS})
GROUP BY schema_fingerprint, target_table;
UPDATE ingestion_runs SET load_mode = 'append' WHERE load_mode IS NULL;
"""


def row_versions_sql(rows: str = "source_rows", runs: str = "ingestion_runs") -> str:
    """Which schema version validated each input row (of ``rows``): its run's, or that of the
    replay that moved it into the typed table. A lake's reader makes the same view over its
    own ``raw_data`` and ``ingestion_runs``."""
    return f"""
SELECT s.run_id, s.row_number,
       coalesce(p.schema_fingerprint, g.schema_fingerprint) AS schema_fingerprint,
       p.replay_id
FROM {rows} AS s
LEFT JOIN {runs} AS g USING (run_id)
LEFT JOIN (SELECT rr.run_id, rr.row_number, rr.replay_id, r.schema_fingerprint
           FROM {REPLAYED_ROWS} AS rr JOIN {REPLAYS} AS r USING (replay_id)) AS p
  USING (run_id, row_number)"""


HISTORY_VIEWS_DDL = f"CREATE OR REPLACE VIEW {ROW_VERSIONS} AS {row_versions_sql()};"
