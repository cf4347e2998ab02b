"""`sql`: one read-only query, as a terminal table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from collections.abc import Callable
from decimal import Context, Decimal
from pathlib import Path

import duckdb
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.reports.sql import text_value
from engine.reports.sql_checks import READ_FORMS
from tests.conftest import ROOT, query
from tests.wording import assert_wraps, table_rows

RunCli = Callable[..., Result]
BY_CURRENCY = (
    "SELECT currency, count(*) AS n, sum(amount) AS total, min(timestamp) AS first "
    "FROM processed_data GROUP BY ALL ORDER BY 1"
)


def test_a_table_on_the_terminal(run_cli: RunCli, tricky_db: Path) -> None:
    result = run_cli("sql", BY_CURRENCY, "--db", str(tricky_db))
    assert result.exit_code == 0
    assert table_rows(result.output) == [
        ["currency", "n", "total", "first"],
        ["AUD", "1", "1e-09", "2024-01-01 00:00:00+00:00"],
        ["EUR", "2", "inf", "2024-01-02 00:00:00+00:00"],
        ["GBP", "1", "123456789.125", "2024-02-29 21:59:59.123456+00:00"],
        ["USD", "2", "21.0", "2024-01-02 03:04:05+00:00"],
    ]
    assert result.output.splitlines()[-1] == "4 rows"


def test_nulls_and_the_row_limit(run_cli: RunCli, tricky_db: Path) -> None:
    result = run_cli("sql", "SELECT NULL AS a, 'x' AS b", "--db", str(tricky_db))
    assert table_rows(result.output) == [["a", "b"], ["NULL", "x"]]
    assert result.output.splitlines()[-1] == "1 row"
    result = run_cli("sql", "FROM range(5) t(i)", "--db", str(tricky_db), "--limit", "2")
    assert [line.strip() for line in result.output.splitlines() if line.strip().isalnum()] == [
        "i",
        "0",
        "1",
    ]
    assert result.output.splitlines()[-1] == (
        "2 rows shown; more rows follow (use --format csv or json for all of them)"
    )


def test_csv_and_json(run_cli: RunCli, tricky_db: Path) -> None:
    result = run_cli("sql", BY_CURRENCY, "--db", str(tricky_db), "--format", "csv")
    assert result.output.splitlines() == [
        "currency,n,total,first",
        "AUD,1,1e-09,2024-01-01 00:00:00+00:00",
        "EUR,2,inf,2024-01-02 00:00:00+00:00",
        "GBP,1,123456789.125,2024-02-29 21:59:59.123456+00:00",
        "USD,2,21.0,2024-01-02 03:04:05+00:00",
    ]
    result = run_cli(
        "sql",
        "SELECT source_channel, errors FROM processed_data p, "
        "(SELECT errors FROM ingestion_errors WHERE run_id = 2) ORDER BY p.run_id, p.row_number LIMIT 2",
        "--db",
        str(tricky_db),
        "--format",
        "json",
    )
    error = {
        "type": "greater_than",
        "loc": ["amount"],
        "msg": "Input should be greater than 0",
        "input": '"-5"',
    }
    assert json.loads(result.output) == [
        {"source_channel": "Zoë Ünïcødé 東京 🚀", "errors": [error]},
        {"source_channel": "He said \"hi\", then 'bye'", "errors": [error]},
    ]
    # Infinity is not JSON: it is written as null.
    result = run_cli("sql", BY_CURRENCY, "--db", str(tricky_db), "--format", "json")
    assert [row["total"] for row in json.loads(result.output)] == [1e-09, None, 123456789.125, 21.0]
    empty = run_cli("sql", "SELECT 1 AS x WHERE false", "--db", str(tricky_db), "--format", "json")
    assert empty.output == "[]\n"


def test_only_one_read_only_statement(run_cli: RunCli, tricky_db: Path) -> None:
    cases = [
        (
            "DELETE FROM raw_data",
            "sql runs read-only queries (SELECT, FROM ..., DESCRIBE, SUMMARIZE, SHOW, EXPLAIN, PRAGMA, CALL), not DELETE",
        ),
        (
            "COPY raw_data TO 'x.csv'",
            "sql runs read-only queries (SELECT, FROM ..., DESCRIBE, SUMMARIZE, SHOW, EXPLAIN, PRAGMA, CALL), not COPY",
        ),
        (
            "ATTACH 'other.duckdb'",
            "sql runs read-only queries (SELECT, FROM ..., DESCRIBE, SUMMARIZE, SHOW, EXPLAIN, PRAGMA, CALL), not ATTACH",
        ),
        ("SELECT 1; DROP TABLE raw_data", "sql runs exactly one statement, got 2"),
    ]
    for sql, message in cases:
        result = run_cli("sql", sql, "--db", str(tricky_db))
        assert result.exit_code == 2, sql
        assert result.output == f"error: {message}\n"
    # DuckDB's own refusals: the project's prefix, then DuckDB's explanation (its wording
    # changes between versions) naming what is wrong, on one line.
    refused = [
        ("SELEC 1", ("SELEC",)),
        ("SELECT amout FROM processed_data", ("amout", "amount")),
        ("SELECT CAST('x' AS INTEGER)", ("'x'",)),
    ]
    for sql, mentions in refused:
        result = run_cli("sql", sql, "--db", str(tricky_db))
        assert result.exit_code == 2, sql
        assert_wraps(result.output, "error: query failed: ", mentions=mentions)
    assert query(tricky_db, "SELECT count(*) FROM raw_data") == [(8,)]


def test_every_form_the_readme_lists_runs(run_cli: RunCli, tricky_db: Path) -> None:
    """The README names what `sql` accepts from the same list as the refusal message, and
    each form runs."""
    listed = ", ".join(f"`{form}`" for form in READ_FORMS)
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"only statements that read ({listed})" in readme
    examples = {
        "SELECT": "SELECT count(*) FROM raw_data",
        "FROM ...": "FROM raw_data SELECT count(*)",
        "DESCRIBE": "DESCRIBE raw_data",
        "SUMMARIZE": "SUMMARIZE raw_data",
        "SHOW": "SHOW TABLES",
        "EXPLAIN": "EXPLAIN SELECT 1",
        "PRAGMA": "PRAGMA show_tables",
        "CALL": "CALL pragma_version()",
    }
    assert list(examples) == list(READ_FORMS)
    for form, sql in examples.items():
        result = run_cli("sql", sql, "--db", str(tricky_db), "--format", "csv")
        assert result.exit_code == 0, (form, result.output)
        assert len(result.output.splitlines()) >= 2, form


def test_describe_and_summarize_are_queries(run_cli: RunCli, tricky_db: Path) -> None:
    result = run_cli("sql", "DESCRIBE error_details", "--db", str(tricky_db), "--format", "csv")
    assert [line.split(",")[:2] for line in result.output.splitlines()] == [
        ["column_name", "column_type"],
        ["run_id", "BIGINT"],
        ["row_number", "BIGINT"],
        ["loc", "VARCHAR"],
        ["type", "VARCHAR"],
        ["msg", "VARCHAR"],
        ["input", "VARCHAR"],
    ]


WIDE = Context(prec=80)  # the default context rounds to 28 digits


# Nested values of every DECIMAL width and scale: a cell holds what DuckDB's own JSON holds.
_decimals = st.tuples(st.integers(1, 38), st.data()).map(
    lambda w: (w[0], w[1].draw(st.integers(0, w[0])))
)


@settings(max_examples=60, deadline=None)
@given(
    width_scale=_decimals,
    unscaled=st.lists(st.integers(-(10**38) + 1, 10**38 - 1), max_size=4),
    text=st.text(max_size=5),
)
def test_nested_cells_are_duckdbs_own_json_with_every_decimal_digit(
    width_scale: tuple[int, int], unscaled: list[int], text: str
) -> None:
    width, scale = width_scale
    values = [
        Decimal(abs(u) % 10**width * (1 if u >= 0 else -1)).scaleb(-scale, WIDE) for u in unscaled
    ]
    literals = ", ".join(f"'{v:f}'::DECIMAL({width},{scale})" for v in values)
    typed = f"[{literals}]::DECIMAL({width},{scale})[]"
    quoted = text.replace("'", "''")
    sql = f"SELECT {{'d': {typed}, 's': '{quoted}', 'n': NULL, 'b': true, 'i': [1, -2]}} AS v"
    with duckdb.connect() as con:
        cell = con.execute(sql).fetchall()[0][0]
        expected = con.execute(f"SELECT to_json(v)::VARCHAR FROM ({sql})").fetchall()[0][0]
    # Equal as numbers (DuckDB hands 0.0 of a DECIMAL(1,1) to Python as Decimal('0')).
    written = json.loads(text_value(cell), parse_float=Decimal)
    assert written == json.loads(expected, parse_float=Decimal)
    assert [Decimal(d) for d in written["d"]] == values


def test_small_decimals_are_plain_digits_in_text_cells() -> None:
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT 0::DECIMAL(18,10), 0.0000001::DECIMAL(18,9), -0.5::DECIMAL(3,2), "
            "[0.0000001::DECIMAL(18,9)]"
        ).fetchall()[0]
    assert [text_value(v) for v in row] == ["0.0000000000", "0.000000100", "-0.50", "[0.000000100]"]


def test_integers_arrow_misreads_are_duckdbs_text_and_unshowable_dates_one_line(
    run_cli: RunCli, tricky_db: Path
) -> None:
    """UHUGEINT past 2**127 came out negative and BIGNUM as bytes; an infinite date was a
    traceback. The first two are DuckDB's own text now, the last one line (JSON shows it)."""
    wide = (
        "SELECT 340282366920938463463374607431768211455::UHUGEINT AS u, "
        "(1::UHUGEINT << 127) AS v, 7::UHUGEINT AS w, "
        "123456789012345678901234567890123456789012::BIGNUM AS b"
    )
    result = run_cli("sql", wide, "--db", str(tricky_db), "--format", "csv")
    assert (result.exit_code, result.output) == (
        0,
        "u,v,w,b\n340282366920938463463374607431768211455,"
        "170141183460469231731687303715884105728,7,"
        "123456789012345678901234567890123456789012\n",
    )
    # TIME '24:00:00' (DuckDB holds it, Python's time cannot) came out as midnight.
    times = "SELECT TIME '24:00:00' AS t, TIME '01:02:03.5' AS u, NULL::TIME AS n"
    result = run_cli("sql", times, "--db", str(tricky_db), "--format", "csv")
    assert (result.exit_code, result.output) == (0, "t,u,n\n24:00:00,01:02:03.5,\n")
    result = run_cli("sql", times, "--db", str(tricky_db), "--format", "json")
    assert (result.exit_code, result.output) == (
        0,
        '[\n{"t":"24:00:00","u":"01:02:03.5","n":null}\n]\n',
    )
    # A TIME WITH TIME ZONE lost its offset; a TIME in a list or struct was midnight.
    nested = (
        "SELECT TIMETZ '12:00:00+05:30' AS z, [TIME '24:00:00'] AS l, "
        "{'t': TIME '24:00:00'} AS s, [TIMESTAMP '2024-01-01'] AS ts"
    )
    result = run_cli("sql", nested, "--db", str(tricky_db), "--format", "csv")
    assert (result.exit_code, result.output) == (
        0,
        'z,l,s,ts\n12:00:00+05:30,"[""24:00:00""]","{""t"":""24:00:00""}",'
        '"[""2024-01-01T00:00:00""]"\n',
    )
    # In their own processes: a failed stream leaves DuckDB's (locked-down) instance alive in
    # this one, which the next in-process command would open again.
    for fmt in ("csv", "table", "json"):
        argv = [sys.executable, "cli.py", "sql", "SELECT 'infinity'::DATE AS d"]
        done = subprocess.run(
            [*argv, "--db", str(tricky_db), "--format", fmt],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        if fmt == "json":
            assert (done.returncode, done.stdout) == (0, '[\n{"d":"infinity"}\n]\n')
            continue
        assert (done.returncode, done.stderr) == (
            2,
            "error: query result holds a value Python cannot show as text (days=2147483647; "
            "must have magnitude <= 999999999) (use --format json, or cast the column to "
            "VARCHAR in the query)\n",
        )


def test_csv_tells_an_empty_string_from_null(tmp_path: Path) -> None:
    """`sql --format csv` wrote '' and NULL alike (Python's csv before 3.12 cannot quote an
    empty string alone); generated cells read back by DuckDB's own CSV reader (quoted ""
    as an empty string) and by Python's csv are the cells written (independent attack)."""
    from engine.reports.sql import QueryResult, write_csv

    rng = random.Random(9)
    pieces = ["", "a", ",", '"', "\n", "\r\n", " ", "é", "x y", "=1"]
    rows = [
        tuple(
            None if rng.random() < 0.2 else "".join(rng.choices(pieces, k=rng.randint(0, 3)))
            for _ in range(3)
        )
        for _ in range(300)
    ]
    out = io.StringIO()
    written = write_csv(QueryResult(["a", "b", "c"], ["VARCHAR"] * 3, iter([rows])), out)
    path = tmp_path / "out.csv"
    path.write_text(out.getvalue(), newline="")
    with duckdb.connect() as con:
        back = con.execute(
            "SELECT * FROM read_csv(?, all_varchar = true, allow_quoted_nulls = false, "
            "header = true, quote = '\"', escape = '\"', new_line = '\\n')",
            [str(path)],
        ).fetchall()
    assert (written, back) == (300, rows)
    with path.open(newline="") as fh:
        python = [tuple(r) for r in csv.reader(fh)][1:]
    assert python == [tuple("" if v is None else v for v in row) for row in rows]
