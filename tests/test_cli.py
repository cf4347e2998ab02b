"""The CLI as a user runs it: exit codes, one-line errors, output."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click
from click.testing import Result

from engine.cli import COMMANDS
from engine.cli import main as cli_main
from engine.cli.schemas import schema as schema_group
from tests.conftest import DATA, ROOT, query
from tests.wording import table_rows

RunCli = Callable[..., Result]


NO_TWIN = """
from pydantic import BaseModel, field_validator


class Channel(BaseModel):
    source_channel: str

    @field_validator("source_channel")
    @classmethod
    def known(cls, value: str) -> str:
        if not value.startswith("CHANNEL"):
            raise ValueError("unknown channel")
        return value
"""


def test_run_says_how_many_rows_pydantic_decided(run_cli: RunCli, tmp_path: Path) -> None:
    """A validator with no vectorized twin: every row reaching it is Pydantic's, and said so."""
    schema = tmp_path / "channel.py"
    schema.write_text(NO_TWIN)
    source = tmp_path / "c.csv"
    source.write_text("source_channel\nCHANNEL1\nWEB\n\nCHANNEL2\n")
    result = run_cli(
        "run", str(source), "--schema", f"{schema}:Channel", "--db", str(tmp_path / "c.duckdb")
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:3] == [
        "  3 rows were decided by Pydantic itself (no vectorized twin)",
        "top errors",
    ]


def test_summary_line_is_whole_under_a_long_path(run_cli: RunCli, tmp_path: Path) -> None:
    """Output is not broken at 80 columns: the run line stays one greppable line."""
    folder = tmp_path / ("a_folder_with_a_long_name_" * 4)
    folder.mkdir()
    source = folder / "transactions_sample.csv"
    source.write_bytes((DATA / "transactions_sample.csv").read_bytes())
    result = run_cli("run", str(source), "--db", str(tmp_path / "t.duckdb"))
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"run 1 {source}: 21 rows, 7 valid, 14 invalid in ")
    assert first.endswith(" rows/s)")
    assert result.output.splitlines()[1] == "top errors"
    # Tables are not squeezed to 80 columns either (the path is cut to its last 48
    # characters on purpose; `summary --json` has it whole).
    summary = run_cli("summary", "--db", str(tmp_path / "t.duckdb"))
    assert summary.exit_code == 0, summary.output
    cells = next(row for row in table_rows(summary.output) if row[0] == "1")
    assert cells[:4] == ["1", "completed", "…" + str(source)[-47:], "Transaction"]
    assert cells[4:8] == ["21", "7", "14", "33.3%"]


def test_run_then_summary_json(run_cli: RunCli, db: Path) -> None:
    sample = DATA / "transactions_sample.csv"
    result = run_cli("run", str(sample), "--db", str(db))
    assert result.exit_code == 0, result.output
    first, title = result.output.splitlines()[:2]
    assert re.fullmatch(
        rf"run 1 {re.escape(str(sample))}: 21 rows, 7 valid, 14 invalid in [0-9.]+ s "
        r"\([0-9,]+ rows/s\)",
        first,
    ), first
    assert title == "top errors"
    assert table_rows(result.output) == [
        ["field", "error type", "rows"],
        ["amount", "float_parsing", "2"],
        ["amount", "greater_than", "2"],
        ["currency", "value_error", "2"],
        ["(row)", "csv_too_few_fields", "1"],
        ["(row)", "csv_too_many_fields", "1"],
        ["(row)", "csv_unterminated_quote", "1"],
        ["(row)", "invalid_utf8", "1"],
        ["external_id", "missing", "1"],
    ]
    again = run_cli("run", str(sample), "--db", str(db))
    assert again.exit_code == 0
    assert again.output == (
        f"skipped {sample}: already ingested as run 1 with the same schema; pass --force to "
        "ingest it again\n"
    )
    summary = run_cli("summary", "--db", str(db), "--json")
    assert summary.exit_code == 0
    data = json.loads(summary.output)
    assert (
        data["runs_completed"],
        data["rows_total"],
        data["rows_valid"],
        data["rows_invalid"],
    ) == (1, 21, 7, 14)
    assert data["success_rate"] == 7 / 21
    assert [(r["run_id"], r["status"], r["format"]) for r in data["runs"]] == [
        (1, "completed", "csv")
    ]


def test_run_prints_the_duration_that_summary_shows(run_cli: RunCli, tmp_path: Path) -> None:
    """One duration per run: the `run` line, `summary` and `summary --json` agree."""
    db = tmp_path / "d.duckdb"
    result = run_cli("run", str(DATA / "transactions_sample.ndjson"), "--db", str(db))
    assert result.exit_code == 0, result.output
    printed = re.fullmatch(
        r"run 1 .*: 15 rows, 5 valid, 10 invalid in ([0-9.]+) s \(([0-9,]+) rows/s\)",
        result.output.splitlines()[0],
    )
    assert printed is not None, result.output
    [run] = json.loads(run_cli("summary", "--db", str(db), "--json").output)["runs"]
    assert printed.groups() == (f"{run['duration_s']:.2f}", f"{run['rows_per_s']:,.0f}")
    assert run["rows_per_s"] == 15 / run["duration_s"]
    table = run_cli("summary", "--db", str(db)).output
    row = next(line for line in table.splitlines() if line.startswith("   1 │"))
    assert [cell.strip() for cell in row.split("│")][-2:] == list(printed.groups())


def test_one_of_a_thing_is_singular(run_cli: RunCli, tmp_path: Path) -> None:
    """Messages count in English: "1 row", "1 completed run"; and `generate` off a terminal
    prints its one closing line, no progress label."""
    db, data = tmp_path / "one.duckdb", tmp_path / "one.csv"
    made = run_cli("generate", "--rows", "1", "-o", str(data), "--bad-fraction", "0")
    assert made.exit_code == 0
    assert (made.stdout, made.stderr) == (f"wrote 1 row to {data}\n", "")
    assert run_cli("generate", "--rows", "0", "-o", str(tmp_path / "none.csv")).output == (
        f"wrote 0 rows to {tmp_path / 'none.csv'}\n"
    )
    ran = run_cli("run", str(data), "--db", str(db))
    assert ran.output.startswith(f"run 1 {data}: 1 row, 1 valid, 0 invalid in ")
    summary = run_cli("summary", "--db", str(db)).output.splitlines()[0]
    assert summary.startswith("1 completed run (0 failed): 1 row, 1 valid, 0 invalid, ")
    exported = run_cli("export", "processed", "-o", str(tmp_path / "one.json"), "--db", str(db))
    assert exported.output.startswith("exported 1 row of processed_data to ")
    shown = run_cli("sql", "SELECT 1 AS n", "--db", str(db)).output.splitlines()
    assert shown[-1] == "1 row"


def test_quiet_prints_nothing(run_cli: RunCli, db: Path) -> None:
    result = run_cli("run", str(DATA / "transactions_sample.ndjson"), "--db", str(db), "--quiet")
    assert result.exit_code == 0
    assert result.output == ""
    assert query(db, "SELECT count(*) FROM raw_data") == [(15,)]


def test_generate_is_deterministic(run_cli: RunCli, tmp_path: Path) -> None:
    digests = []
    for name in ("a.csv", "b.csv"):
        result = run_cli(
            "generate",
            "--rows",
            "1000",
            "-o",
            str(tmp_path / name),
            "--seed",
            "9",
            "--bad-fraction",
            "0.2",
        )
        assert result.exit_code == 0
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0] == "external_id,amount,currency,source_channel,timestamp"
    assert len(lines) == 1001
    assert lines[1].startswith("TXN-1,")
    bad = sum(1 for line in lines[1:] if line.split(",")[1] == "-50.0")
    # --bad-fraction 0.2 of 1,000 rows, drawn by numpy's PCG64 from seed 9: 185 exactly.
    assert bad == 185
    assert {line.split(",")[2] for line in lines[1:]} == {"USD", "EUR", "GBP", "AUD", "JPY", "CAD"}
    assert {line.split(",")[3] for line in lines[1:]} == {
        "CHANNEL1",
        "CHANNEL2",
        "CHANNEL3",
        "CHANNEL4",
    }
    ndjson = run_cli(
        "generate", "--rows", "3", "-o", str(tmp_path / "c.ndjson"), "--format", "ndjson"
    )
    assert ndjson.exit_code == 0
    assert json.loads((tmp_path / "c.ndjson").read_text().splitlines()[0])["external_id"] == "TXN-1"


def test_generate_writes_what_the_output_name_says(run_cli: RunCli, tmp_path: Path) -> None:
    """``-o g.ndjson`` wrote CSV, which a run then read as NDJSON: an invalid row per line
    (independent README audit). The name tells the format unless --format does."""
    header = "external_id,amount,currency,source_channel,timestamp"
    for name, expected in (
        ("a.ndjson", "ndjson"),
        ("b.jsonl", "ndjson"),
        ("c.json", "ndjson"),
        ("d.csv", "csv"),
        ("e.txt", "csv"),
        ("f", "csv"),
    ):
        done = run_cli("generate", "--rows", "2", "-o", str(tmp_path / name))
        assert (done.exit_code, done.output) == (0, f"wrote 2 rows to {tmp_path / name}\n")
        first = (tmp_path / name).read_text().splitlines()[0]
        if expected == "csv":
            assert first == header, name
        else:
            assert list(json.loads(first)) == header.split(","), name
    forced = run_cli("generate", "--rows", "2", "-o", str(tmp_path / "g.json"), "--format", "csv")
    assert forced.exit_code == 0
    assert (tmp_path / "g.json").read_text().splitlines()[0] == header
    refused = {
        "h.csv.gz": "h.csv.gz: generate writes plain CSV or NDJSON, which a run would not read "
        "as .gz: name the file .csv, .ndjson, .jsonl or .json",
        "i.parquet": "i.parquet: generate writes plain CSV or NDJSON, which a run would not "
        "read as .parquet: name the file .csv, .ndjson, .jsonl or .json",
        "nodir/j.csv": f"{tmp_path / 'nodir/j.csv'}: no such directory {str(tmp_path / 'nodir')!r}",
    }
    for name, line in refused.items():
        done = run_cli("generate", "--rows", "2", "-o", str(tmp_path / name))
        assert (done.exit_code, done.stderr) == (2, f"error: {line}\n"), name
        assert not (tmp_path / name).exists()
    # A database there is never overwritten (it was, silently).
    db = tmp_path / "reporting.duckdb"
    assert run_cli("run", str(DATA / "transactions_sample.csv"), "--db", str(db)).exit_code == 0
    before = db.read_bytes()
    kept = run_cli("generate", "--rows", "2", "-o", str(db))
    assert (kept.exit_code, kept.stderr) == (
        2,
        f"error: {db}: a DuckDB database; generate would overwrite it\n",
    )
    assert db.read_bytes() == before


def cli(
    *args: str, cwd: Path | None = None, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
    )


def test_bad_inputs_fail_with_one_line(tmp_path: Path, db: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    odd = tmp_path / "data.txt"
    odd.write_text("external_id,amount\n")
    cases = [
        (tmp_path / "missing.csv", f"error: {tmp_path / 'missing.csv'}: no such file"),
        (empty, f"error: {empty}: file is empty"),
        (
            odd,
            f"error: {odd}: cannot tell the format from the extension '.txt' "
            "(pass --format csv|ndjson|json|parquet|arrow)",
        ),
    ]
    for path, expected in cases:
        result = cli("run", str(path), "--db", str(db))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.strip() == expected
        assert "Traceback" not in result.stderr
    # --format makes the odd extension readable.
    result = cli("run", str(odd), "--db", str(db), "--format", "csv", "--schema", "transactions")
    assert result.returncode == 0, result.stderr


def test_unknown_schema_and_bad_context(db: Path) -> None:
    result = cli("run", str(DATA / "transactions_sample.csv"), "--db", str(db), "--schema", "nope")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: schema nope: not found (known schemas: ")
    result = cli(
        "run", str(DATA / "transactions_sample.csv"), "--db", str(db), "--context", "novalue"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --context expects KEY=VALUE, got 'novalue'"


def test_schema_from_a_file(tmp_path: Path, db: Path) -> None:
    module = tmp_path / "my_models.py"
    module.write_text(
        "from pydantic import BaseModel, Field\n"
        "class Reading(BaseModel):\n"
        "    sensor: str\n"
        "    value: float = Field(ge=0)\n"
    )
    data = tmp_path / "readings.csv"
    data.write_text("sensor,value\nA,1.5\nB,-2\n,3\n")
    result = cli("run", str(data), "--db", str(db), "--schema", f"{module}:Reading")
    assert result.returncode == 0, result.stderr
    assert query(db, "SELECT sensor, value FROM reading ORDER BY row_number") == [("A", 1.5)]
    assert query(db, "SELECT row_number, loc, type FROM error_details ORDER BY 1") == [
        (2, "value", "greater_than_equal"),
        (3, "sensor", "missing"),
    ]


def test_locked_database_names_the_holder(tmp_path: Path, db: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        for args in (["run", str(DATA / "transactions_sample.csv")], ["summary"]):
            result = cli(*args, "--db", str(db))
            assert result.returncode == 2
            assert result.stderr.strip() == (
                f"error: {db}: database is locked by process {holder.pid} "
                "(wait for it to finish or stop it, or use another --db file)"
            )
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)


def test_help_explains_commands() -> None:
    """Each command's description is whole in the list of commands, at 80 columns too."""
    for group, names in [(cli_main, list(COMMANDS)), (schema_group, ["explain", "list"])]:
        args = [] if group is cli_main else ["schema"]
        result = cli(*args, "--help", columns=80)
        assert result.returncode == 0
        assert max(len(line) for line in result.stdout.splitlines()) <= 80
        listed = " ".join(result.stdout.split("Commands:")[1].split())
        context = click.Context(group)
        for name in names:
            command = group.get_command(context, name)
            assert command is not None and command.help
            description = " ".join(command.help.split("\n\n")[0].split())
            assert f"{name} {description}" in listed, name
    run_help = cli("run", "--help").stdout
    assert "--force" in run_help and "--schema" in run_help and "atomic" in run_help
