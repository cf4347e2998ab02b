"""The read commands' connection, locked down in DuckDB itself: it reads the database file only.

``sql`` runs the user's statement and ``export --where`` puts the user's condition in a
query, so what they can reach is decided by DuckDB's own settings rather than by reading
their keywords (``EXPLAIN ANALYZE COPY ... TO``, a subquery over ``read_text``, a URL as a
table name all pass a keyword check). On a read-only connection:

* ``enable_external_access = false``: no file other than the database's own (and the paths
  passed in ``writable``: an export's temporary file), no URL, no ``ATTACH``, no
  ``COPY ... TO``, ``EXPORT DATABASE``, ``INSTALL`` or ``LOAD``, no secrets directory, and
  no scan of the Python process's variables;
* ``autoinstall_known_extensions`` and ``autoload_known_extensions`` off: nothing is
  downloaded or loaded behind a function name;
* the HTTP proxy settings emptied: DuckDB copies ``HTTP_PROXY`` from the environment, user
  and password included, where ``duckdb_settings()`` or a view of it would show them;
* ``lock_configuration = true`` last: no ``SET``, ``RESET`` or configuring ``PRAGMA`` can
  undo the above, nor turn on profiling or logging output files.

The one thing DuckDB still writes is its own spill space for a query larger than memory
(``<db>.tmp``, removed when it is done).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from engine.store.store import Store

# Applied in this order: the paths first (they cannot be set once access is off), the lock last.
SETTINGS = (
    ("TimeZone", "'UTC'"),
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("http_proxy", "''"),
    ("http_proxy_username", "''"),
    ("http_proxy_password", "''"),
)
CANNOT_ACCESS = re.compile(r'Cannot access (?:file|directory) "([^"]*)"')
PERMISSION = "Permission Error: "
LOCKED = "the configuration has been locked"


def lock_down(store: Store, writable: Iterable[Path] = ()) -> None:
    """Restrict ``store``'s database to itself (plus ``writable``) for as long as it is open.

    The settings are the database's, so every cursor of it is restricted too.
    """
    for name, value in SETTINGS:
        store.execute(f"SET {name} = {value}")
    paths = [str(path.resolve()) for path in writable]
    if paths:
        listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        store.execute(f"SET allowed_paths = [{listed}]")
    store.execute("SET enable_external_access = false")
    store.execute("SET lock_configuration = true")


def refusal(exc: Exception) -> str | None:
    """Why a locked-down connection refused a statement, in the project's words; None when
    the error is not a refusal (a typo, a wrong column...). ``exc`` is DuckDB's error, or
    Arrow's when the refusal came while a result was streamed in Arrow batches."""
    text = str(exc)
    if isinstance(exc, duckdb.PermissionException) or text.startswith(PERMISSION):
        found = CANNOT_ACCESS.search(text)
        target = f" ({found.group(1)})" if found else ""
        return (
            f"it reaches outside the database{target}; only the database's own tables "
            "can be read (no other file, URL, database or extension)"
        )
    if LOCKED in text:
        return "it changes a setting; settings cannot be changed here"
    return None
