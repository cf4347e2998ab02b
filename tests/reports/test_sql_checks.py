"""The second hostile review of `sql` and `export --where`: comments read as DuckDB reads them,
statements that parse as CALL, DuckDB's settings (a proxy's password from the environment),
``--limit`` of wide rows, bytes that are not UTF-8, ``query()`` in a condition."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engine.reports.reader import open_reader
from engine.reports.sql import run_query
from tests.conftest import DATA, ROOT
from tests.reports.conftest import ingest

RunCli = Callable[..., Result]
FORMS = "SELECT, FROM ..., DESCRIBE, SUMMARIZE, SHOW, EXPLAIN, PRAGMA, CALL"
PRAGMAS = (
    "error: sql runs the PRAGMAs that read only (collations, database_list, database_size, "
    "functions, metadata_info, platform, show, show_databases, show_tables, "
    "show_tables_expanded, storage_info, table_info, user_agent, version)\n"
)
NOT_COPY = "error: sql explains queries (SELECT, FROM ...) only, not COPY\n"
PROXY = "http://user:proxy-password-5e1f@proxy.invalid:3128"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "checked.duckdb"
    ingest(path, DATA / "transactions_sample.csv")
    return path


def cli(*args: str | bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``cli.py`` in a process of its own (arguments may be bytes, as a shell passes them)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_comments_end_where_duckdb_ends_them(run_cli: RunCli, db: Path, tmp_path: Path) -> None:
    """DuckDB ends a ``--`` comment at CR as well as LF, and nests ``/* */`` comments: the
    keywords in front of a statement are read in DuckDB's own tokens, so a comment cannot
    show the checker one statement and DuckDB another."""
    out = tmp_path / "w.csv"
    cases = {
        f"EXPLAIN --\r ANALYZE COPY (SELECT 'x') TO '{out}' /*\n ANALYZE SELECT 1 -- */": NOT_COPY,
        f"EXPLAIN /* /* */ SELECT 1 -- */ ANALYZE COPY (SELECT 42) TO '{out}'": NOT_COPY,
        f"EXPLAIN (FORMAT 'a)') COPY (SELECT 1) TO '{out}'": NOT_COPY,
        f"PRAGMA --\r import_database('{tmp_path}') /*\n table_info -- */": PRAGMAS,
        "PRAGMA --\r enable_profiling /*\n version -- */": PRAGMAS,
        "PRAGMA /* /* */ version */ enable_profiling": PRAGMAS,
    }
    for statement, message in cases.items():
        result = run_cli("sql", statement, "--db", str(db))
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", message), statement
    assert list(tmp_path.iterdir()) == []
    reads = {
        "/* é */ EXPLAIN /* ( */ ANALYZE --(x\r (FORMAT json) SELECT 'é' AS e": "explain_key,",
        "PRAGMA --\r version": "library_version,source_id,codename\n",
        " -- x\rPRAGMA /* a /* b */ */ table_info('raw_data')": "cid,name,type,",
    }
    for statement, start in reads.items():
        result = run_cli("sql", statement, "--db", str(db), "--format", "csv")
        assert result.exit_code == 0 and result.stdout.startswith(start), (statement, result)


def test_statements_that_parse_as_call_or_change_duckdbs_state_are_refused(
    run_cli: RunCli, db: Path
) -> None:
    """CHECKPOINT parses as a CALL that does not start with CALL; the table functions that
    change DuckDB's state or run text are refused wherever they are called."""
    state = "error: sql runs queries that only read; this one calls {}(), which changes DuckDB's state\n"
    cases = {
        "CHECKPOINT": f"error: sql runs read-only queries ({FORMS}), not CHECKPOINT\n",
        "force checkpoint": f"error: sql runs read-only queries ({FORMS}), not FORCE CHECKPOINT\n",
        "/* c */ CHECKPOINT checked": f"error: sql runs read-only queries ({FORMS}), not CHECKPOINT\n",
        "CALL truncate_duckdb_logs()": state.format("truncate_duckdb_logs"),
        "SELECT * FROM checkpoint()": state.format("checkpoint"),
        "FROM force_checkpoint()": state.format("force_checkpoint"),
        "EXPLAIN ANALYZE SELECT * FROM truncate_duckdb_logs()": state.format(
            "truncate_duckdb_logs"
        ),
        "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))": (
            "error: sql runs queries that only read; this one calls "
            "json_execute_serialized_sql(), which runs the text it is given\n"
        ),
    }
    for statement, message in cases.items():
        result = run_cli("sql", statement, "--db", str(db))
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", message), statement
    result = run_cli("sql", "CALL pragma_version()", "--db", str(db), "--format", "csv")
    assert result.exit_code == 0 and result.stdout.startswith("library_version,")


def test_user_sql_cannot_see_duckdbs_settings(db: Path, tmp_path: Path) -> None:
    """DuckDB copies HTTP_PROXY, password and all, into its settings: the readers empty the
    proxy settings, and `sql` and `export --where` refuse what shows settings (paths too)."""
    env = {"HTTP_PROXY": PROXY, "http_proxy": PROXY}
    output = tmp_path / "e.csv"
    shows = "error: sql runs queries that only read; this one {}\n"
    cases = [
        (
            ("sql", "SELECT current_setting('http_proxy') AS p"),
            shows.format("calls current_setting(), which shows DuckDB's settings"),
        ),
        (
            ("sql", "SELECT value FROM duckdb_settings() WHERE name = 'http_proxy'"),
            shows.format("calls duckdb_settings(), which shows DuckDB's settings"),
        ),
        (
            ("sql", "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'http_proxy'"),
            shows.format("reads pg_settings, DuckDB's settings"),
        ),
        (
            ("export", "errors", "-o", str(output), "--where", _CAST),
            f'error: --where "{_CAST}": refused: it calls current_setting(), which shows '
            "DuckDB's settings\n",
        ),
        (
            ("export", "raw", "-o", str(output), "--where", _QUERY),
            f'error: --where "{_QUERY}": refused: it calls query(), which runs the text it is '
            "given\n",
        ),
    ]
    for args, message in cases:
        done = cli(*args, "--db", str(db), env=env)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", message), args
    assert not output.exists()
    os.environ.update(env)
    try:
        with open_reader(db) as store:
            proxy = store.rows(
                "SELECT name, value FROM duckdb_settings() WHERE name LIKE 'http_proxy%' "
                "ORDER BY name"
            )
    finally:
        for name in env:
            del os.environ[name]
    assert proxy == [("http_proxy", ""), ("http_proxy_password", ""), ("http_proxy_username", "")]


_CAST = "CAST(current_setting('http_proxy') AS INT) = 1"
_QUERY = "(SELECT 1 FROM query('SELECT 1')) = 1"


def test_limit_fetches_only_the_rows_it_shows(db: Path) -> None:
    with open_reader(db) as store:
        result = run_query(store, "SELECT range AS n FROM range(100000)", rows=3)
        assert [list(batch) for batch in result.batches] == [[(0,), (1,), (2,)]]


def test_limit_of_wide_rows_stays_small(db: Path) -> None:
    """`sql --limit 1` of 10,000 rows of 30,000 characters peaked at 735 MB: the first
    10,000-row batch became Python objects. Now 2 rows are fetched (about 210 MB)."""
    # The child's own peak is its VmHWM: ``ru_maxrss`` keeps the test process's peak at the
    # fork across exec (814 MB after the long-input tests ran in the same session).
    code = (
        "import re, runpy, sys\n"
        "sys.argv = ['cli.py', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_path('cli.py', run_name='__main__')\n"
        "finally:\n"
        "    status = open('/proc/self/status').read()\n"
        "    print(re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)\n"
    )
    query = "SELECT repeat('x', 30000) AS big FROM range(10000)"
    done = subprocess.run(
        [sys.executable, "-c", code, "sql", query, "--db", str(db), "--limit", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        "1 row shown; more rows follow (use --format csv or json for all of them)\n"
    )
    assert int(done.stderr.split()[-1]) < 400_000  # KiB


def test_a_query_that_is_not_utf8_is_one_line(db: Path, tmp_path: Path) -> None:
    """A byte that is not UTF-8 reaches Python as a lone surrogate: it was a TypeError."""
    output = str(tmp_path / "s.csv")
    cases = [
        (("sql", b"SELECT '\xff'"), "error: query is not UTF-8 text (at character 9)\n"),
        (
            ("export", "errors", "-o", output, "--where", b"raw = '\xff'"),
            "error: --where is not UTF-8 text (at character 8)\n",
        ),
    ]
    for args, message in cases:
        done = cli(*args, "--db", str(db))
        assert (done.returncode, done.stdout, done.stderr) == (2, "", message), args
    assert not Path(output).exists()


def test_a_pivot_without_in_is_refused_saying_how_to_write_it(run_cli: RunCli, db: Path) -> None:
    """DuckDB makes it two statements (an ENUM type of the values, then the query); the
    refusal named DuckDB's internal kind ("not MULTI", independent review)."""
    result = run_cli("sql", "PIVOT processed_data ON currency USING count(*)", "--db", str(db))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: sql runs one read-only statement, and a PIVOT without IN creates a type first "
        "(name the values: PIVOT t ON c IN ('a', 'b') USING count(*))\n",
    )
    named = run_cli(
        "sql",
        "PIVOT (SELECT currency FROM processed_data) ON currency IN ('USD', 'EUR') USING count(*)",
        "--db",
        str(db),
        "--format",
        "csv",
    )
    assert (named.exit_code, named.stdout.splitlines()[0]) == (0, "USD,EUR"), named.output
