"""`sql` and `export --where` reach nothing outside the database, whatever the SQL says.

The guarantee comes from DuckDB's own settings on the reader's connection (see
``engine.reports.lockdown``), not from the keyword check in front of `sql`: the corpus is run
on the library's reader directly (no keyword check at all) and through the CLI, and after
each run the files outside the database, the database itself and DuckDB's extension
directory must be exactly as they were, and nothing read from outside may be in the output.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import Result

from engine.reports.reader import open_reader
from tests.conftest import DATA, ROOT
from tests.reports.conftest import ingest
from tests.reports.hostile_sql import MARKER, Targets, corpus, where_corpus

RunCli = Callable[..., Result]
REFUSED = "only the database's own tables can be read (no other file, URL, database or extension)"


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Targets:
    found = Targets(tmp_path_factory.mktemp("outside"))
    found.make()
    duckdb.connect(str(found.other_db)).close()
    return found


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "locked.duckdb"
    ingest(path, DATA / "transactions_sample.csv")
    return path


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` with a hash of its bytes (directories as such)."""
    found: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            found[str(path)] = (
                hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
            )
    return found


@pytest.fixture
def unchanged(targets: Targets, db: Path) -> Iterator[None]:
    """Nothing outside the database is created or changed, nor the database itself."""
    roots = (targets.root, db.parent, Path.home() / ".duckdb")
    before = snapshot(*roots)
    yield
    assert snapshot(*roots) == before


def test_the_reader_itself_refuses_every_escape(
    targets: Targets, db: Path, unchanged: None
) -> None:
    """No keyword check here: only DuckDB's settings stand between the SQL and the disk."""
    statements = corpus(targets)
    assert len(statements) == 291
    executed = 0
    with open_reader(db) as store:
        for statement in statements:
            try:
                relation = store.con.sql(statement)
                rows = relation.fetchall() if relation is not None else []
            except duckdb.Error:
                continue
            # Only a plan or a result's shape may come back: nothing was run or read.
            assert statement.startswith(("EXPLAIN SELECT", "EXPLAIN ", "DESCRIBE ")), statement
            assert not statement.startswith("EXPLAIN ANALYZE"), statement
            assert MARKER not in repr(rows), statement
            executed += 1
        settings = store.rows(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('enable_external_access', 'lock_configuration', 'autoinstall_known_extensions', "
            "'autoload_known_extensions') ORDER BY name"
        )
    assert executed == 20  # EXPLAIN (not ANALYZE) of a payload, or DESCRIBE of a function
    assert settings == [
        ("autoinstall_known_extensions", "false"),
        ("autoload_known_extensions", "false"),
        ("enable_external_access", "false"),
        ("lock_configuration", "true"),
    ]


def test_sql_refuses_every_escape_with_one_line(
    run_cli: RunCli, targets: Targets, db: Path, unchanged: None
) -> None:
    for statement in corpus(targets):
        result = run_cli("sql", statement, "--db", str(db), "--format", "csv")
        if statement.startswith(("EXPLAIN SELECT", "DESCRIBE SELECT")) or (
            statement.startswith("EXPLAIN ") and not statement.startswith("EXPLAIN ANALYZE")
        ):
            # A plan or a shape: nothing outside was touched (checked by ``unchanged``).
            assert result.exit_code in (0, 2), statement
        else:
            assert result.exit_code == 2, statement
            # (rows of raw_data may come first: the UNION fails once it reaches the file)
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), (statement, lines)
        assert MARKER not in result.output, statement


def cli(db: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args, "--db", str(db)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "HOME": str(home)},
        timeout=120,
    )


def test_the_reported_escapes_in_real_cli_runs(targets: Targets, db: Path, tmp_path: Path) -> None:
    """The cases of the issue, each in its own `cli.py` process with an empty home."""
    home = tmp_path / "home"
    home.mkdir()
    before = snapshot(targets.root, db.parent)
    cases = [
        (
            f"EXPLAIN ANALYZE COPY (SELECT raw FROM raw_data) TO '{targets.out}'",
            "sql explains queries (SELECT, FROM ...) only, not COPY",
        ),
        (
            f"SELECT * FROM read_csv('{targets.secret}')",
            f"query refused: it reaches outside the database ({targets.secret}); {REFUSED}",
        ),
        (
            "SELECT * FROM 'https://example.invalid/data.csv'",
            "query refused: it reaches outside the database "
            f"(https://example.invalid/data.csv); {REFUSED}",
        ),
        (
            "EXPLAIN ANALYZE SET enable_external_access = true",
            "sql explains queries (SELECT, FROM ...) only, not SET",
        ),
        (  # (the lockdown refuses it too: test_the_reader_itself_refuses_every_escape)
            "CALL enable_logging('QueryLog')",
            "sql runs queries that only read; this one calls enable_logging(), which changes "
            "DuckDB's state",
        ),
    ]
    for statement, message in cases:
        result = cli(db, "sql", statement, home=home)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {message}\n")
    result = cli(db, "sql", "EXPLAIN ANALYZE INSTALL httpfs", home=home)
    assert (result.returncode, result.stderr) == (
        2,
        "error: sql explains queries (SELECT, FROM ...) only, not LOAD\n",
    )
    assert list(home.iterdir()) == []
    assert snapshot(targets.root, db.parent) == before


def test_explain_analyze_runs_only_queries(run_cli: RunCli, db: Path) -> None:
    """EXPLAIN ANALYZE runs what it explains, and DuckDB lets a locked-down connection
    write into its own spill directory (``<db>.tmp``): only a query may be explained."""
    spill = db.parent / f"{db.name}.tmp"
    spill.mkdir()
    refused = {
        f"EXPLAIN ANALYZE COPY (SELECT 'pwned') TO '{spill}/w.csv'": "COPY",
        f"/* ( */ explain (analyze) COPY (SELECT 1) TO '{spill}/w.parquet'": "COPY",
        "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1": "CREATE",
        "EXPLAIN ANALYZE CREATE TEMP MACRO m() AS 1": "CREATE",
    }
    for statement, kind in refused.items():
        result = run_cli("sql", statement, "--db", str(db))
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: sql explains queries (SELECT, FROM ...) only, not {kind}\n",
        ), statement
    # Options are read in DuckDB's tokens: a ")" inside a string does not end them.
    odd = run_cli("sql", "EXPLAIN (FORMAT 'a)') COPY (SELECT 1) TO 'x.csv'", "--db", str(db))
    assert (odd.exit_code, odd.stderr) == (
        2,
        "error: sql explains queries (SELECT, FROM ...) only, not COPY\n",
    )
    assert list(spill.iterdir()) == []
    for statement in (
        "EXPLAIN ANALYZE SELECT count(*) FROM raw_data",
        "/* a */ -- plan\n EXPLAIN /* b */ ANALYZE (FORMAT json) FROM raw_data",
        "EXPLAIN SELECT 1",
    ):
        result = run_cli("sql", statement, "--db", str(db), "--format", "csv")
        assert result.exit_code == 0, (statement, result.stderr)
        assert result.output.startswith("explain_key,explain_value\n"), statement


def test_export_where_cannot_break_out_or_read_outside(
    run_cli: RunCli, targets: Targets, db: Path, unchanged: None
) -> None:
    output = targets.root / "out" / "export.csv"
    for condition in where_corpus(targets):
        result = run_cli("export", "raw", "--db", str(db), "-o", str(output), "--where", condition)
        assert result.exit_code == 2, condition
        lines = result.stderr.splitlines()
        # Refused when the condition is bound, or when the export runs it (duckdb_secrets()).
        assert len(lines) == 1, lines
        assert lines[0].startswith(
            (f"error: --where {condition!r}: ", f"error: {output}: export refused: ")
        ), lines
        assert MARKER not in result.output, condition
        assert not output.exists()


def test_export_where_messages(run_cli: RunCli, targets: Targets, db: Path) -> None:
    output = targets.root / "out" / "export.csv"
    cases = [
        (
            f"raw IN (SELECT content FROM read_text('{targets.secret}'))",
            f"refused: it reaches outside the database ({targets.secret}); {REFUSED}",
        ),
        ("1=1) TO 'x.csv' --", "not a single SQL condition ("),
    ]
    for condition, message in cases:
        result = run_cli("export", "raw", "--db", str(db), "-o", str(output), "--where", condition)
        assert result.stderr.startswith(f"error: --where {condition!r}: {message}")
    # A condition that stays inside works, comments and all, and only the export is written.
    result = run_cli(
        "export", "raw", "--db", str(db), "-o", str(output), "--where", "row_number <= 2 -- two"
    )
    assert result.exit_code == 0, result.output
    assert output.read_text().splitlines() == [
        "run_id,row_number,line_number,raw",
        '1,1,2,"TXN-1,120.50,USD,CHANNEL1,2024-03-01T09:15:00"',
        '1,2,3,"TXN-2,89.99,eur,CHANNEL2,2024-03-01T09:16:30Z"',
    ]
    output.unlink()


def test_a_view_of_the_file_that_reads_outside_it_is_one_line(tmp_path: Path) -> None:
    """The database itself may be hostile: a view over a file outside it is refused by the
    lockdown, and every read command says so in one line (export raw was a traceback)."""
    path = tmp_path / "hostile.duckdb"
    ingest(path, DATA / "transactions_sample.csv")
    secret = tmp_path / "secret.txt"
    secret.write_text(MARKER)
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE OR REPLACE VIEW raw_data AS SELECT 1 AS run_id, 1 AS row_number, "
            f"1 AS line_number, content AS raw FROM read_text('{secret}')"
        )
    refused = (
        f"refused: it reaches outside the database ({secret}); only the database's own tables "
        "can be read (no other file, URL, database or extension)"
    )
    expected = {
        ("export", "raw", "-o", str(tmp_path / "r.csv")): f"cannot export raw: {refused}",
        ("sql", "SELECT raw FROM raw_data"): f"query {refused}",
    }
    for args, message in expected.items():
        done = cli(path, *args, home=tmp_path)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {message}\n")
    assert not (tmp_path / "r.csv").exists()


def test_statements_that_parse_as_reads_but_run_others_are_refused(
    run_cli: RunCli, db: Path
) -> None:
    """A CTE may be a COPY ... TO (the statement is still a SELECT), query() runs its text,
    IMPORT DATABASE parses as a PRAGMA and runs a directory's scripts: each is refused on
    DuckDB's own parse tree, and nothing is written, even into the spill directory."""
    spill = db.parent / f"{db.name}.tmp"
    spill.mkdir(exist_ok=True)
    writes = "error: sql runs queries that only read; this one holds a COPY statement\n"
    runs_text = (
        "error: sql runs queries that only read; this one calls query(), which runs the text "
        "it is given\n"
    )
    pragmas = (
        "error: sql runs the PRAGMAs that read only (collations, database_list, database_size, "
        "functions, metadata_info, platform, show, show_databases, show_tables, "
        "show_tables_expanded, storage_info, table_info, user_agent, version)\n"
    )
    cases = {
        f"WITH a AS (COPY (SELECT 'pwn') TO '{spill}/w1.csv') SELECT 1": writes,
        f"WITH a AS (COPY processed_data TO '{spill}/w2.parquet' (FORMAT parquet)) FROM a": writes,
        f"EXPLAIN ANALYZE WITH a AS (COPY (SELECT 1) TO '{spill}/w3.csv') SELECT 1": writes,
        f"SELECT 1 UNION ALL (WITH a AS (COPY (SELECT 1) TO '{spill}/w4.csv') SELECT 2)": writes,
        "SELECT * FROM query('SELECT 1')": runs_text,
        "CALL query('SELECT 1')": runs_text,
        f"IMPORT DATABASE '{spill}'": pragmas,
        f"PRAGMA import_database('{spill}')": pragmas,
        "COPY FROM DATABASE locked TO other": pragmas,
        "UPDATE EXTENSIONS": "error: sql runs read-only queries (SELECT, FROM ..., DESCRIBE, "
        "SUMMARIZE, SHOW, EXPLAIN, PRAGMA, CALL), not a statement of another kind\n",
    }
    for statement, message in cases.items():
        result = run_cli("sql", statement, "--db", str(db))
        assert (result.exit_code, result.stderr) == (2, message), statement
    assert list(spill.iterdir()) == []
    reads = {
        "PRAGMA table_info('processed_data')": "cid,name,type,notnull,dflt_value,pk\n",
        "CALL pragma_version()": "library_version,source_id,codename\n",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT * FROM r": "n\n1\n2\n3\n",
    }
    for statement, start in reads.items():
        result = run_cli("sql", statement, "--db", str(db), "--format", "csv")
        assert result.exit_code == 0 and result.output.startswith(start), statement


def test_the_shared_spill_directory_cannot_be_read(run_cli: RunCli, db: Path) -> None:
    """DuckDB lets a locked-down connection read its spill directory; the default one
    (``<db>.tmp``) is shared by every process on the file, so a reader spills into one of
    its own instead, and a file planted in ``<db>.tmp`` stays out of reach."""
    spill = db.parent / f"{db.name}.tmp"
    spill.mkdir(exist_ok=True)
    planted = spill / "planted.csv"
    planted.write_text("secret\nfrom-another-process\n")
    try:
        result = run_cli("sql", f"SELECT * FROM read_csv('{planted}')", "--db", str(db))
        assert (result.exit_code, result.stdout, result.stderr) == (
            2,
            "",
            f"error: query refused: it reaches outside the database ({planted}); {REFUSED}\n",
        )
    finally:
        planted.unlink()


def test_a_reader_spills_into_a_directory_of_its_own(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Path(shutil.copy(db, tmp_path / db.name))
    monkeypatch.setattr("engine.store.store.READ_MEMORY", "48MB")
    # More than 48 MB to hold: without a spill directory, it runs out of memory.
    query = "SELECT count(DISTINCT md5(range::VARCHAR)) FROM range(1000000)"
    bare = duckdb.connect(config={"memory_limit": "48MB", "temp_directory": ""})
    with pytest.raises(duckdb.OutOfMemoryException):
        bare.sql(query).fetchall()
    bare.close()
    setting = "SELECT current_setting('temp_directory')"
    reader = open_reader(db)
    try:
        own = str(reader.rows(setting)[0][0])
        assert own.startswith(f"{db}.read-{os.getpid()}-") and own.endswith(".tmp")
        assert len(Path(own).name) == len(f"{db.name}.read-{os.getpid()}-.tmp") + 16
        assert reader.rows(query) == [(1_000_000,)]  # it spilled, into its own directory
    finally:
        reader.close()
    assert not Path(own).exists()
    assert not (db.parent / f"{db.name}.tmp").exists()
    # Another process gets another directory.
    code = (
        "from engine.reports.reader import open_reader; import sys; "
        f'print(open_reader(sys.argv[1]).rows("{setting}")[0][0])'
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    assert other.startswith(f"{db}.read-") and other != own


def test_a_killed_readers_spill_directory_is_removed_by_the_next(db: Path, tmp_path: Path) -> None:
    """A reader killed while spilling left hundreds of MB behind, under a name no later
    reader uses (second attack): the next reader removes those of processes that are gone,
    and leaves a live one's."""
    db = Path(shutil.copy(db, tmp_path / db.name))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"{db.name}.read-{int(dead.stdout)}-{'a' * 16}.tmp"
    alive = tmp_path / f"{db.name}.read-1-{'b' * 16}.tmp"  # init's: a live process
    other = tmp_path / f"{db.name}.read-notes.tmp"  # not one of ours
    for path in (orphan, alive, other):
        path.mkdir()
        (path / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1000)
    open_reader(db).close()
    assert (orphan.exists(), alive.exists(), other.exists()) == (False, True, True)
