"""Schema evolution on a lake: a model that gains fields appends new nullable columns, every
row stays traceable to the schema version that validated it, and what the DuckDB store
refuses is refused in one line (its decisions, ``engine.store.evolution``). Widening:
``test_widening.py``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from engine.lake.location import Lake
from engine.schemas import load_schema
from tests.lake.conftest import lake_rows

Cli = Callable[..., subprocess.CompletedProcess[str]]

MODELS = """
from pydantic import BaseModel


class V1(BaseModel):
    __table_name__ = "people"
    __unique__ = ("pid",)
    pid: int
    name: str


class V2(V1):
    note: str | None = None


class V3(V2):
    score: int = 0


class Wide(BaseModel):
    __table_name__ = "people"
    __unique__ = ("pid",)
    pid: float
    name: str


class Required(V1):
    code: str


class Rekeyed(V1):
    __unique__ = ("name",)
"""


def evolve(tmp_path: Path, cli: Cli) -> tuple[Lake, str, list[int]]:
    """Three runs into one lake, each with the next version of the model."""
    spec = tmp_path / "models.py"
    spec.write_text(MODELS)
    files = {
        "V1": "pid,name\n1,a\n2,b\nx,c\n",
        "V2": "pid,name,note\n3,c,n3\n4,d,\n",
        "V3": "pid,name,note,score\n5,e,n5,7\n6,f,,\n7,g,n7,bad\n",
    }
    lake, runs = Lake(str(tmp_path / "lake")), []
    for name, text in files.items():
        data = tmp_path / f"{name}.csv"
        data.write_text(text)
        done = cli("run", str(data), "--lake", lake.uri, "--schema", f"{spec}:{name}", "--json")
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout)["run_id"])
    return lake, str(spec), runs


def test_an_evolved_model_appends_new_columns_and_every_row_keeps_its_version(
    tmp_path: Path, cli: Cli
) -> None:
    lake, spec, runs = evolve(tmp_path, cli)
    assert lake_rows(lake, "SELECT * EXCLUDE (run_id) FROM people ORDER BY pid") == [
        (1, 1, "a", None, None),
        (2, 2, "b", None, None),
        (1, 3, "c", "n3", None),
        (2, 4, "d", None, None),
        (1, 5, "e", "n5", 7),
        (2, 6, "f", None, 0),
    ]
    assert lake_rows(
        lake,
        "SELECT version, schema_name, target_table, changes, unique_key "
        "FROM schema_versions ORDER BY version",
    ) == [
        (1, "V1", "people", "created table people", '["pid"]'),
        (2, "V2", "people", "added note VARCHAR (old rows NULL)", '["pid"]'),
        (3, "V3", "people", "added score DECIMAL(38,0) (old rows NULL)", '["pid"]'),
    ]
    # Every input row (valid or not) traced through its run to the exact model.
    traced = lake_rows(
        lake,
        "SELECT r.run_id, r.row_number, v.version, v.json_schema FROM raw_data AS r "
        "JOIN ingestion_runs USING (run_id) JOIN schema_versions AS v USING (schema_fingerprint) "
        "ORDER BY r.run_id, r.row_number",
    )
    assert [(run, row, version) for run, row, version, _ in traced] == [
        (runs[0], 1, 1), (runs[0], 2, 1), (runs[0], 3, 1),
        (runs[1], 1, 2), (runs[1], 2, 2),
        (runs[2], 1, 3), (runs[2], 2, 3), (runs[2], 3, 3),
    ]  # fmt: skip
    for _, _, version, schema in traced:
        model = load_schema(f"{spec}:V{version}")
        assert json.loads(str(schema)) == model.model_json_schema()
    assert lake_rows(lake, "SELECT run_id, row_number FROM ingestion_errors ORDER BY 1") == [
        (runs[0], 3),
        (runs[2], 3),
    ]


def test_what_a_database_refuses_is_refused_in_one_line(tmp_path: Path, cli: Cli) -> None:
    lake, spec, _ = evolve(tmp_path, cli)
    data = tmp_path / "V1.csv"
    tail = (
        " (pass --new-table to store this model's rows in a new table people_v4, or give the "
        "model another __table_name__)\n"
    )
    head = f"error: {lake.uri}: table 'people' of the lake cannot take schema"
    expected = {
        "Required": " Required as it is: new required field code (VARCHAR, no default) would "
        "be NULL in the 6 stored rows",
        "Rekeyed": " Rekeyed as it is: the unique key changes from (pid) to (name) over "
        "stored rows",
    }
    for name, problem in expected.items():
        refused = cli("run", str(data), "--lake", lake.uri, "--schema", f"{spec}:{name}")
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            head + problem + tail,
        )
    assert lake_rows(lake, "SELECT count(*), count(DISTINCT run_id) FROM ingestion_runs") == [
        (3, 3)
    ]  # nothing started
    # The readers still read across the versions.
    for command in (["summary", "--json"], ["export", "processed", "-o", "-", "--format", "csv"]):
        done = cli(*command, "--lake", lake.uri)
        assert done.returncode == 0, done.stderr
    exported = cli("export", "processed", "-o", "-", "--format", "csv", "--lake", lake.uri)
    assert exported.stdout.splitlines()[0].endswith("pid,name,note,score")
    assert len(exported.stdout.splitlines()) == 7
    assert json.loads(cli("summary", "--json", "--lake", lake.uri).stdout)["rows_valid"] == 6
    # A wider type is taken: a new generation of the table, read as one with the others.
    wide = cli("run", str(data), "--lake", lake.uri, "--schema", f"{spec}:Wide", "--force")
    assert (wide.returncode, wide.stderr) == (0, "")
    assert (tmp_path / "lake" / "people__g2").is_dir()
    assert lake_rows(lake, "SELECT pid, name, note, score FROM people ORDER BY pid, name") == [
        (1.0, "a", None, None),  # V1.csv again: its rows of keys 1 and 2 are duplicates
        (2.0, "b", None, None),
        (3.0, "c", "n3", None),
        (4.0, "d", None, None),
        (5.0, "e", "n5", 7),
        (6.0, "f", None, 0),
    ]
    last = "(SELECT run_id FROM ingestion_runs ORDER BY started_at DESC LIMIT 1)"
    assert lake_rows(
        lake, f"SELECT row_number, type, input FROM error_details WHERE run_id = {last} ORDER BY 1"
    ) == [(1, "duplicate", "1.0"), (2, "duplicate", "2.0"), (3, "float_parsing", '"x"')]
