"""Schema evolution: a model evolved three times over five runs, refusals, --new-table,
``schema diff``; and the widening rules checked against DuckDB's own casts."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.schemas import load_schema
from engine.store.ddl import RUNS_DDL, STORED_DDL, VIEWS_DDL
from engine.store.evolution import Change, case_clashes, plan_evolution, widens
from engine.store.store import Store
from tests.conftest import DATA, query
from tests.store.lifecycle import cli, models

RUNS = [  # (model, CSV)
    ("V1", "rid,value,legacy\na,1,x\nb,2,y\nc,zz,z\n"),
    ("V2", "rid,value,note\nd,1.5,n\ne,2,\n"),
    ("V3", "rid,value,price\nf,3,1.25\ng,4,123456.78\nh,5,1234567.1\n"),
    ("V4", "rid,value,price\ni,3,1234567890.12\n"),
    ("V4", "rid,value,note,price\nj,6,last,0.5\na,7,dup,\n"),
]


def evolve(tmp_path: Path) -> tuple[Path, Path]:
    db, spec = tmp_path / "e.duckdb", models(tmp_path)
    for number, (model, text) in enumerate(RUNS, 1):
        data = tmp_path / f"r{number}.csv"
        data.write_text(text)
        done = cli("run", data, "--db", db, "--schema", f"{spec}:{model}", "--quiet")
        assert (done.returncode, done.stderr) == (0, "")
    return db, spec


def test_a_model_evolved_three_times_over_five_runs_keeps_every_row_traceable(
    tmp_path: Path,
) -> None:
    db, _ = evolve(tmp_path)
    assert query(db, "SELECT version, schema_name, target_table, changes FROM schema_versions") == [
        (1, "V1", "readings", "created table readings"),
        (
            2,
            "V2",
            "readings",
            "widened value from DECIMAL(38,0) to DOUBLE; added note VARCHAR (old rows NULL)",
        ),
        (
            3,
            "V3",
            "readings",
            "added price DECIMAL(8,2) (old rows NULL); "
            "kept legacy VARCHAR (no longer in the model: new rows NULL)",
        ),
        (
            4,
            "V4",
            "readings",
            "widened price from DECIMAL(8,2) to DECIMAL(12,2)",
        ),
    ]
    assert query(db, "SELECT * FROM readings ORDER BY run_id, row_number") == [
        (1, 1, "a", 1.0, "x", None, None),
        (1, 2, "b", 2.0, "y", None, None),
        (2, 1, "d", 1.5, None, "n", None),
        (2, 2, "e", 2.0, None, None, None),
        (3, 1, "f", 3.0, None, None, Decimal("1.25")),
        (3, 2, "g", 4.0, None, None, Decimal("123456.78")),
        (4, 1, "i", 3.0, None, None, Decimal("1234567890.12")),
        (5, 1, "j", 6.0, None, "last", Decimal("0.50")),
    ]
    # Invalid: c (value zz under V1), h (price over 8 digits under V3), a again (duplicate).
    assert query(db, "SELECT run_id, row_number FROM invalid_rows ORDER BY ALL") == [
        (1, 3),
        (3, 3),
        (5, 2),
    ]
    # Every input row, valid or not, names the schema version that judged it, and that
    # version's JSON schema is the model's own.
    traced = query(
        db,
        "SELECT v.run_id, v.row_number, s.schema_name, s.version, s.json_schema "
        "FROM row_versions v JOIN schema_versions s USING (schema_fingerprint) ORDER BY ALL",
    )
    assert [(r, n, name, version) for r, n, name, version, _ in traced] == [
        (1, 1, "V1", 1),
        (1, 2, "V1", 1),
        (1, 3, "V1", 1),
        (2, 1, "V2", 2),
        (2, 2, "V2", 2),
        (3, 1, "V3", 3),
        (3, 2, "V3", 3),
        (3, 3, "V3", 3),
        (4, 1, "V4", 4),
        (5, 1, "V4", 4),
        (5, 2, "V4", 4),
    ]
    for _, _, name, _, schema in traced:
        model = load_schema(f"{tmp_path / 'models.py'}:{name}")
        assert json.loads(str(schema)) == model.model_json_schema()
    assert query(db, "SELECT count(*) FROM source_rows") == [(len(traced),)]


def test_incompatible_models_are_refused_in_one_line_and_new_table_takes_them(
    tmp_path: Path,
) -> None:
    db, spec = evolve(tmp_path)
    data = tmp_path / "r1.csv"
    refused = cli("run", data, "--db", db, "--schema", f"{spec}:Narrow", "--force")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: {db}: table 'readings' cannot take schema Narrow as it is: value is DOUBLE in "
        "the table, the model narrows it to DECIMAL(38,0); new required field code (VARCHAR, "
        "no default) would be NULL in the 8 stored rows (pass --new-table to store this "
        "model's rows in a new table readings_v5, or give the model another __table_name__)\n"
    )
    rekeyed = cli("run", data, "--db", db, "--schema", f"{spec}:Rekeyed", "--force")
    assert rekeyed.returncode == 2
    assert rekeyed.stderr == (
        f"error: {db}: table 'readings' cannot take schema Rekeyed as it is: the unique key "
        "changes from (rid) to (note) over stored rows (pass --new-table to store this model's "
        "rows in a new table readings_v5, or give the model another __table_name__)\n"
    )
    assert query(db, "SELECT count(*) FROM ingestion_runs") == [(5,)]  # nothing started

    moved = cli("run", data, "--db", db, "--schema", f"{spec}:Narrow", "--force", "--new-table")
    assert (moved.returncode, moved.stderr) == (0, "")
    assert query(db, "SELECT run_id, target_table FROM ingestion_runs WHERE run_id = 6") == [
        (6, "readings_v5")
    ]
    assert query(
        db, "SELECT version, target_table, changes FROM schema_versions WHERE version = 5"
    ) == [(5, "readings_v5", "created table readings_v5 (a new table for readings)")]
    # The model keeps writing there, without --new-table; the older versions stay where they were.
    again = tmp_path / "n.csv"
    again.write_text("rid,value,code\nz,1,c1\n")
    assert cli("run", again, "--db", db, "--schema", f"{spec}:Narrow").returncode == 0
    assert query(db, "SELECT rid, value, code FROM readings_v5 WHERE run_id = 7") == [
        ("z", Decimal(1), "c1")
    ]
    v4 = tmp_path / "v4.csv"
    v4.write_text("rid,value\ny,1\n")
    assert cli("run", v4, "--db", db, "--schema", f"{spec}:V4").returncode == 0
    assert query(db, "SELECT target_table FROM ingestion_runs WHERE run_id = 8") == [("readings",)]


CASES = """
from typing import ClassVar

from pydantic import BaseModel


class Base(BaseModel):
    __table_name__: ClassVar[str] = "readings"
    rid: str
    value: int


class Twice(Base):  # two fields whose names differ in case only
    Value: int | None = None


class Shouted(BaseModel):  # a new field named as a stored column, in capitals
    __table_name__: ClassVar[str] = "readings"
    rid: str
    VALUE: int | None = None


class Engine(BaseModel):  # a field named as the engine's run_id, in other case
    __table_name__: ClassVar[str] = "others"
    Run_Id: int
"""


def test_fields_whose_names_differ_only_in_case_are_refused_in_one_line(tmp_path: Path) -> None:
    db, spec = tmp_path / "c.duckdb", tmp_path / "cases.py"
    spec.write_text(CASES)
    data = tmp_path / "data.csv"
    data.write_text("rid,value,Value,VALUE,Run_Id\na,1,2,3,4\n")
    done = cli("run", data, "--db", db, "--schema", f"{spec}:Base", "--quiet")
    assert (done.returncode, done.stderr) == (0, "")
    clashes = {
        "Twice": ("readings", "fields value and Value"),
        "Shouted": ("readings", "field VALUE and the table's column value"),
        "Engine": ("others", "field Run_Id and the table's column run_id"),
    }
    for model, (table, clash) in clashes.items():
        refused = cli("run", data, "--db", db, "--schema", f"{spec}:{model}", "--force")
        assert (refused.returncode, refused.stdout, refused.stderr) == (
            2,
            "",
            f"error: {db}: table {table!r} cannot take schema {model}: {clash} differ only in "
            "case, and a table's names ignore case (rename the field so that no two names "
            "differ only in case)\n",
        )
    # Refused before anything was written, as other schema refusals are: no run recorded.
    assert query(db, "SELECT schema_name, status FROM ingestion_runs") == [("Base", "completed")]
    assert query(db, "SELECT rid, value FROM readings") == [("a", Decimal(1))]


NAMES = st.sampled_from(["v", "V", "w", "W", "vw", "vW", "Run_Id", "RUN_ID"])


@settings(max_examples=200, deadline=None)
@given(stored=st.lists(NAMES, unique=True), wanted=st.lists(NAMES, unique=True, min_size=1))
def test_case_clashes_are_what_duckdb_refuses(stored: list[str], wanted: list[str]) -> None:
    """A model clashes with a table exactly when DuckDB could not hold the model's columns
    in one table, or add those the table lacks to it."""
    # A stored table's columns (the engine's run_id first) differ in more than case.
    stored = [
        n
        for n in stored
        if n.lower() != "run_id" and n.lower() not in {s.lower() for s in stored if s != n}
    ]

    def holds(statements: list[str]) -> bool:
        with duckdb.connect() as con:
            try:
                for statement in statements:
                    con.execute(statement)
            except duckdb.CatalogException:
                return False
        return True

    table = ", ".join(f'"{n}" INTEGER' for n in ["run_id", *stored])
    added = [f'ALTER TABLE t ADD COLUMN "{n}" INTEGER' for n in wanted if n not in stored]
    fields = ", ".join(f'"{n}" INTEGER' for n in wanted)
    accepted = holds([f"CREATE TABLE t ({table})", *added]) and holds(
        [f"CREATE TABLE m ({fields})"]
    )
    assert (case_clashes(["run_id", *stored], wanted) == ()) == accepted


def test_schema_diff_says_what_the_next_run_would_do(tmp_path: Path) -> None:
    db, spec = evolve(tmp_path)
    fits = cli("schema", "diff", f"{spec}:V4", "--db", db)
    assert (fits.returncode, fits.stderr) == (0, "")
    assert fits.stdout.splitlines() == [
        f"schema V4 ({query(db, 'SELECT schema_fingerprint FROM schema_versions WHERE version = 4')[0][0]}, "
        "version 4 of readings) -> table readings (8 rows)",
        "  = rid: VARCHAR",
        "  = value: DOUBLE",
        "  = note: VARCHAR",
        "  = price: DECIMAL(12,2)",
        "  - legacy: kept legacy VARCHAR (no longer in the model: new rows NULL)",
        "the next run fits as it is",
    ]
    old = cli("schema", "diff", f"{spec}:V1", "--db", db, "--format", "json")
    found = json.loads(old.stdout)
    assert (old.returncode, found["compatible"], found["version"]) == (0, False, 1)
    assert found["columns"][1] == {
        "change": "refused",
        "column": "value",
        "detail": "DOUBLE in the table, DECIMAL(38,0) in the model",
    }
    assert found["remedy"] == (
        "pass --new-table to store this model's rows in a new table readings_v5, "
        "or give the model another __table_name__"
    )
    fresh = cli("schema", "diff", f"{spec}:Keyless", "--db", db)
    assert fresh.stdout.splitlines()[-1] == "the next run creates the table"
    missing = cli("schema", "diff", f"{spec}:V1", "--db", tmp_path / "none.duckdb")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"error: {tmp_path / 'none.duckdb'}: no such database file (run an ingestion first or "
        "pass --db)\n",
    )


def test_the_plan_of_an_unchanged_new_and_dropped_column() -> None:
    plan = plan_evolution(
        {"a": "VARCHAR", "b": "BIGINT", "gone": "DATE"},
        {"a": "VARCHAR", "b": "DOUBLE", "new": "VARCHAR", "must": "INTEGER"},
        required=["must"],
        stored_rows=0,
    )
    assert plan.changes == (
        Change("widen", "b", "BIGINT", "DOUBLE"),
        Change("add", "new", None, "VARCHAR"),
        Change("add", "must", None, "INTEGER"),
        Change("keep", "gone", "DATE", None),
    )
    assert plan.refusals == ()
    assert plan_evolution({"a": "VARCHAR"}, {"a": "BOOLEAN"}, stored_rows=3).refusals == (
        "a is VARCHAR in the table, the model changes it to BOOLEAN",
    )


DECIMALS = st.tuples(st.integers(1, 38), st.integers(0, 38)).filter(lambda ps: ps[1] <= ps[0])


def _decimal(ps: tuple[int, int]) -> str:
    return f"DECIMAL({ps[0]},{ps[1]})"


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.sampled_from(["INTEGER", "BIGINT"]), DECIMALS.map(_decimal)),
    st.one_of(st.sampled_from(["INTEGER", "BIGINT", "DOUBLE", "VARCHAR"]), DECIMALS.map(_decimal)),
)
def test_a_widening_keeps_the_extremes_of_the_old_type_as_duckdb_casts_them(
    old: str, new: str
) -> None:
    """Where ``widens`` says yes, DuckDB casts the old type's largest and smallest steps to
    the new type and back unchanged (DOUBLE: up to 2**53, what int-to-float promises); where
    it says no between exact types, one of them does not survive."""
    con = duckdb.connect()
    if old in ("INTEGER", "BIGINT"):
        bits = 31 if old == "INTEGER" else 63
        extremes = [str(2**bits - 1), str(-(2**bits)), "1"]
    else:
        p, s = (int(x) for x in old[8:-1].split(","))
        top = "9" * (p - s) or "0"
        extremes = [f"{top}.{'9' * s}" if s else top, f"0.{'0' * (s - 1)}1" if s else "1"]
    survives = []
    for value in extremes:
        try:
            back = con.execute(
                f"SELECT CAST(CAST(CAST(? AS {old}) AS {new}) AS {old}) = CAST(? AS {old})",
                [value, value],
            ).fetchone()
            survives.append(bool(back and back[0]))
        except duckdb.Error:
            survives.append(False)
    if new == "DOUBLE":
        assert widens(old, new) == (old == "INTEGER" or old == "BIGINT" or old.endswith(",0)"))
        return
    if new == "VARCHAR":
        assert not widens(old, new)
        return
    assert widens(old, new) == all(survives), (old, new, extremes, survives)


def test_a_layout_2_file_gets_the_history_tables_and_a_version_per_fingerprint(
    tmp_path: Path,
) -> None:
    made = tmp_path / "new.duckdb"
    with Store(made) as store:
        for name in ("transactions_sample.csv", "transactions_sample.ndjson"):
            engine.ingest(DATA / name, db=store, schema="transactions")
        fingerprint = store.rows("SELECT DISTINCT schema_fingerprint FROM ingestion_runs")
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute(RUNS_DDL + STORED_DDL + VIEWS_DDL)
    con.execute(f"ATTACH '{made}' AS a (READ_ONLY)")
    con.execute(
        "INSERT INTO ingestion_runs SELECT * EXCLUDE (load_mode, read_options) FROM a.ingestion_runs"
    )
    for table in ("source_rows", "invalid_rows", "error_rules"):
        con.execute(f"INSERT INTO {table} SELECT * FROM a.{table}")
    con.execute("CREATE TABLE processed_data AS SELECT * FROM a.processed_data")
    con.execute("INSERT INTO layout_versions VALUES (2, now(), 'created with layout 2')")
    next_rule = con.execute("SELECT max(rule_id) + 1 FROM error_rules").fetchone()
    assert next_rule is not None
    con.execute("CREATE OR REPLACE SEQUENCE ingestion_run_ids START 3")
    con.execute(f"CREATE OR REPLACE SEQUENCE error_rule_ids START {next_rule[0]}")
    con.execute("DETACH a")
    con.close()
    with Store(old) as store:
        assert store.rows("SELECT version, note FROM layout_versions ORDER BY 1") == [
            (2, "created with layout 2"),
            (
                4,
                "migrated from layout 2: 1 schema versions recorded from earlier runs (their "
                "JSON schemas were not kept)",
            ),
        ]
        assert store.rows(
            "SELECT schema_fingerprint, schema_name, target_table, version, json_schema "
            "FROM schema_versions"
        ) == [(fingerprint[0][0], "Transaction", "processed_data", 1, None)]
        assert store.rows("SELECT DISTINCT load_mode FROM ingestion_runs") == [("append",)]
        # The same model keeps writing there, as version 1; every row names it.
        again = engine.ingest(
            DATA / "transactions_sample.csv", db=store, schema="transactions", force=True
        )
        assert again.run_id == 3
        assert store.rows("SELECT count(*) FROM schema_versions") == [(1,)]
        assert store.rows(
            "SELECT count(*), count(DISTINCT schema_fingerprint) FROM row_versions"
        ) == [(21 + 15 + 21, 1)]
