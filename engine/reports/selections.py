"""What an export reads: one SELECT per kind (processed, errors, raw), with its filters.

The SELECT is what ``COPY ... TO`` streams and what the XLSX writer reads in batches, so
every format of one export carries the same rows and columns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import duckdb

from engine.errors import ConfigError
from engine.reports.input_json import parsable, plain, strict
from engine.reports.json_text import finite
from engine.reports.lockdown import refusal
from engine.reports.reader import duckdb_message, query_error, table_exists, typed_tables
from engine.reports.sql_checks import check_text, first_in_tree, parse_tree, unsafe_call
from engine.store.connect import connect
from engine.store.ddl import ERROR_DETAILS, ERRORS, OFFSETS, RAW, RUNS, quote
from engine.store.store import Store

KINDS = ("processed", "errors", "raw")
REFERENCE_TABLE = "processed_data"
SHARED_TABLES = (RUNS, RAW, ERRORS, ERROR_DETAILS, OFFSETS)

# One readable line per violation: `amount: Input should be greater than 0 (got '-50.0')`.
# The offending value is shown when it is a single value of the field; a row-level error
# (empty loc) or `missing` (whose input is the whole record) says enough without it.
MESSAGE = f"""array_to_string(list_transform(errors, lambda e: concat(
    CASE WHEN len(e.loc) > 0 THEN array_to_string(e.loc, '.') || ': ' ELSE '' END,
    e.msg,
    CASE WHEN len(e.loc) = 0 OR e."input" IS NULL THEN ''
         WHEN {plain('e."input"')} THEN ' (got ''' || e."input"[2:-2] || ''')'
         WHEN json_type(e."input") = 'VARCHAR' THEN ' (got ''' || (e."input" ->> '$') || ''')'
         WHEN json_type(e."input") IN ('OBJECT', 'ARRAY') THEN ''
         ELSE ' (got ' || e."input" || ')' END)), '; ')"""

# Pydantic's ``ValidationError.errors()`` shape, with each input as JSON (not JSON-in-a-string),
# strict JSON: no NaN or Infinity (null, as the JSON formats write them). Written as text
# (the compact text ``to_json`` of ``json_object``s writes): an input is copied once, not
# parsed and written again by each JSON function (``engine.reports.input_json``).
INPUT = 'e."input"'
_MEMBERS = ", ',', ".join(
    f"'\"{key}\":', coalesce({value}, 'null')"
    for key, value in (
        ("type", 'to_json(e."type")'),
        ("loc", "to_json(e.loc)"),
        ("msg", "to_json(e.msg)"),
        ("input", f"CASE WHEN {plain(INPUT)} THEN {INPUT} ELSE json({strict(INPUT)}) END"),
    )
)
ERROR_LIST = (
    "'[' || array_to_string(list_transform(errors, "
    f"lambda e: concat('{{', {_MEMBERS}, '}}')), ',') || ']'"
)

# The error lists read by both, each input made readable once: what DuckDB's JSON reader
# takes, a lone surrogate's escape shown as text (``engine.reports.input_json``).
READABLE = f"""list_transform(errors, lambda e: {{'type': e."type", 'loc': e.loc,
    'msg': e.msg, 'input': {parsable('e."input"')}}})"""


# A text cell starting with one of these is run as a formula by spreadsheets (OWASP's CSV
# injection list, plus line feed): CSV exports prefix such cells with a single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# So is one where spaces or characters that show nothing (Unicode separators, controls and
# format characters: a no-break space, a zero-width space, a byte order mark) come before
# =, +, - or @: a spreadsheet may trim them, and a reader does not see them (RE2 syntax).
HIDDEN_THEN_FORMULA = r"^[\p{Z}\p{Cc}\p{Cf}]+[=+\-@]"
TEXT_TYPES = ("VARCHAR", "JSON")


@dataclass(frozen=True)
class Selection:
    source: str  # the table read, for messages
    query: str
    columns: list[str]


def select(
    store: Store,
    kind: str,
    *,
    run_id: int | None = None,
    where: str | None = None,
    table: str | None = None,
    json_output: bool = False,
    neutralise: bool = False,
) -> Selection:
    """The SELECT for one export; ``json_output`` keeps it valid JSON (no NaN, nested errors);
    ``neutralise`` makes text cells that a spreadsheet would run as formulas plain text."""
    if table is not None and kind != "processed":
        raise ConfigError(f"--table picks the typed table of `processed`, not of {kind!r}")
    if run_id is not None:
        check_run(store, run_id)
    run_filter = "" if run_id is None else f" WHERE run_id = {int(run_id)}"
    if kind == "processed":
        source = processed_table(store, run_id, table)
        if not table_exists(store, source):
            raise ConfigError(f"table {source!r} does not exist (its runs stored no rows)")
        listed = ", ".join(
            f"{finite(quote(name), duckdb.sqltype(kind_))} AS {quote(name)}"
            if json_output
            else quote(name)
            for name, kind_ in store.table_columns(source).items()
        )
        base = f"SELECT {listed} FROM {quote(source)}{run_filter}"
        order = ""
    elif kind == "errors":
        source = ERRORS
        errors = f"({ERROR_LIST})::JSON" if json_output else ERROR_LIST
        base = (
            f"SELECT e.run_id, e.row_number, r.line_number, {MESSAGE} AS message, "
            f"{errors} AS errors, e.raw FROM (SELECT * REPLACE ({READABLE} AS errors) "
            f"FROM {ERRORS}{run_filter}) AS e "
            f"LEFT JOIN (SELECT run_id, row_number, line_number FROM {RAW}{run_filter}) AS r "
            "USING (run_id, row_number)"
        )
        order = " ORDER BY run_id, row_number"
    elif kind == "raw":
        source = RAW
        base = f"SELECT * FROM {RAW}{run_filter}"
        order = ""
    else:
        raise ConfigError(f"unknown export {kind!r} (choose from {', '.join(KINDS)})")
    exported = f"({base}) AS export"
    try:
        shape = store.con.sql(f"SELECT * FROM {exported}")
    except duckdb.Error as exc:  # a view of the file that reaches outside it, say
        raise ConfigError(f"cannot export {kind}: {query_error(exc)}") from exc
    columns = list(shape.columns)
    listed = ", ".join(
        neutralised(name) if neutralise and _is_text(str(type_)) else quote(name)
        for name, type_ in zip(columns, shape.types, strict=True)
    )
    # The condition sees the stored values (a neutralised cell only changes on its way out).
    condition = "" if where is None else f" WHERE (\n{check_where(where)}\n)"
    query = f"SELECT {listed} FROM {exported}{condition}{order}"
    if where is not None:
        try:
            store.con.sql(query)  # binds without running: a wrong name fails before any writing
        except duckdb.Error as exc:
            refused = refusal(exc)
            if refused:
                raise ConfigError(f"--where {where!r}: refused: {refused}") from exc
            raise ConfigError(
                f"--where {where!r}: {duckdb_message(exc)}",
                hint=f"the condition sees the exported columns: {', '.join(columns)}",
            ) from exc
    return Selection(source, query, columns)


def _is_text(type_: str) -> bool:
    return type_ in TEXT_TYPES or type_.startswith("ENUM(")


def neutralised(name: str) -> str:
    """The column as text, with a ``'`` before a value that starts like a formula (OWASP)."""
    column = f"{quote(name)}::VARCHAR"
    # Not ``left(c, 1) IN (...)``: DuckDB plans an IN list of this length as a hash join,
    # which does not keep the rows in stored order.
    starts = " OR ".join(f"starts_with({column}, chr({ord(char)}))" for char in FORMULA_STARTS)
    hidden = f"regexp_matches({column}, '{HIDDEN_THEN_FORMULA}')"
    return (
        f"CASE WHEN {starts} OR {hidden} THEN chr(39) || {column} ELSE {column} END "
        f"AS {quote(name)}"
    )


def check_run(store: Store, run_id: int) -> None:
    if not store.rows(f"SELECT 1 FROM {RUNS} WHERE run_id = ?", [run_id]):
        known = store.rows(f"SELECT min(run_id), max(run_id) FROM {RUNS}")[0]
        runs = "no runs yet" if known[0] is None else f"runs are {known[0]} to {known[1]}"
        raise ConfigError(f"--run {run_id}: no such run ({runs})")


def processed_table(store: Store, run_id: int | None, table: str | None) -> str:
    """The typed table to export: named, the run's, or the one all completed runs used."""
    known = typed_tables(store)
    if table is not None:
        # A typed table no run has written to yet (``serve`` creates its schema's at start)
        # exists and is empty: its export is a valid empty file.
        if table not in known and (table in SHARED_TABLES or not table_exists(store, table)):
            listed = ", ".join(known) or "none yet"
            raise ConfigError(f"--table {table}: not a typed table (typed tables: {listed})")
        return table
    if run_id is not None:
        return str(store.rows(f"SELECT target_table FROM {RUNS} WHERE run_id = ?", [run_id])[0][0])
    if len(known) == 1:
        return known[0]
    if len(known) > 1:
        raise ConfigError(
            f"runs wrote to several typed tables ({', '.join(known)})",
            hint="pick one with --table or --run",
        )
    if table_exists(store, REFERENCE_TABLE):
        return REFERENCE_TABLE
    raise ConfigError(
        f"{store.path}: no typed table yet (no run has stored valid rows)",
        hint="run an ingestion first",
    )


def check_where(where: str) -> str:
    """The condition as exactly one SQL expression, as DuckDB's parser delimits it: it cannot
    close the parenthesis it is put in, end the statement or add another; nor call what ``sql``
    refuses (``query()``, which runs its text; ``current_setting()``, which shows settings).
    (What it may read is limited by the reader's lockdown, not here.)"""
    checked = _expression(where)
    tree = _condition_tree(checked)
    found = "cannot be checked" if tree is None else first_in_tree(tree, unsafe_call)
    if found is not None:
        raise ConfigError(f"--where {where!r}: refused: it {found}")
    return checked


def _expression(where: str) -> str:
    check_text(where, "--where")
    try:
        return str(duckdb.SQLExpression(where))
    except duckdb.Error as exc:
        raise ConfigError(
            f"--where {where!r}: not a single SQL condition ({duckdb_message(exc)})"
        ) from exc


def check_row_filter(where: str) -> str:
    """``check_where``, for a condition run on a writing connection (``replay``), which no
    lockdown restricts: no subquery either, so the condition reads the selected rows' own
    columns only (never ``read_text``, ``glob`` or a URL: those are table functions, which
    only a subquery reaches), and no function with side effects (``nextval()`` would advance
    the engine's own sequences). (What ``check_where`` refuses needs a subquery, or is a
    session function.)"""
    checked = _expression(where)
    tree = _condition_tree(checked)
    found = "it cannot be checked" if tree is None else first_in_tree(tree, _outside_the_rows)
    if found is not None:
        raise ConfigError(
            f"--where {where!r}: {found} is not allowed here (the condition reads the selected "
            "rows' own columns)"
        )
    return checked


def _condition_tree(checked: str) -> Any | None:
    """DuckDB's parse of a checked condition (``parse_tree``)."""
    with connect() as con:
        return parse_tree(con, f"SELECT 1 WHERE {checked}")


# Functions that read the session rather than the rows (settings, variables), or carry text
# out in an error message.
SESSION_FUNCTIONS = frozenset({"current_setting", "getvariable", "getenv", "error"})


@functools.cache
def side_effect_functions() -> frozenset[str]:
    """The functions DuckDB's catalogue says have side effects: nextval, setval, currval,
    setseed, write_log, sleep_ms..."""
    with connect() as con:
        rows = con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE has_side_effects"
        ).fetchall()
    return frozenset(str(row[0]).lower() for row in rows) | {"nextval", "setval", "currval"}


def _outside_the_rows(node: dict[str, Any]) -> str | None:
    """What in a parsed condition reaches past the rows: a subquery, a session function, a
    function with side effects."""
    if node.get("class") == "SUBQUERY" or node.get("type") == "SUBQUERY":
        return "a subquery"
    name = node.get("function_name")
    if node.get("class") == "FUNCTION" and str(name).lower() in SESSION_FUNCTIONS:
        return f"{name}()"
    if node.get("class") == "FUNCTION" and str(name).lower() in side_effect_functions():
        return f"{name}(), which has side effects,"
    return None
