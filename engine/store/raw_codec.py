"""How ``source_rows.raw`` (each input row's raw text) is compressed: a per-database setting.

``uncompressed`` (the default) costs no CPU when appending and reading; ``zstd`` makes the
lineage a fraction of its size for some CPU at every append (``benchmarks/
bench_raw_compression.py`` measures both, and DuckDB's own choice, ``auto``). The setting is
chosen when the database is created (``run --raw-compression``) or changed by rewriting it
(``compact --raw-compression``), and kept in ``store_settings``.
"""

from __future__ import annotations

import duckdb

from engine.errors import ConfigError

RAW_COMPRESSIONS = ("uncompressed", "zstd", "auto")
DEFAULT = "uncompressed"
SETTING = "raw_compression"
UNCOMPRESSED_RAW = "raw VARCHAR USING COMPRESSION uncompressed"


def check(codec: str) -> str:
    if codec not in RAW_COMPRESSIONS:
        raise ConfigError(f"unknown raw compression {codec!r} (use {', '.join(RAW_COMPRESSIONS)})")
    return codec


def raw_column(codec: str) -> str:
    """The ``raw`` column's definition for ``codec`` (``auto``: DuckDB picks per segment)."""
    check(codec)
    return "raw VARCHAR" if codec == "auto" else f"raw VARCHAR USING COMPRESSION {codec}"


def with_codec(ddl: str, codec: str) -> str:
    """``ddl`` (which defines ``source_rows``) with its raw column compressed by ``codec``."""
    assert UNCOMPRESSED_RAW in ddl
    return ddl.replace(UNCOMPRESSED_RAW, raw_column(codec))


def stored_codec(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> str:
    """The database's setting (``uncompressed`` for a file from before it existed)."""
    prefix = f"{catalog}." if catalog else ""
    try:
        rows = con.execute(
            f"SELECT value FROM {prefix}store_settings WHERE name = ?", [SETTING]
        ).fetchall()
    except duckdb.CatalogException:
        return DEFAULT
    return str(rows[0][0]) if rows else DEFAULT
