"""The README as a newcomer follows it: its SQL examples run, what its examples write is
ignored by git, and the `ingest` command it names is installed."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import DATA, ROOT
from tests.reports.conftest import ingest

RunCli = Callable[..., Result]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_what_the_examples_write_is_ignored_by_git() -> None:
    written: set[str] = set()
    for block in blocks("bash"):
        written.update(re.findall(r"(?:-o|--output|--db) ([\w.-]+\.\w+)", block))
        written.update(re.findall(r"# saves ([\w.-]+\.\w+)", block))
    assert written == {
        "large_data.csv",
        "valid.parquet",
        "fix-me.xlsx",
        "eur.csv",
        "report.html",
        "payments.duckdb",
        "reporting.duckdb",
        "errors.xlsx",
    }
    # The report's own default name, and the database's.
    written.update(["report.html", "reporting.duckdb", "reporting.duckdb.wal"])
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *sorted(written)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr  # run in the checkout (a git repository)
    verdicts = dict(line.split("\t")[::-1] for line in checked.stdout.splitlines())
    assert sorted(verdicts) == sorted(written)
    assert [path for path, rule in verdicts.items() if rule.startswith("::")] == []


def test_the_sql_examples_run_and_read_in_a_stable_order(run_cli: RunCli, tmp_path: Path) -> None:
    sample_db = tmp_path / "sample.duckdb"
    ingest(sample_db, DATA / "transactions_sample.csv")
    [block] = blocks("sql")
    code = "\n".join(line for line in block.splitlines() if not line.startswith("--"))
    statements = [" ".join(s.split()) for s in code.split(";") if s.strip()]
    assert len(statements) == 3
    for statement in statements:
        result = run_cli("sql", statement, "--db", str(sample_db), "--format", "csv")
        assert result.exit_code == 0, (statement, result.output)
        assert len(result.output.splitlines()) > 1, statement
        # A query that returns rows of a table says in which order.
        assert "ORDER BY" in statement, statement


def test_the_ingest_command_is_installed_and_named() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ingest": "cli:command_line"}
    assert "installs the same commands as `ingest`" in " ".join(README.split())
    # Installed beside this interpreter by `pip install -e .` (Quick start).
    script = Path(sys.executable).parent / "ingest"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: ingest [OPTIONS] COMMAND [ARGS]...")
    assert "  run " in result.stdout and "  serve " in result.stdout
