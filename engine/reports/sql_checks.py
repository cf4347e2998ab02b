"""What ``sql`` agrees to run: one statement that reads, checked on DuckDB's own parse.

The lockdown (``engine.reports.lockdown``) keeps the connection to the database file, but
DuckDB lets such a connection write into its own spill directory (``<db>.tmp``), and some
statements that parse as reads run others: EXPLAIN ANALYZE runs what it explains, a CTE may
be a ``COPY ... TO`` (the statement is still a SELECT), ``query('...')`` runs its text,
``IMPORT DATABASE`` (a PRAGMA to the parser) runs a directory's scripts. So a statement is
run only when its parse tree (``json_serialize_sql``) holds nothing but query nodes and no
call of a function that runs text or changes DuckDB's state (``query()``, ``checkpoint()``);
what cannot be checked that way is refused (fail closed). The keywords in front of a statement
(EXPLAIN's options, a PRAGMA's name) are read from DuckDB's own tokens, so comments end where
DuckDB ends them (a ``--`` comment at CR as well as LF; block comments nest).
"""

from __future__ import annotations

import itertools
import json
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
# Table functions that run the SQL text they are given.
RUNS_TEXT = frozenset({"query", "json_execute_serialized_sql"})
# Table functions that change the database or DuckDB's state rather than read.
CHANGES_STATE = frozenset(
    {
        "add_grammar_extension",
        "checkpoint",
        "create_external_resource",
        "deregister_external_resource",
        "destroy_external_resource",
        "disable_logging",
        "disable_profiling",
        "enable_logging",
        "enable_profiling",
        "force_checkpoint",
        "register_external_resource",
        "register_external_resource_type",
        "remove_grammar_extension",
        "truncate_duckdb_logs",
    }
)
# What shows DuckDB's settings (paths, a proxy from the environment): not user SQL's to read.
SETTINGS_READERS = frozenset({"current_setting", "duckdb_settings", "pg_settings"})


def check_statement(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """A ConfigError (one line) unless ``query`` is one statement that only reads."""
    check_text(query, "query")
    kind = _kind(con, query)
    if kind is None:
        raise ConfigError("sql runs exactly one statement")
    if kind == "MULTI" and "PIVOT" in (w[2].upper() for w in tokens(query)[:1]):
        # DuckDB's PIVOT without IN: it creates an ENUM type of the values first
        raise ConfigError(
            "sql runs one read-only statement, and a PIVOT without IN creates a type first",
            hint="name the values: PIVOT t ON c IN ('a', 'b') USING count(*)",
        )
    if kind not in READ_STATEMENTS:
        raise ConfigError(f"sql runs read-only queries ({', '.join(READ_FORMS)}), not {kind}")
    words = tokens(query)
    if kind == "SELECT":
        _check_tree(con, query)
    elif kind == "EXPLAIN":
        inner = _explained(query, words)
        inner_kind = _kind(con, inner) if inner.strip() else None
        if inner_kind != "SELECT":
            shown = inner_kind or "an unreadable statement"
            raise ConfigError(f"sql explains queries (SELECT, FROM ...) only, not {shown}")
        _check_tree(con, inner)
    elif kind == "PRAGMA":
        name = words[1][2].lower() if len(words) > 1 else ""
        if name not in READ_PRAGMAS:
            raise ConfigError(
                "sql runs the PRAGMAs that read only (" + ", ".join(sorted(READ_PRAGMAS)) + ")"
            )
    elif kind == "CALL":
        if not words or words[0][2].upper() != "CALL":  # CHECKPOINT, FORCE CHECKPOINT
            shown = " ".join(w[2].upper() for w in itertools.takewhile(_keyword, words))
            raise ConfigError(
                f"sql runs read-only queries ({', '.join(READ_FORMS)}), not {shown or 'that'}"
            )
        rest = _after(query, words, 1)
        _check_tree(con, f"SELECT * FROM {rest}")


def check_text(text: str, what: str) -> None:
    """A ConfigError unless ``text`` is Unicode text (a byte that is not UTF-8 on the
    command line reaches Python as a lone surrogate, which DuckDB cannot take)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(f"{what} is not UTF-8 text (at character {exc.start + 1})") from exc


Token = tuple[int, str, str]  # (byte offset, DuckDB's token type, its text)


def tokens(query: str) -> list[Token]:
    """DuckDB's own tokens of ``query``, comments left out: what its parser reads."""
    data = query.encode("utf-8")
    found = duckdb.tokenize(query)  # offsets in bytes of UTF-8
    ends = [offset for offset, _ in found[1:]] + [len(data)]
    return [
        (offset, kind.name, data[offset:end].decode("utf-8", "replace").strip())
        for (offset, kind), end in zip(found, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _keyword(token: Token) -> bool:
    return token[1] == "keyword"


def _after(query: str, words: list[Token], index: int) -> str:
    """The text of ``query`` from its ``index``th token on ("" past the last)."""
    if index >= len(words):
        return ""
    return query.encode("utf-8")[words[index][0] :].decode("utf-8")


def _explained(query: str, words: list[Token]) -> str:
    """What an EXPLAIN explains: the text after EXPLAIN, ANALYZE and its (options)."""
    index = 1
    if index < len(words) and words[index][2].upper() in ("ANALYZE", "ANALYSE"):
        index += 1
    if index < len(words) and words[index][2].startswith("("):
        depth = 0
        while index < len(words):
            text = words[index][2]
            depth += text.count("(") - text.count(")") if words[index][1] == "operator" else 0
            index += 1
            if depth <= 0:
                break
    return _after(query, words, index)


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
    return unsafe_call(node)


def unsafe_call(node: dict[str, Any]) -> str | None:
    """What is wrong with a node of a parse tree that calls a function which runs text,
    changes DuckDB's state or shows its settings, or reads the settings' view; else None."""
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function", {})
        name = function.get("function_name") if isinstance(function, dict) else None
    elif node.get("class") == "FUNCTION":
        name = node.get("function_name")
    elif kind == "BASE_TABLE":
        name = node.get("table_name")
        if isinstance(name, str) and name.lower() in SETTINGS_READERS:
            return f"reads {name}, DuckDB's settings"
        return None
    else:
        return None
    if not isinstance(name, str):
        return None
    if kind == "TABLE_FUNCTION" and name.lower() in RUNS_TEXT:
        return f"calls {name}(), which runs the text it is given"
    if kind == "TABLE_FUNCTION" and name.lower() in CHANGES_STATE:
        return f"calls {name}(), which changes DuckDB's state"
    if name.lower() in SETTINGS_READERS:
        return f"calls {name}(), which shows DuckDB's settings"
    return None
