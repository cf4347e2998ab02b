"""Every read command opens the file read-only: a writer holding it gives one clear line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.test_cli import cli
from tests.wording import assert_wraps

RunCli = Callable[..., Result]


def test_read_commands_name_the_process_holding_the_lock(sample_db: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(sample_db)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = tmp_path / "out.csv"
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for args in (
            ["summary"],
            ["summary", "--json"],
            ["sql", "SELECT 1"],
            ["export", "processed", "-o", str(out)],
            ["export", "errors", "-o", str(tmp_path / "out.xlsx")],
            ["report", "-o", str(tmp_path / "report.html")],
        ):
            result = cli(*args, "--db", str(sample_db))
            assert result.returncode == 2, args
            assert result.stdout == ""
            assert result.stderr == (
                f"error: {sample_db}: database is locked by process {holder.pid} "
                "(wait for it to finish or stop it, or use another --db file)\n"
            )
        assert list(tmp_path.iterdir()) == [sample_db]
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    # Readers do not lock each other out, nor leave anything behind.
    assert (
        cli(
            "sql", "SELECT count(*) FROM raw_data", "--db", str(sample_db), "--format", "csv"
        ).stdout
        == "count_star()\n21\n"
    )


def test_a_missing_database_and_bad_export_options(
    run_cli: RunCli, sample_db: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.duckdb"
    out = tmp_path / "out.csv"
    cases = [
        (
            ["summary", "--db", str(missing)],
            f"{missing}: no such database file (run an ingestion first or pass --db)",
        ),
        (
            ["report", "--db", str(missing)],
            f"{missing}: no such database file (run an ingestion first or pass --db)",
        ),
        (
            ["export", "processed", "--db", str(sample_db), "-o", str(tmp_path / "out.txt")],
            "cannot tell the export format from 'out.txt' (pass --format csv|json|ndjson|parquet|xlsx)",
        ),
        (
            ["export", "processed", "--db", str(sample_db), "-o", str(tmp_path / "no" / "out.csv")],
            f"{tmp_path / 'no' / 'out.csv'}: directory {tmp_path / 'no'} does not exist",
        ),
        (
            ["export", "processed", "--db", str(sample_db), "-o", str(out), "--run", "9"],
            "--run 9: no such run (runs are 1 to 1)",
        ),
        (
            ["export", "processed", "--db", str(sample_db), "-o", str(out), "--table", "nope"],
            "--table nope: not a typed table (typed tables: processed_data)",
        ),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 2, args
        assert (result.stdout, result.stderr) == ("", f"error: {message}\n")
    # DuckDB says what is wrong with a condition (in its words), between ours.
    conditions = [
        (
            "processed",
            "amout > 1",
            "(the condition sees the exported columns: run_id, row_number, external_id, amount, "
            "currency, source_channel, timestamp)",
            ("amout",),
        ),
        ("raw", "1=1; DROP TABLE raw_data", "", (";",)),
    ]
    for kind, where, after, mentions in conditions:
        result = run_cli("export", kind, "--db", str(sample_db), "-o", str(out), "--where", where)
        assert (result.exit_code, result.stdout) == (2, ""), where
        assert_wraps(result.stderr, f"error: --where {where!r}: ", after + "\n", mentions=mentions)
    assert not out.exists()
