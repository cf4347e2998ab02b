"""``cli.py run FILE --schema model.py:Fuzzed --db X`` in-process, and what it stored."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from click.testing import CliRunner

import cli
from tests.modelfuzz.spec import MODEL

TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")


@dataclass(frozen=True)
class Unreadable:
    """A stored value Python cannot represent (e.g. a year outside 1-9999), as DuckDB text."""

    text: str


@dataclass
class Stored:
    """One run as the database holds it."""

    exit_code: int
    output: str
    crash: str | None = None
    run: dict[str, Any] = field(default_factory=dict)
    raw: list[tuple[int, str]] = field(default_factory=list)
    valid: dict[int, dict[str, Any]] = field(default_factory=dict)
    valid_numbers: list[int] = field(default_factory=list)
    invalid: dict[int, list[tuple[str, tuple[str, ...], str, Any]]] = field(default_factory=dict)
    invalid_numbers: list[int] = field(default_factory=list)
    invalid_raw: dict[int, str] = field(default_factory=dict)
    columns: dict[str, str] = field(default_factory=dict)


def run_cli(path: Path, model_path: Path, db: Path, fmt: str) -> tuple[int, str, str | None]:
    result = CliRunner().invoke(
        cli.main,
        ["run", str(path), "--schema", f"{model_path}:{MODEL}", "--db", str(db), "--format", fmt],
        catch_exceptions=True,
    )
    crash = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        crash = f"{type(exc).__name__} at {where}: {exc}"
    return result.exit_code, result.output, crash


def _input(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return Unreadable(text)


def read_run(db: Path, run_id: int, stored: Stored) -> Stored:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        cursor = con.execute("SELECT * FROM ingestion_runs WHERE run_id = ?", [run_id])
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        if row is None:
            return stored
        stored.run = dict(zip(names, row, strict=True))
        stored.raw = con.execute(
            "SELECT row_number, raw FROM raw_data WHERE run_id = ? ORDER BY row_number", [run_id]
        ).fetchall()
        table = stored.run["target_table"]
        described = con.execute(f'DESCRIBE "{table}"').fetchall()
        stored.columns = {name: kind for name, kind, *_ in described}
        fields = [c for c in stored.columns if c not in ("run_id", "row_number")]
        select = []
        for c in fields:
            if stored.columns[c] in TEMPORAL:
                select.append(
                    f'CASE WHEN year("{c}") BETWEEN 1 AND 9999 THEN "{c}" END, "{c}"::VARCHAR'
                )
            else:
                select.append(f'"{c}", NULL')
        query = f'SELECT row_number, {", ".join(select) or "NULL"} FROM "{table}" WHERE run_id = ?'
        for number, *cells in con.execute(query, [run_id]).fetchall():
            values = {}
            for i, c in enumerate(fields):
                value, text = cells[2 * i], cells[2 * i + 1]
                values[c] = Unreadable(text) if value is None and text is not None else value
            stored.valid[number] = values
            stored.valid_numbers.append(number)
        for number, raw, errors in con.execute(
            "SELECT row_number, raw, errors FROM ingestion_errors WHERE run_id = ?", [run_id]
        ).fetchall():
            stored.invalid_numbers.append(number)
            stored.invalid_raw[number] = raw
            stored.invalid[number] = [
                (e["type"], tuple(e["loc"]), e["msg"], _input(e["input"])) for e in errors
            ]
    finally:
        con.close()
    return stored


def _last_run(db: Path) -> int:
    if not db.exists():
        return 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        found = con.execute("SELECT max(run_id) FROM ingestion_runs").fetchone()
    except duckdb.Error:
        found = None
    finally:
        con.close()
    return int(found[0]) if found is not None and found[0] is not None else 0


def ingest(path: Path, model_path: Path, db: Path, fmt: str) -> Stored:
    """Run the CLI on one file and read back the run it added, if any."""
    before = _last_run(db)
    code, output, crash = run_cli(path, model_path, db, fmt)
    stored = Stored(code, output, crash)
    after = _last_run(db)
    return read_run(db, after, stored) if after > before else stored
