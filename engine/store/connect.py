"""Every DuckDB connection the engine opens: no extension is installed or loaded behind a name.

DuckDB's defaults download a known extension the first time a query names one of its
functions or types (``text()`` needs ``excel``, ``::INET`` needs ``inet``) and load it. The
engine uses only what the Python package links in (``json``, ``parquet``, ``icu``), so its
connections turn that off, writers included: SQL a user hands to a writing connection
(``replay --where``) reaches no network and runs no downloaded code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb

NO_EXTENSIONS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def connect(
    database: str = ":memory:", *, read_only: bool = False, config: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with ``config`` and no automatic extensions."""
    return duckdb.connect(database, read_only=read_only, config={**NO_EXTENSIONS, **(config or {})})
