"""Widening a type on a lake: a new generation of the typed table, no rewrite. The same
evolution as on a DuckDB file gives the same tables; a writer on the old model and one on the
widened model append at once and every row is read back; a generation another writer
started with other types is never appended to with a cast."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import engine
import engine.lake.runs
import engine.lake.writer
from engine.lake.generations import GenerationMoved
from engine.lake.location import Lake
from engine.lake.writer import StagedBatch
from engine.store.store import Store
from tests.lake.conftest import CLI, ROOT, db_rows, lake_rows
from tests.store.lifecycle import MODELS

Cli = Callable[..., subprocess.CompletedProcess[str]]

RUNS = [  # (model, mode, CSV): three evolutions over five runs, then a merge
    ("V1", "append", "rid,value,legacy\na,1,x\nb,2,y\nc,1.5,z\n"),  # c: not an int under V1
    ("V2", "append", "rid,value,note\nd,1.5,n\ne,2,\n"),  # value int -> float, + note
    ("V3", "append", "rid,value,price\nf,3,1.25\ng,4,123456.78\nh,5,1234567.1\n"),  # - legacy
    ("V4", "append", "rid,value,price\ni,3,1234567890.12\n"),  # price 8 -> 12 digits
    ("V4", "merge", "rid,value,note,price\nj,6,last,0.5\na,7,merged,\nj,8,again,\n"),
]
# A run's index among the runs (lake run ids and a file's both grow with each run).
RUN = "(SELECT count(*) FROM ingestion_runs AS o WHERE o.run_id <= {})"
COMPARED = {
    "readings": f"SELECT {RUN.format('t.run_id')}, * EXCLUDE (run_id) FROM readings AS t "
    "ORDER BY ALL",
    "columns": "SELECT column_name, column_type FROM (DESCRIBE readings)",
    "schema_versions": "SELECT version, schema_name, declared_table, target_table, columns, "
    "unique_key, changes, json_schema FROM schema_versions ORDER BY version",
    "ingestion_runs": "SELECT schema_name, target_table, load_mode, status, rows_total, "
    "rows_valid, rows_invalid FROM ingestion_runs ORDER BY run_id",
    "replaced_rows": f"SELECT target_table, {RUN.format('r.run_id')}, row_number, "
    f"{RUN.format('r.by_run_id')}, by_row_number, how FROM replaced_rows AS r ORDER BY ALL",
    "ingestion_errors": f"SELECT {RUN.format('e.run_id')}, row_number, raw FROM "
    "ingestion_errors AS e ORDER BY ALL",
    "replayed_rows": f"SELECT {RUN.format('p.run_id')}, row_number FROM replayed_rows AS p",
    "traced": f"SELECT {RUN.format('r.run_id')}, r.row_number, v.version FROM raw_data AS r "
    "JOIN ingestion_runs USING (run_id) JOIN schema_versions AS v USING (schema_fingerprint) "
    "ORDER BY ALL",
}


def evolve(tmp_path: Path, cli: Cli, target: list[str]) -> list[int]:
    """The five runs, then a replay of the first run's invalid row under V4."""
    spec, ids = tmp_path / "models.py", []
    spec.write_text(MODELS)
    for number, (model, mode, text) in enumerate(RUNS, 1):
        data = tmp_path / f"r{number}.csv"
        data.write_text(text)
        done = cli("run", str(data), *target, "--schema", f"{spec}:{model}", "--mode", mode,
                   "--json")  # fmt: skip
        assert (done.returncode, done.stderr) == (0, "")
        ids.append(json.loads(done.stdout)["run_id"])
    replayed = cli("replay", "--run", str(ids[0]), *target, "--schema", f"{spec}:V4", "--json")
    assert (replayed.returncode, replayed.stderr) == (0, "")
    assert json.loads(replayed.stdout)["rows_moved"] == 1
    return ids


def test_an_evolution_with_widenings_stores_what_a_database_stores(
    tmp_path: Path, cli: Cli
) -> None:
    lake, db = Lake(str(tmp_path / "lake")), tmp_path / "x.duckdb"
    evolve(tmp_path, cli, ["--db", str(db)])
    evolve(tmp_path, cli, ["--lake", lake.uri])
    for name, query in COMPARED.items():
        assert lake_rows(lake, query) == db_rows(db, query), name
    assert lake_rows(lake, COMPARED["readings"]) == [
        (1, 2, "b", 2.0, "y", None, None),
        (1, 3, "c", 1.5, None, None, None),  # replayed under V4: no legacy
        (2, 1, "d", 1.5, None, "n", None),
        (2, 2, "e", 2.0, None, None, None),
        (3, 1, "f", 3.0, None, None, Decimal("1.25")),
        (3, 2, "g", 4.0, None, None, Decimal("123456.78")),
        (4, 1, "i", 3.0, None, None, Decimal("1234567890.12")),
        (5, 2, "a", 7.0, None, "merged", None),
        (5, 3, "j", 8.0, None, "again", None),
    ]
    assert lake_rows(lake, "SELECT version, changes FROM schema_versions ORDER BY 1") == [
        (1, "created table readings"),
        (2, "widened value from DECIMAL(38,0) to DOUBLE; added note VARCHAR (old rows NULL)"),
        (
            3,
            "added price DECIMAL(8,2) (old rows NULL); "
            "kept legacy VARCHAR (no longer in the model: new rows NULL)",
        ),
        (4, "widened price from DECIMAL(8,2) to DECIMAL(12,2)"),
    ]
    # Nothing was rewritten: each widening started a Delta table of its own.
    root = tmp_path / "lake"
    kinds = {
        name: {f.name: str(f.type) for f in pa.schema(DeltaTable(root / name).schema().to_arrow())}
        for name in ("readings", "readings__g2", "readings__g3")
    }
    assert (kinds["readings"]["value"], kinds["readings__g2"]["value"]) == ("decimal128(38, 0)",
                                                                            "double")  # fmt: skip
    assert (kinds["readings__g2"]["price"], kinds["readings__g3"]["price"]) == (
        "decimal128(8, 2)",
        "decimal128(12, 2)",
    )
    assert "legacy" not in kinds["readings__g3"] and not (root / "readings__g4").exists()
    # Compaction and vacuum take every generation.
    done = cli("lake", "compact", lake.uri)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "ingestion_batches: 6 files rewritten into 1 file",
        "raw_data: 5 files rewritten into 1 file",
        "ingestion_errors: 2 files rewritten into 1 file",
        "schema_versions: 4 files rewritten into 1 file",
        "replaced_rows: 0 files rewritten into 0 files",
        "replayed_rows: 0 files rewritten into 0 files",
        "replays: 0 files rewritten into 0 files",
        "readings: 0 files rewritten into 0 files",  # one file already
        "readings__g2: 2 files rewritten into 1 file",
        "readings__g3: 3 files rewritten into 1 file",
    ]
    assert lake_rows(lake, "SELECT count(*) FROM readings") == [(9,)]


def test_a_writer_on_the_old_model_and_one_on_the_widened_model_append_at_once(
    tmp_path: Path, cli: Cli, cli_env: dict[str, str]
) -> None:
    spec, lake = tmp_path / "models.py", Lake(str(tmp_path / "lake"))
    spec.write_text(MODELS)
    first = tmp_path / "first.csv"
    first.write_text("rid,value\nfirst,1\n")
    assert cli("run", str(first), "--lake", lake.uri, "--schema", f"{spec}:V1").returncode == 0
    expected = {"first": 1.0}
    files: dict[str, list[str]] = {"V1": [], "V2": []}
    for model in files:
        for n in range(4):
            rows = []
            for k in range(60):
                rid = f"{model}-{n}-{k}"
                value = f"{k}" if model == "V1" else f"{k}.5"
                if k % 13 == 5:
                    value = "bad"
                else:
                    expected[rid] = float(value)
                rows.append(f"{rid},{value}\n")
            path = tmp_path / f"{model}-{n}.csv"
            path.write_text("rid,value\n" + "".join(rows))
            files[model].append(str(path))
    writers = {
        model: subprocess.Popen(
            [*CLI, "run", *paths, "--lake", lake.uri, "--schema", f"{spec}:{model}", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env,
            cwd=ROOT,
        )
        for model, paths in files.items()
    }
    ids: dict[str, set[int]] = {}
    for model, writer in writers.items():
        out, err = writer.communicate(timeout=300)
        assert (writer.returncode, err) == (0, "")
        runs = [json.loads(line) for line in out.splitlines()]
        assert [(r["status"], r["rows_valid"], r["rows_invalid"]) for r in runs] == [
            ("completed", 55, 5)
        ] * 4
        ids[model] = {r["run_id"] for r in runs}
    assert lake_rows(
        lake, "SELECT count(*), count(DISTINCT (run_id, row_number)) FROM readings"
    ) == [(1 + 8 * 55, 1 + 8 * 55)]
    found = lake_rows(lake, "SELECT rid, value FROM readings")
    assert {str(rid): value for rid, value in found} == expected and len(found) == len(expected)
    assert lake_rows(lake, "SELECT typeof(value) FROM readings LIMIT 1") == [("DOUBLE",)]
    # Each writer's rows are in the generation of its model's types, as its model stored them.
    # (The files' rows of batches the manifest lists: a keyed writer that found the table's
    # claim taken published again, its first attempt's rows orphans no reader counts.)
    committed = pl.read_delta(str(tmp_path / "lake" / "ingestion_batches")).select("run_id")
    old = pl.read_delta(str(tmp_path / "lake" / "readings")).join(
        committed, on="run_id", how="semi"
    )
    new = pl.read_delta(str(tmp_path / "lake" / "readings__g2")).join(
        committed, on="run_id", how="semi"
    )
    assert set(old["run_id"]) - {min(old["run_id"])} == ids["V1"]
    assert set(new["run_id"]) == ids["V2"]
    assert (str(old.schema["value"]), str(new.schema["value"])) == (
        "Decimal(precision=38, scale=0)",
        "Float64",
    )
    assert lake_rows(lake, "SELECT schema_name, changes FROM schema_versions ORDER BY version") == [
        ("V1", "created table readings"),
        ("V2", "widened value from DECIMAL(38,0) to DOUBLE; added note VARCHAR (old rows NULL)"),
    ]


def test_a_generation_started_meanwhile_with_other_types_is_never_cast_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer starts the generation this run chose, with another model, between the
    run's decision and its append: the run decides again and starts the next one."""
    spec, lake = tmp_path / "models.py", Lake(str(tmp_path / "lake"))
    spec.write_text(MODELS)
    first = tmp_path / "first.csv"
    first.write_text("rid,value\na,1\n")
    engine.ingest(first, db=lake, schema=f"{spec}:V1")
    real = engine.lake.writer.append_data
    chosen: list[str] = []

    def racing(lake: Lake, staging: Store, staged: StagedBatch) -> None:
        if not chosen:
            chosen.append(str(staged.lake_table))
            other = pa.table(
                {
                    "run_id": pa.array([7], pa.int64()),
                    "batch": pa.array([0], pa.int64()),
                    "row_number": pa.array([1], pa.int64()),
                    "rid": ["other"],
                    "value": pa.array([Decimal(5)], pa.decimal128(38, 0)),
                    "code": ["x"],
                }
            )
            write_deltalake(lake.table_uri(str(staged.lake_table)), other)
        real(lake, staging, staged)

    monkeypatch.setattr(engine.lake.runs, "append_data", racing)
    wide = tmp_path / "wide.csv"
    wide.write_text("rid,value\nb,1.5\nc,2.25\n")
    summary = engine.ingest(wide, db=lake, schema=f"{spec}:V2")
    assert (summary.status, summary.tally.valid) == ("completed", 2)
    assert chosen == ["readings__g2"]
    assert lake_rows(lake, "SELECT rid, value FROM readings ORDER BY rid") == [
        ("a", 1.0),
        ("b", 1.5),
        ("c", 2.25),
    ]
    g2 = pl.read_delta(str(tmp_path / "lake" / "readings__g2"))
    g3 = pl.read_delta(str(tmp_path / "lake" / "readings__g3"))
    assert g2["rid"].to_list() == ["other"]  # never appended to: no run of it committed
    assert (g3["rid"].to_list(), g3["value"].to_list()) == (["b", "c"], [1.5, 2.25])


def test_an_append_never_casts_into_a_generation_of_other_types(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    head = {"run_id": [1], "batch": [0], "row_number": [1]}
    write_deltalake(lake.table_uri("t"), pa.table({**head, "value": pa.array([1], pa.int32())}))
    from engine.lake.writer import _append

    wider = pa.table({**head, "value": pa.array([1.5], pa.float64())})
    with pytest.raises(GenerationMoved):
        _append(lake, "t", wider.to_reader(), 1, last=False, exact=True)
    same = pa.table({**head, "value": pa.array([2], pa.int32()), "new": ["n"]})
    assert _append(lake, "t", same.to_reader(), 1, last=False, exact=True)
    assert pl.read_delta(lake.table_uri("t")).sort("value")["value"].to_list() == [1, 2]
