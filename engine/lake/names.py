"""What a schema's typed table may be called in a lake, and how the lake spells it.

A table's name is a directory of the lake (its generations ``<table>__g<N>`` are others) and
a view of the readers, where DuckDB looks names up ignoring case. So, before anything is
written, a lake refuses in one line a table name that is not a plain identifier (ASCII
letters, digits and ``_``, starting with a letter: ``../x`` would be a directory outside
the lake, and names starting with ``_`` are the reader's own), a name of one of the
engine's own tables (a DuckDB file's, and the lake's Delta tables), or a name another
table's generations would take; all three ignoring case. A name that differs only in case
from a table the lake holds is that table (``Readings`` is ``readings``), as in a DuckDB
file: its rows go to the Delta table of the spelling the lake has.
"""

from __future__ import annotations

import re

from engine.errors import StoreError
from engine.lake.datasets import query
from engine.lake.generations import is_generation_name
from engine.lake.location import Lake
from engine.lake.tables import LAKE_TABLES, MANIFEST, VERSIONS, open_table
from engine.store.ddl import ENGINE_NAMES

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
OWN_NAMES = frozenset(name.lower() for name in (*ENGINE_NAMES, *LAKE_TABLES))


def check_table_name(lake: Lake, schema_name: str, table: str) -> None:
    """A StoreError (one line, naming the lake) when the lake cannot hold a table ``table``."""
    if table.lower() in OWN_NAMES:
        problem = "which the engine uses for its own data"
    elif not IDENTIFIER.fullmatch(table):
        problem = (
            "which a lake cannot use as a table's directory (a lake's table names are ASCII "
            "letters, digits and _, starting with a letter)"
        )
    elif is_generation_name(table):
        problem = "which a lake keeps for a generation of another table"
    else:
        return
    raise StoreError(
        lake.uri,
        f"schema {schema_name} names its table {table!r}, {problem}",
        hint="give the model another __table_name__",
    )


def lake_spelling(lake: Lake, table: str) -> str:
    """The table as the lake spells it: the first spelling, ignoring case, that a run or a
    schema version of the lake gave it; ``table`` itself if the lake has none."""
    manifest, versions = open_table(lake, MANIFEST), open_table(lake, VERSIONS)
    if manifest is None:
        return table
    tables = {"manifest": (MANIFEST, manifest)}
    named = "SELECT target_table AS name, committed_at AS seen FROM manifest"
    if versions is not None:
        tables["versions"] = (VERSIONS, versions)
        named += (
            " UNION ALL SELECT declared_table, created_at FROM versions"
            " UNION ALL SELECT target_table, created_at FROM versions"
        )
    rows = query(
        lake,
        tables,
        f"SELECT name FROM ({named}) WHERE lower(name) = lower(?) ORDER BY seen, name LIMIT 1",
        [table],
    )
    return str(rows[0][0]) if rows else table
