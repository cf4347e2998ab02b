"""Edges of a lake's evolution found by an outside test (branch attack18): the same runs into a
DuckDB file and into a lake, read back through `cli.py sql`, give the same tables; a reader
never fails with a traceback; vacuum says what it deleted."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import engine
import engine.lake.runs
import engine.lake.writer
from engine.lake.location import Lake
from engine.lake.writer import StagedBatch
from engine.store.store import Store
from tests.lake.conftest import lake_rows

Cli = Callable[..., subprocess.CompletedProcess[str]]

MODELS = """
from typing import ClassVar

from pydantic import BaseModel


class Plain(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: float


class Noted(Plain):  # a new optional field
    note: str | None = None


class Capital(BaseModel):  # the same table, named with a capital (DuckDB: the same name)
    __table_name__: ClassVar[str] = "Readings"
    rid: str
    value: float


class CapitalNoted(Capital):  # the same table again, with a new field
    note: str | None = None
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def sql(cli: Cli, target: list[str], query: str) -> tuple[int, str, str]:
    done = cli("sql", *target, "--format", "csv", query)
    return done.returncode, done.stdout, done.stderr


def test_a_new_field_whose_run_has_no_valid_row_is_a_column_as_on_a_database(
    tmp_path: Path, cli: Cli
) -> None:
    spec = write(tmp_path, "models.py", MODELS)
    good = write(tmp_path, "good.csv", "rid,value\na,1.5\nb,2\n")
    bad = write(tmp_path, "bad.csv", "rid,value,note\nc,x,n\n")  # no valid row under Noted
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", str(tmp_path / "lake")]):
        for data, model in ((good, "Plain"), (bad, "Noted")):
            done = cli("run", data, *target, "--schema", f"{spec}:{model}", "-q")
            assert (done.returncode, done.stderr) == (0, "")
        # schema_versions says the column was added; the table has it (old rows NULL).
        assert sql(cli, target, "SELECT version, changes FROM schema_versions ORDER BY 1") == (
            0,
            "version,changes\n1,created table readings\n2,added note VARCHAR (old rows NULL)\n",
            "",
        )
        assert sql(cli, target, "SELECT column_name FROM (DESCRIBE readings)") == (
            0,
            "column_name\nrun_id\nrow_number\nrid\nvalue\nnote\n",
            "",
        )
        assert sql(cli, target, "SELECT rid, value, note FROM readings ORDER BY rid") == (
            0,
            "rid,value,note\na,1.5,\nb,2.0,\n",
            "",
        )


def test_a_replay_under_a_model_with_a_new_field_adds_its_column_as_on_a_database(
    tmp_path: Path, cli: Cli
) -> None:
    spec = write(tmp_path, "models.py", MODELS)
    data = write(tmp_path, "data.csv", "rid,value\na,1.5\nb,x\n")
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", str(tmp_path / "lake")]):
        done = cli("run", data, *target, "--schema", f"{spec}:Plain", "-q")
        assert (done.returncode, done.stderr) == (0, "")
        replayed = cli("replay", *target, "--schema", f"{spec}:Noted", "--all-failed")
        assert (replayed.returncode, replayed.stderr) == (0, "")
        assert replayed.stdout.endswith(
            ": 0 of 1 invalid row now pass, moved into readings; 1 still invalid\n"
        )
        assert sql(cli, target, "SELECT column_name FROM (DESCRIBE readings)") == (
            0,
            "column_name\nrun_id\nrow_number\nrid\nvalue\nnote\n",
            "",
        )


def test_table_names_that_differ_in_case_read_as_on_a_database(tmp_path: Path, cli: Cli) -> None:
    spec = write(tmp_path, "models.py", MODELS)
    first = write(tmp_path, "first.csv", "rid,value\na,1.5\n")
    second = write(tmp_path, "second.csv", "rid,value\nb,2.5\n")
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", str(tmp_path / "lake")]):
        for data, model in ((first, "Plain"), (second, "Capital")):
            done = cli("run", data, *target, "--schema", f"{spec}:{model}", "-q")
            assert (done.returncode, done.stderr) == (0, "")
        # A DuckDB file holds both runs' rows in one table (its names ignore case); a lake
        # read through DuckDB must not fail with a traceback ("View ... already exists").
        assert sql(cli, target, "SELECT rid, value FROM readings ORDER BY rid") == (
            0,
            "rid,value\na,1.5\nb,2.5\n",
            "",
        )


def test_a_new_field_under_another_spelling_of_the_table_is_added_to_it(
    tmp_path: Path, cli: Cli
) -> None:
    spec = write(tmp_path, "models.py", MODELS)
    first = write(tmp_path, "first.csv", "rid,value\na,1.5\n")
    second = write(tmp_path, "second.csv", "rid,value,note\nb,2.5,hi\n")
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", str(tmp_path / "lake")]):
        for data, model in ((first, "Plain"), (second, "CapitalNoted")):
            done = cli("run", data, *target, "--schema", f"{spec}:{model}", "-q")
            assert (done.returncode, done.stderr) == (0, "")
        # One table, in the spelling it was created with; the new version is its second.
        assert sql(
            cli,
            target,
            "SELECT version, declared_table, target_table, changes FROM schema_versions "
            "ORDER BY version",
        ) == (
            0,
            "version,declared_table,target_table,changes\n"
            "1,readings,readings,created table readings\n"
            "2,Readings,readings,added note VARCHAR (old rows NULL)\n",
            "",
        )
        assert sql(cli, target, "SELECT target_table FROM ingestion_runs ORDER BY 1") == (
            0,
            "target_table\nreadings\nreadings\n",
            "",
        )
        assert sql(cli, target, "SELECT rid, value, note FROM readings ORDER BY rid") == (
            0,
            "rid,value,note\na,1.5,\nb,2.5,hi\n",
            "",
        )


def test_a_second_vacuum_deletes_nothing_and_says_so(tmp_path: Path, cli: Cli) -> None:
    spec = write(tmp_path, "models.py", MODELS)
    lake = str(tmp_path / "lake")
    for n in range(3):
        data = write(tmp_path, f"d{n}.csv", f"rid,value\nr{n},{n}.5\n")
        done = cli("run", data, "--lake", lake, "--schema", f"{spec}:Plain", "-q")
        assert (done.returncode, done.stderr) == (0, "")
    assert cli("lake", "compact", lake).returncode == 0
    first = cli("lake", "vacuum", "--older-than", "0s", lake)
    assert (first.returncode, first.stderr) == (0, "")
    # Compaction made one file of each table's three (ingestion_errors has none, every row
    # being valid; schema_versions one, the schema being the same), vacuum deleted the three.
    tables = ("ingestion_batches", "raw_data", "ingestion_errors", "schema_versions", "readings")
    deleted = zip(tables, (3, 3, 0, 0, 3), strict=True)
    assert first.stdout == "".join(f"{table}: deleted {n} files\n" for table, n in deleted)
    left = sorted(p.name for p in (tmp_path / "lake" / "readings").glob("*.parquet"))
    assert len(left) == 1
    again = cli("lake", "vacuum", "--older-than", "0s", lake)
    assert (again.returncode, again.stderr) == (0, "")
    # Nothing is left to delete: the files the first vacuum deleted are gone.
    assert again.stdout.splitlines() == [f"{table}: deleted 0 files" for table in tables]
    assert sorted(p.name for p in (tmp_path / "lake" / "readings").glob("*.parquet")) == left


NEW_TABLE_MODELS = """
from typing import ClassVar

from pydantic import BaseModel


class Wide(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: float


class Text(BaseModel):  # value as text: a change of kind, a new table
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: str


class Whole(BaseModel):  # value as an integer: a narrowing, a new table
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: int
"""


@pytest.mark.parametrize(
    ("other_model", "other_text", "expected"),
    [
        # Another writer's `--new-table` run commits readings_v2 with another model between
        # this run's decision and its append: this run, which asked for a new table, gets one
        # (readings_v3), as a widening decides again when its generation was taken.
        ("Text", "rid,value\nt,abc\n", [("t", "abc")]),
        # Both runs choose readings_v2 and append to it (the same types): the manifest
        # commit's claim on the new table lets only the first in; the second decides again
        # (readings_v3), and its rows appended to readings_v2 stay orphans no reader counts.
        ("Whole", "rid,value\no,8\n", [("o", Decimal(8))]),
    ],
)
def test_two_new_table_runs_at_once_each_get_a_table(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    other_model: str,
    other_text: str,
    expected: list[tuple[str, object]],
) -> None:
    spec, lake = tmp_path / "models.py", Lake(str(tmp_path / "lake"))
    spec.write_text(NEW_TABLE_MODELS)
    first = tmp_path / "first.csv"
    first.write_text("rid,value\na,1.5\n")
    engine.ingest(first, db=lake, schema=f"{spec}:Wide")
    other = tmp_path / "other.csv"
    other.write_text(other_text)
    real = engine.lake.writer.append_data
    raced: list[str] = []

    def racing(lake: Lake, staging: Store, staged: StagedBatch) -> None:
        if not raced:
            raced.append(str(staged.lake_table))
            done = engine.ingest(other, db=lake, schema=f"{spec}:{other_model}", new_table=True)
            assert (done.status, done.tally.valid) == ("completed", 1)
        real(lake, staging, staged)

    monkeypatch.setattr(engine.lake.runs, "append_data", racing)
    whole = tmp_path / "whole.csv"
    whole.write_text("rid,value\nw,7\n")
    summary = engine.ingest(whole, db=lake, schema=f"{spec}:Whole", new_table=True)
    assert raced == ["readings_v2"]
    assert (summary.status, summary.tally.valid) == ("completed", 1)
    assert lake_rows(
        lake, "SELECT schema_name, target_table, status FROM ingestion_runs ORDER BY target_table"
    ) == [
        ("Wide", "readings", "completed"),
        (other_model, "readings_v2", "completed"),
        ("Whole", "readings_v3", "completed"),
    ]
    assert lake_rows(lake, "SELECT rid, value FROM readings_v2") == expected
    assert lake_rows(lake, "SELECT rid, value FROM readings_v3") == [("w", Decimal(7))]
    assert lake_rows(
        lake, "SELECT target_table, changes FROM schema_versions ORDER BY version"
    ) == [
        ("readings", "created table readings"),
        ("readings_v2", "created table readings_v2 (a new table for readings)"),
        ("readings_v3", "created table readings_v3 (a new table for readings)"),
    ]


DECIMALS = """
import json
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field


class Price(BaseModel):
    __table_name__: ClassVar[str] = "prices"
    rid: str
    price: Decimal = Field(max_digits=12, decimal_places=2)


class Wider(Price):  # a longer decimal: a new generation on a lake
    price: Decimal = Field(max_digits=20, decimal_places=2)
"""


def test_sql_as_json_keeps_every_digit_of_a_widened_decimal(tmp_path: Path, cli: Cli) -> None:
    spec = write(tmp_path, "models.py", DECIMALS)
    small = write(tmp_path, "small.csv", "rid,price\na,1.25\n")
    large = write(tmp_path, "large.csv", "rid,price\nb,12345678901234567.89\n")
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", str(tmp_path / "lake")]):
        for data, model in ((small, "Price"), (large, "Wider")):
            done = cli("run", data, *target, "--schema", f"{spec}:{model}", "-q")
            assert (done.returncode, done.stderr) == (0, "")
        query = "SELECT rid, price FROM prices ORDER BY rid"
        assert sql(cli, target, query) == (0, "rid,price\na,1.25\nb,12345678901234567.89\n", "")
        # The JSON a user reads must hold the stored value, as `export --format json` does.
        done = cli("sql", *target, "--format", "json", query)
        assert (done.returncode, done.stderr) == (0, "")
        assert json.loads(done.stdout, parse_float=Decimal) == [
            {"rid": "a", "price": Decimal("1.25")},
            {"rid": "b", "price": Decimal("12345678901234567.89")},
        ]


CASES = """
from typing import ClassVar

from pydantic import BaseModel


class Base(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: int


class Twice(BaseModel):  # two fields whose names differ in case only
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: float
    Value: float | None = None


class Shouted(BaseModel):  # a new field named as a stored column, in capitals
    __table_name__: ClassVar[str] = "readings"
    rid: str
    VALUE: float | None = None
"""


@pytest.mark.parametrize("model", ["Twice", "Shouted"])
def test_a_field_named_as_another_in_other_case_is_one_line(
    tmp_path: Path, cli: Cli, model: str
) -> None:
    """Delta (and DuckDB) names ignore case: such a model cannot be stored on a lake, and
    the run says so in one line (exit 2), never with a traceback; stored rows stay."""
    spec = write(tmp_path, "models.py", CASES)
    lake = str(tmp_path / "lake")
    first = write(tmp_path, "first.csv", "rid,value\na,1\n")
    done = cli("run", first, "--lake", lake, "--schema", f"{spec}:Base", "-q")
    assert (done.returncode, done.stderr) == (0, "")
    data = write(tmp_path, "data.csv", "rid,value,Value,VALUE\nb,1.5,2.5,3.5\n")
    done = cli("run", data, "--lake", lake, "--schema", f"{spec}:{model}", "-q")
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {lake}: ")
    assert done.stderr.count("\n") == 1
    assert sql(cli, ["--lake", lake], "SELECT rid, value FROM readings") == (
        0,
        "rid,value\na,1\n",
        "",
    )


def test_a_table_name_never_writes_outside_the_lake(tmp_path: Path, cli: Cli) -> None:
    """A table's name becomes a directory of the lake: `../escaped` must not make one beside
    the lake (two lakes under one parent would then share that Delta table)."""
    spec = write(
        tmp_path,
        "models.py",
        "from typing import ClassVar\n\nfrom pydantic import BaseModel\n\n\n"
        "class Escaping(BaseModel):\n"
        '    __table_name__: ClassVar[str] = "../escaped"\n'
        "    rid: str\n",
    )
    (tmp_path / "lakes").mkdir()
    lake = str(tmp_path / "lakes" / "lake")
    data = write(tmp_path, "data.csv", "rid\na\n")
    plain = write(tmp_path, "plain.py", OWN)
    done = cli("run", data, "--lake", lake, "--schema", f"{plain}:Plain", "-q")
    assert (done.returncode, done.stderr) == (0, "")
    done = cli("run", data, "--lake", lake, "--schema", f"{spec}:Escaping", "-q")
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {lake}: schema Escaping names its table '../escaped', which a lake cannot use "
        "as a table's directory (a lake's table names are ASCII letters, digits and _, "
        "starting with a letter) (give the model another __table_name__)\n",
    )
    assert sorted(p.name for p in (tmp_path / "lakes").iterdir()) == ["lake"]


OWN = """
from typing import ClassVar

from pydantic import BaseModel


class Manifest(BaseModel):  # optional: the manifest's stored rows do not refuse it
    __table_name__: ClassVar[str] = "ingestion_batches"
    rid: str | None = None


class Replaced(BaseModel):
    __table_name__: ClassVar[str] = "replaced_rows"
    rid: str


class Plain(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
"""


@pytest.mark.parametrize("model", ["Manifest", "Replaced"])
def test_a_lakes_own_table_names_are_refused_naming_the_lake(
    tmp_path: Path, cli: Cli, model: str
) -> None:
    """`ingestion_batches` is a lake's manifest: a model storing its rows there would make
    every read of the lake fail. It is refused as the engine's other names are, and the
    line names the lake (not the run's staging file)."""
    spec = write(tmp_path, "models.py", OWN)
    lake = str(tmp_path / "lake")
    data = write(tmp_path, "data.csv", "rid\na\n")
    done = cli("run", data, "--lake", lake, "--schema", f"{spec}:Plain", "-q")
    assert (done.returncode, done.stderr) == (0, "")
    done = cli("run", data, "--lake", lake, "--schema", f"{spec}:{model}", "-q")
    table = {"Manifest": "ingestion_batches", "Replaced": "replaced_rows"}[model]
    assert (done.returncode, done.stderr) == (
        2,
        f"error: {lake}: schema {model} names its table '{table}', which the engine uses for "
        "its own data (give the model another __table_name__)\n",
    )
    assert sql(cli, ["--lake", lake], "SELECT schema_name, status FROM ingestion_runs") == (
        0,
        "schema_name,status\nPlain,completed\n",
        "",
    )


SHOUTED_GENERATION = """
from typing import ClassVar

from pydantic import BaseModel


class Whole(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: int


class Wide(Whole):  # value int -> float: a second generation, readings__g2, on a lake
    value: float


class Other(BaseModel):  # a table of its own, named like a generation but in capitals
    __table_name__: ClassVar[str] = "readings__G2"
    rid: str
    value: float
"""


def test_a_table_named_like_a_generation_in_capitals_is_not_read_as_one(
    tmp_path: Path, cli: Cli
) -> None:
    """A DuckDB file holds `readings__G2` as a table of its own. A lake's names ignore case
    as DuckDB's do (`Readings` is `readings`), so there `readings__G2` is the directory of
    readings' second generation: a lake refuses it in any case, as it refuses `readings__g2`,
    and never reads another table's rows as readings'."""
    spec = write(tmp_path, "models.py", SHOUTED_GENERATION)
    whole = write(tmp_path, "whole.csv", "rid,value\na,1\n")
    other = write(tmp_path, "other.csv", "rid,value\no,9.5\n")
    wide = write(tmp_path, "wide.csv", "rid,value\nb,2.5\n")
    lake = str(tmp_path / "lake")
    for target in (["--db", str(tmp_path / "x.duckdb")], ["--lake", lake]):
        for data, model in ((whole, "Whole"), (other, "Other"), (wide, "Wide")):
            done = cli("run", data, *target, "--schema", f"{spec}:{model}", "-q")
            if model == "Other" and target[0] == "--lake":
                assert (done.returncode, done.stderr) == (
                    2,
                    f"error: {lake}: schema Other names its table 'readings__G2', which a lake "
                    "keeps for a generation of another table (give the model another "
                    "__table_name__)\n",
                )
            else:
                assert (done.returncode, done.stderr) == (0, "")
        # The widened run's row is in readings (on a lake: in readings__g2); Other's is not.
        assert sql(cli, target, "SELECT rid, value FROM readings ORDER BY rid") == (
            0,
            "rid,value\na,1.0\nb,2.5\n",
            "",
        )
    assert sql(
        cli, ["--db", str(tmp_path / "x.duckdb")], 'SELECT rid, value FROM "readings__G2"'
    ) == (
        0,
        "rid,value\no,9.5\n",
        "",
    )
