"""``run --new-table`` and ``schema diff`` on a lake, through the real CLI: what they do and
say on a DuckDB file, plus where a lake's rows go (a generation of the table)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from engine.lake.location import Lake
from engine.schemas import load_schema
from engine.validation.compiler import fingerprint
from tests.lake.conftest import db_rows, lake_rows
from tests.lake.test_widening import evolve

Cli = Callable[..., subprocess.CompletedProcess[str]]

V5 = """

class V5(V4):  # a longer decimal precision again
    price: Decimal | None = Field(default=None, max_digits=14, decimal_places=2)
"""
REFUSED = (
    "table 'readings'{where} cannot take schema Narrow as it is: value is DOUBLE in the "
    "table, the model narrows it to DECIMAL(38,0); new required field code (VARCHAR, no "
    "default) would be NULL in the 9 stored rows (pass --new-table to store this model's rows "
    "in a new table readings_v5, or give the model another __table_name__)"
)


def both(tmp_path: Path, cli: Cli) -> tuple[Path, Lake, Path]:
    """The same evolution (five runs, a replay) into a DuckDB file and into a lake."""
    db, lake = tmp_path / "x.duckdb", Lake(str(tmp_path / "lake"))
    evolve(tmp_path, cli, ["--db", str(db)])
    evolve(tmp_path, cli, ["--lake", lake.uri])
    spec = tmp_path / "models.py"
    spec.write_text(spec.read_text() + V5)
    return db, lake, spec


def test_new_table_on_a_lake_does_what_it_does_on_a_database(tmp_path: Path, cli: Cli) -> None:
    db, lake, spec = both(tmp_path, cli)
    coded = tmp_path / "coded.csv"
    coded.write_text("rid,value,code\nz,1,c1\ny,2,c2\n")
    more = tmp_path / "more.csv"
    more.write_text("rid,value,code\nx,3,c3\n")
    plain = tmp_path / "plain.csv"
    plain.write_text("rid,value\nw,4.5\n")
    for target, where in (([f"--db={db}"], ""), ([f"--lake={lake.uri}"], " of the lake")):
        refused = cli("run", str(coded), *target, "--schema", f"{spec}:Narrow")
        name = str(db) if where == "" else lake.uri
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"error: {name}: {REFUSED.format(where=where)}\n",
        )
        moved = cli("run", str(coded), *target, "--schema", f"{spec}:Narrow", "--new-table",
                    "--json")  # fmt: skip
        assert (moved.returncode, moved.stderr) == (0, "")
        assert json.loads(moved.stdout)["rows_valid"] == 2
        # Later runs of the model follow it there; the older versions stay where they were.
        for data, model in ((more, "Narrow"), (plain, "V4")):
            done = cli("run", str(data), *target, "--schema", f"{spec}:{model}", "-q")
            assert (done.returncode, done.stderr) == (0, "")
    compared = {
        "SELECT schema_name, target_table, status, rows_valid FROM ingestion_runs "
        "ORDER BY run_id": [
            ("V1", "readings", "completed", 3),  # its replayed row included
            ("V2", "readings", "completed", 2),
            ("V3", "readings", "completed", 2),
            ("V4", "readings", "completed", 1),
            ("V4", "readings", "completed", 3),
            ("Narrow", "readings_v5", "completed", 2),
            ("Narrow", "readings_v5", "completed", 1),
            ("V4", "readings", "completed", 1),
        ],
        "SELECT version, declared_table, target_table, changes FROM schema_versions "
        "WHERE version = 5": [
            (5, "readings", "readings_v5", "created table readings_v5 (a new table for readings)")
        ],
        "SELECT rid, value, code FROM readings_v5 ORDER BY rid": [
            ("x", Decimal(3), "c3"),
            ("y", Decimal(2), "c2"),
            ("z", Decimal(1), "c1"),
        ],
        "SELECT count(*), sum(value) FROM readings": [(10, 36.5)],
    }
    for query, expected in compared.items():
        assert db_rows(db, query) == expected, query
        assert lake_rows(lake, query) == expected, query
    assert (tmp_path / "lake" / "readings_v5").is_dir()


def diff(cli: Cli, spec: Path, model: str, target: str, *options: str) -> list[str]:
    done = cli("schema", "diff", f"{spec}:{model}", *target.split("=", 1), *options)
    assert (done.returncode, done.stderr) == (0, "")
    return str(done.stdout).splitlines()


def test_schema_diff_on_a_lake_says_what_the_next_run_would_do(tmp_path: Path, cli: Cli) -> None:
    db, lake, spec = both(tmp_path, cli)
    on_db, on_lake = f"--db={db}", f"--lake={lake.uri}"

    def mark(model: str) -> str:
        return fingerprint(load_schema(f"{spec}:{model}"), {})

    # What a DuckDB file says, a lake says (for the models both take).
    for model in ("V4", "V2", "Narrow", "V5"):
        assert diff(cli, spec, model, on_lake)[: len(diff(cli, spec, model, on_db))] == diff(
            cli, spec, model, on_db
        ), model
    assert diff(cli, spec, "V4", on_lake) == [
        f"schema V4 ({mark('V4')}, version 4 of readings) -> table readings (9 rows)",
        "  = rid: VARCHAR",
        "  = value: DOUBLE",
        "  = note: VARCHAR",
        "  = price: DECIMAL(12,2)",
        "  - legacy: kept legacy VARCHAR (no longer in the model: new rows NULL)",
        "the next run fits as it is",
    ]
    assert diff(cli, spec, "V5", on_lake) == [
        f"schema V5 ({mark('V5')}, a new version) -> table readings (9 rows)",
        "  = rid: VARCHAR",
        "  = value: DOUBLE",
        "  = note: VARCHAR",
        "  ~ price: widened price from DECIMAL(12,2) to DECIMAL(14,2)",
        "  - legacy: kept legacy VARCHAR (no longer in the model: new rows NULL)",
        "the next run fits, after these changes: widened price from DECIMAL(12,2) to DECIMAL(14,2)",
        "on the lake: a wider type starts a new generation of the table, the Delta table "
        "readings__g4; readers see every generation as one table",
    ]
    assert diff(cli, spec, "Narrow", on_lake)[-1] == (
        "the next run is refused: value is DOUBLE in the table, the model narrows it to "
        "DECIMAL(38,0); new required field code (VARCHAR, no default) would be NULL in the 9 "
        "stored rows (pass --new-table to store this model's rows in a new table readings_v5, "
        "or give the model another __table_name__)"
    )
    # The old model: refused on a DuckDB file, taken by its own generation on a lake.
    assert diff(cli, spec, "V1", on_db)[-1].startswith("the next run is refused: value is DOUBLE")
    assert diff(cli, spec, "V1", on_lake) == [
        f"schema V1 ({mark('V1')}, version 1 of readings) -> table readings (9 rows)",
        "  = rid: VARCHAR",
        "  = value: DECIMAL(38,0)",
        "  = legacy: VARCHAR",
        "the next run fits as it is",
        "on the lake: its rows go to readings, an older generation of the table (the newest, "
        "readings__g3, has a wider type); readers see every generation as one table",
    ]
    found = json.loads("\n".join(diff(cli, spec, "V5", on_lake, "--format", "json")))
    assert (found["compatible"], found["version"], found["lake_table"]) == (
        True,
        None,
        "readings__g4",
    )
    assert "lake_table" not in json.loads(
        "\n".join(diff(cli, spec, "V5", on_db, "--format", "json"))
    )
    missing = cli("schema", "diff", f"{spec}:V1", "--lake", str(tmp_path / "none"))
    assert (missing.returncode, missing.stdout, missing.stderr) == (
        2,
        "",
        f"error: {tmp_path / 'none'}: no lake here (it has no ingestion_batches table) (run an "
        "ingestion into it first, or pass another --lake)\n",
    )
    assert not (tmp_path / "none").exists()
