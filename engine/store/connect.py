"""Every DuckDB connection the engine opens: no extension is installed or loaded behind a name,
and no progress bar is drawn.

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
# DuckDB draws its own progress bar on stdout for a statement past two seconds: in the middle
# of a command's output (its --json too). The engine reports its own progress.


def connect(
    database: str = ":memory:", *, read_only: bool = False, config: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` with ``config``, no automatic extensions and no progress bar."""
    con = duckdb.connect(database, read_only=read_only, config={**NO_EXTENSIONS, **(config or {})})
    return quiet(con)


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` without DuckDB's progress bar (a session setting: each cursor needs it too)."""
    con.execute("SET enable_progress_bar = false")
    return con
