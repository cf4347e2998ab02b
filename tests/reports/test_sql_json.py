"""`sql --format json`: every value as DuckDB stores it, written as `export --format json` does.

Found from outside: a DECIMAL(20,2) of 12345678901234567.89 came out as 1.2345678901234568e+16
(through a Python float) while `export --format json` and `--format csv` kept every digit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Context, Decimal
from itertools import count
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.store.store import Store
from tests.conftest import ROOT, query
from tests.reports.test_sql import RunCli

MODELS = """
from datetime import date, datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import BaseModel, Field


class Wide(BaseModel):
    __table_name__: ClassVar[str] = "wide"
    rid: str
    price: Decimal | None = Field(default=None, max_digits=20, decimal_places=2)
    whole: Decimal | None = Field(default=None, max_digits=38, decimal_places=0)
    count: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1)
    day: date | None = None
    seen: datetime | None = None
    ratio: float | None = None
"""
ROWS = (
    "rid,price,whole,count,day,seen,ratio\n"
    f"a,12345678901234567.89,{10**37},{2**63 - 1},2024-02-29,2024-01-01T12:34:56.789+02:00,nan\n"
    "b,,,,,,\n"
    f"c,-0.01,{-(10**38 - 1)},{-(2**63)},0001-01-01,1999-12-31T23:59:59Z,-inf\n"
    "d,1.10,0,0,9999-12-31,2024-06-30T00:00:00.000001-05:00,0.1\n"
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wide_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four rows above, stored through `cli.py run` with the model above."""
    tmp = tmp_path_factory.mktemp("wide")
    (tmp / "models.py").write_text(MODELS)
    (tmp / "wide.csv").write_text(ROWS)
    db = tmp / "wide.duckdb"
    done = cli(
        "run", str(tmp / "wide.csv"), "--db", str(db), "--schema", f"{tmp / 'models.py'}:Wide", "-q"
    )
    assert (done.returncode, done.stderr) == (0, "")
    return db


def test_exact_digits_through_the_cli(wide_db: Path) -> None:
    done = cli(
        "sql",
        "SELECT rid, price, whole, count FROM wide WHERE rid IN ('a', 'b') ORDER BY rid",
        "--db",
        str(wide_db),
        "--format",
        "json",
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "[\n"
        '{"rid":"a","price":12345678901234567.89,'
        '"whole":10000000000000000000000000000000000000,"count":9223372036854775807},\n'
        '{"rid":"b","price":null,"whole":null,"count":null}\n'
        "]\n"
    )
    assert query(
        wide_db, "SELECT typeof(price), typeof(whole), typeof(count) FROM wide LIMIT 1"
    ) == [("DECIMAL(20,2)", "DECIMAL(38,0)", "BIGINT")]


def test_dates_times_and_floats_as_export_writes_them(wide_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "wide.json"
    exported = cli("export", "processed", "--db", str(wide_db), "-o", str(out), "-q")
    assert (exported.returncode, exported.stderr) == (0, "")
    columns = "rid, price, whole, count, day, seen, ratio"
    done = cli("sql", f"SELECT {columns} FROM wide", "--db", str(wide_db), "--format", "json")
    assert (done.returncode, done.stderr) == (0, "")
    rows = json.loads(done.stdout, parse_float=Decimal)
    assert rows == [
        {key: row[key] for key in columns.split(", ")}
        for row in json.loads(out.read_text(), parse_float=Decimal)
    ]
    assert [(row["day"], row["seen"], row["ratio"]) for row in rows] == [
        ("2024-02-29", "2024-01-01 10:34:56.789", None),
        (None, None, None),
        ("0001-01-01", "1999-12-31 23:59:59", None),
        ("9999-12-31", "2024-06-30 05:00:00.000001", Decimal("0.1")),
    ]
    assert [(row["whole"], row["count"]) for row in rows[2:]] == [(-(10**38 - 1), -(2**63)), (0, 0)]


NESTED = (
    "SELECT [12345678901234567.89::DECIMAL(20,2), NULL] AS prices, "
    "{'ratio': 'nan'::DOUBLE, 'big': 170141183460469231731687303715884105727::HUGEINT} AS s, "
    "MAP {'x': '-inf'::DOUBLE, 'y': 2.5::DOUBLE} AS m, [[1.0::DOUBLE, 'inf']] AS grid, "
    "18446744073709551615::UBIGINT AS top, TIMESTAMPTZ '2024-01-01 12:34:56.789+02' AS tz, "
    "INTERVAL 3 DAY AS span, '\\xAB'::BLOB AS bytes, "
    'NULL AS "a ""quoted""\nname", '
    "'Zoë 東京' AS \"Zoë\""
)


def test_nested_values_huge_integers_and_odd_names(run_cli: RunCli, wide_db: Path) -> None:
    result = run_cli("sql", NESTED, "--db", str(wide_db), "--format", "json")
    assert result.exit_code == 0
    assert result.output == (
        "[\n"
        '{"prices":[12345678901234567.89,null],'
        '"s":{"ratio":null,"big":170141183460469231731687303715884105727},'
        '"m":{"x":null,"y":2.5},"grid":[[1.0,null]],"top":18446744073709551615,'
        '"tz":"2024-01-01 10:34:56.789+00","span":"3 days","bytes":"\\\\xAB",'
        '"a \\"quoted\\"\\nname":null,"Zoë":"Zoë 東京"}\n'
        "]\n"
    )


def test_statements_other_than_select(run_cli: RunCli, wide_db: Path) -> None:
    result = run_cli("sql", "PRAGMA table_info('wide')", "--db", str(wide_db), "--format", "json")
    assert result.exit_code == 0
    assert [(row["name"], row["type"]) for row in json.loads(result.output)] == [
        ("run_id", "BIGINT"),
        ("row_number", "BIGINT"),
        ("rid", "VARCHAR"),
        ("price", "DECIMAL(20,2)"),
        ("whole", "DECIMAL(38,0)"),
        ("count", "BIGINT"),
        ("day", "DATE"),
        ("seen", "TIMESTAMP"),
        ("ratio", "DOUBLE"),
    ]


TABLES = count()  # a new table per example, in one file per test


@st.composite
def decimal_columns(draw: st.DrawFn) -> tuple[int, int, list[Decimal | None]]:
    """A DECIMAL(p,s) and values of it, from the smallest to the largest it holds."""
    precision = draw(st.integers(1, 38))
    scale = draw(st.integers(0, precision))
    exact = Context(prec=precision)  # Decimal's default 28 digits would round a DECIMAL(38,s)
    largest = 10**precision - 1
    values = st.integers(-largest, largest).map(lambda n: Decimal(n).scaleb(-scale, exact))
    return precision, scale, draw(st.lists(st.none() | values, min_size=1, max_size=5))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(column=decimal_columns())
def test_generated_decimals_read_back_exactly(
    run_cli: RunCli, tmp_path: Path, column: tuple[int, int, list[Decimal | None]]
) -> None:
    precision, scale, values = column
    db = tmp_path / "decimals.duckdb"
    if not db.exists():
        Store(db).close()
    table = f"d{next(TABLES)}"
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE TABLE {table} (i INTEGER, v DECIMAL({precision},{scale}))")
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?::DECIMAL({precision},{scale}))",
            [(i, None if v is None else format(v, "f")) for i, v in enumerate(values)],
        )
    finally:
        con.close()
    result = run_cli(
        "sql", f"SELECT v FROM {table} ORDER BY i", "--db", str(db), "--format", "json"
    )
    assert result.exit_code == 0
    stored = [row[0] for row in query(db, f"SELECT v FROM {table} ORDER BY i")]
    assert stored == values
    assert [row["v"] for row in json.loads(result.output, parse_float=Decimal)] == stored
