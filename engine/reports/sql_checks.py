"""What ``sql`` agrees to run: one statement that reads, checked on DuckDB's own parse.

The lockdown (``engine.reports.lockdown``) keeps the connection to the database file, but
DuckDB lets such a connection write into its own spill directory (``<db>.tmp``), and some
statements that parse as reads run others: EXPLAIN ANALYZE runs what it explains, a CTE may
be a ``COPY ... TO`` (the statement is still a SELECT), ``query('...')`` runs its text,
``IMPORT DATABASE`` (a PRAGMA to the parser) runs a directory's scripts. So a statement is
run only when its parse tree (``json_serialize_sql``) holds nothing but query nodes and no
``query()`` call; what cannot be checked that way is refused (fail closed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import duckdb

from engine.errors import ConfigError
from engine.reports.reader import query_error

# What `sql` runs, as a person writes it (the README lists the same), and the DuckDB
# statement type each form parses to: only those types are run.
READ_FORMS = {
    "SELECT": "SELECT",
    "FROM ...": "SELECT",
    "DESCRIBE": "SELECT",
    "SUMMARIZE": "SELECT",
    "SHOW": "SELECT",
    "EXPLAIN": "EXPLAIN",
    "PRAGMA": "PRAGMA",
    "CALL": "CALL",
}
READ_STATEMENTS = tuple(dict.fromkeys(READ_FORMS.values()))
# PRAGMAs that only read (the configuring ones are refused by the lockdown too).
READ_PRAGMAS = frozenset(
    {
        "collations",
        "database_list",
        "database_size",
        "functions",
        "metadata_info",
        "platform",
        "show",
        "show_databases",
        "show_tables",
        "show_tables_expanded",
        "storage_info",
        "table_info",
        "user_agent",
        "version",
    }
)
# Query nodes of a parse tree that only read.
QUERY_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
RUNS_TEXT = frozenset({"query"})  # table functions that run the SQL text they are given

# Comments and spaces, then a keyword: what precedes the part a statement applies to.
_GAP = r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*"
_EXPLAIN = re.compile(
    rf"{_GAP}EXPLAIN\b(?:{_GAP}ANALY[SZ]E\b)?(?:{_GAP}\([^)]*\))?", re.IGNORECASE | re.DOTALL
)
_PRAGMA = re.compile(rf"{_GAP}PRAGMA{_GAP}(\w+)", re.IGNORECASE | re.DOTALL)
_CALL = re.compile(rf"{_GAP}CALL\b", re.IGNORECASE | re.DOTALL)


def check_statement(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """A ConfigError (one line) unless ``query`` is one statement that only reads."""
    kind = _kind(con, query)
    if kind is None:
        raise ConfigError("sql runs exactly one statement")
    if kind not in READ_STATEMENTS:
        raise ConfigError(f"sql runs read-only queries ({', '.join(READ_FORMS)}), not {kind}")
    if kind == "SELECT":
        _check_tree(con, query)
    elif kind == "EXPLAIN":
        found = _EXPLAIN.match(query)
        inner = query[found.end() :] if found else ""
        inner_kind = _kind(con, inner) if inner else None
        if inner_kind != "SELECT":
            shown = inner_kind or "an unreadable statement"
            raise ConfigError(f"sql explains queries (SELECT, FROM ...) only, not {shown}")
        _check_tree(con, inner)
    elif kind == "PRAGMA":
        found = _PRAGMA.match(query)
        if found is None or found.group(1).lower() not in READ_PRAGMAS:
            raise ConfigError(
                "sql runs the PRAGMAs that read only (" + ", ".join(sorted(READ_PRAGMAS)) + ")"
            )
    elif kind == "CALL":
        found = _CALL.match(query)
        _check_tree(con, f"SELECT * FROM {query[found.end() :]}" if found else "")


def _kind(con: duckdb.DuckDBPyConnection, query: str) -> str | None:
    """The statement's type, None when ``query`` is not exactly one statement."""
    try:
        statements = con.extract_statements(query)
        kinds = [statement.type.name for statement in statements]
    except duckdb.Error as exc:
        raise ConfigError(f"query {query_error(exc)}") from exc
    except ValueError:  # a statement type the Python package does not know (UPDATE EXTENSIONS)
        return "a statement of another kind"
    if len(kinds) > 1:
        raise ConfigError(f"sql runs exactly one statement, got {len(kinds)}")
    return kinds[0] if kinds else None


def _check_tree(con: duckdb.DuckDBPyConnection, select: str) -> None:
    """Refuse a SELECT whose parse holds a node that writes (a CTE that is a COPY, an
    INSERT...) or a call of ``query()``, or that DuckDB cannot serialize to be looked at."""
    tree = parse_tree(con, select)
    problem = "it cannot be checked" if tree is None else first_in_tree(tree, _writes)
    if problem is not None:
        raise ConfigError(f"sql runs queries that only read; this one {problem}")


def parse_tree(con: duckdb.DuckDBPyConnection, select: str) -> Any | None:
    """DuckDB's parse of the SELECT ``select`` as JSON (``json_serialize_sql``), None when it
    cannot give one (another kind of statement, a parse error)."""
    try:
        found = con.execute("SELECT json_serialize_sql(?)", [select]).fetchall()
    except duckdb.Error:
        return None
    tree = json.loads(found[0][0]) if found else None
    return None if not isinstance(tree, dict) or tree.get("error") else tree


def first_in_tree(node: Any, test: Callable[[dict[str, Any]], str | None]) -> str | None:
    """What ``test`` says of the first node of a parse tree (depth first) it says anything of."""
    if isinstance(node, dict):
        found = test(node)
        if found is not None:
            return found
        values: list[Any] = list(node.values())
    elif isinstance(node, list):
        values = node
    else:
        return None
    for value in values:
        found = first_in_tree(value, test)
        if found is not None:
            return found
    return None


def _writes(node: dict[str, Any]) -> str | None:
    kind = node.get("type")
    if isinstance(kind, str) and kind.endswith("_NODE") and kind not in QUERY_NODES:
        return f"holds a {kind.removesuffix('_QUERY_NODE').removesuffix('_NODE')} statement"
    if kind == "TABLE_FUNCTION":
        function = node.get("function", {})
        name = function.get("function_name") if isinstance(function, dict) else None
        if isinstance(name, str) and name.lower() in RUNS_TEXT:
            return f"calls {name}(), which runs the text it is given"
    return None
