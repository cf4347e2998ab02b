"""Exports read back with Polars and openpyxl equal the stored tables, value for value."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import polars as pl
import pytest
from click.testing import Result
from polars.testing import assert_frame_equal

from tests.reports.conftest import TRICKY_NDJSON
from tests.wording import assert_wraps

RunCli = Callable[..., Result]
TABLES = {"processed": "processed_data", "raw": "raw_data"}


def stored(db: Path, query: str) -> pl.DataFrame:
    """What DuckDB holds, as a Polars frame (times in UTC, like the exports)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        frame = pl.from_arrow(con.sql(query).to_arrow_table())
    finally:
        con.close()
    assert isinstance(frame, pl.DataFrame)
    return frame


def export(run_cli: RunCli, db: Path, kind: str, output: Path, *args: str) -> Result:
    result = run_cli("export", kind, "--db", str(db), "-o", str(output), "-q", *args)
    assert result.exit_code == 0, result.output
    return result


def times_from_text(frame: pl.DataFrame, like: pl.DataFrame) -> pl.DataFrame:
    """JSON has no timestamp type: parse the text back into the stored column types."""
    return frame.with_columns(
        pl.col(name).str.to_datetime(time_zone="UTC")
        for name, dtype in like.schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def no_nan_or_infinity(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not valid JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_the_tricky_table_is_what_the_round_trips_check(tricky_db: Path) -> None:
    frame = stored(tricky_db, "SELECT * FROM processed_data")
    assert frame.height == 6 and frame["timestamp"].null_count() == 1
    assert frame["source_channel"].to_list() == [
        TRICKY_NDJSON[0]["source_channel"],
        TRICKY_NDJSON[1]["source_channel"],
        TRICKY_NDJSON[2]["source_channel"],
        "",
        'multi\nline "quoted"',
        "c",
    ]
    assert frame["amount"].to_list()[-1] == float("inf")
    raw = stored(tricky_db, "SELECT * FROM raw_data")
    assert (
        raw.height == 8
        and raw["raw"][5] == '"TX,1",10.5,usd,"multi\nline ""quoted""",2024-01-02T03:04:05'
    )


@pytest.mark.parametrize("kind", ["processed", "raw"])
def test_csv_round_trip(run_cli: RunCli, tricky_db: Path, tmp_path: Path, kind: str) -> None:
    expected = stored(tricky_db, f"SELECT * FROM {TABLES[kind]}")
    export(run_cli, tricky_db, kind, tmp_path / "out.csv")
    back = pl.read_csv(tmp_path / "out.csv", schema=expected.schema)
    assert_frame_equal(back, expected)
    # An empty string and a null stay apart.
    if kind == "processed":
        assert back["external_id"][3] == "" and back["timestamp"][1] is None


@pytest.mark.parametrize("kind", ["processed", "raw"])
def test_parquet_round_trip(run_cli: RunCli, tricky_db: Path, tmp_path: Path, kind: str) -> None:
    expected = stored(tricky_db, f"SELECT * FROM {TABLES[kind]}")
    export(run_cli, tricky_db, kind, tmp_path / "out.parquet")
    assert_frame_equal(pl.read_parquet(tmp_path / "out.parquet"), expected)


@pytest.mark.parametrize("kind", ["processed", "raw"])
def test_json_and_ndjson_round_trip(
    run_cli: RunCli, tricky_db: Path, tmp_path: Path, kind: str
) -> None:
    expected = stored(tricky_db, f"SELECT * FROM {TABLES[kind]}")
    # JSON has no Infinity or NaN: they are written as null, so that every parser reads the file.
    expected = expected.with_columns(
        pl.when(pl.col(name).is_finite()).then(pl.col(name)).alias(name)
        for name, dtype in expected.schema.items()
        if dtype == pl.Float64
    )
    export(run_cli, tricky_db, kind, tmp_path / "out.json")
    export(run_cli, tricky_db, kind, tmp_path / "out.ndjson")
    array = no_nan_or_infinity((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert isinstance(array, list) and len(array) == expected.height
    lines = (tmp_path / "out.ndjson").read_text(encoding="utf-8").splitlines()
    assert [no_nan_or_infinity(line) for line in lines] == array
    schema = pl.Schema(
        [
            (name, pl.String() if isinstance(dtype, pl.Datetime) else dtype)
            for name, dtype in expected.schema.items()
        ]
    )
    for back in (
        pl.read_json(tmp_path / "out.json", schema=schema),
        pl.read_ndjson(tmp_path / "out.ndjson", schema=schema),
    ):
        assert_frame_equal(times_from_text(back, expected), expected)


def excel_value(value: Any) -> Any:
    """A stored value as Excel holds it: UTC wall time to the millisecond, infinities as text."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC).replace(tzinfo=None)
        return utc.replace(microsecond=round(utc.microsecond / 1000) * 1000)
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return value


@pytest.mark.parametrize("kind", ["processed", "raw"])
def test_xlsx_round_trip(run_cli: RunCli, tricky_db: Path, tmp_path: Path, kind: str) -> None:
    expected = stored(tricky_db, f"SELECT * FROM {TABLES[kind]}")
    export(run_cli, tricky_db, kind, tmp_path / "out.xlsx")
    book = openpyxl.load_workbook(tmp_path / "out.xlsx", read_only=True)
    assert book.sheetnames == [kind]
    rows = list(book[kind].iter_rows(values_only=True))
    book.close()
    assert rows[0] == tuple(expected.columns)
    assert rows[1:] == [tuple(excel_value(v) for v in row) for row in expected.iter_rows()]


def test_errors_export_is_readable_and_structured(
    run_cli: RunCli, sample_db: Path, tmp_path: Path
) -> None:
    export(run_cli, sample_db, "errors", tmp_path / "errors.csv")
    back = pl.read_csv(tmp_path / "errors.csv", infer_schema=False)
    assert back.columns == ["run_id", "row_number", "line_number", "message", "errors", "raw"]
    assert back.height == 14
    first = back.row(0, named=True)
    assert first == {
        "run_id": "1",
        "row_number": "3",
        "line_number": "4",
        "message": "amount: Input should be greater than 0 (got '-50.0')",
        "errors": '[{"type":"greater_than","loc":["amount"],"msg":"Input should be greater '
        'than 0","input":"-50.0"}]',
        "raw": "TXN-3,-50.0,GBP,CHANNEL3,2024-03-01T09:17:00",
    }
    messages = dict(zip(back["row_number"].cast(int), back["message"], strict=True))
    assert messages[7] == "external_id: Field required"
    assert messages[15] == "Expected 5 fields, found 4"
    assert messages[12] == (
        "amount: Input should be a valid number, unable to parse string as a number "
        "(got '1,000.00')"
    )
    assert messages[6] == (
        "currency: Value error, currency must be one of USD, EUR, GBP, AUD (got 'JPY')"
    )
    # The structured list is Pydantic's shape; the whole-record input of `missing` is an object.
    missing = json.loads(back.filter(pl.col("row_number") == "7")["errors"][0])
    assert missing == [
        {
            "type": "missing",
            "loc": ["external_id"],
            "msg": "Field required",
            "input": {
                "amount": "42.00",
                "currency": "USD",
                "source_channel": "CHANNEL3",
                "timestamp": "2024-03-01T09:20:00",
            },
        }
    ]
    # The same rows and texts in every format; in NDJSON the error list is nested JSON.
    export(run_cli, sample_db, "errors", tmp_path / "errors.ndjson")
    records = [json.loads(line) for line in (tmp_path / "errors.ndjson").read_text().splitlines()]
    assert [r["message"] for r in records] == back["message"].to_list()
    assert records[0]["errors"] == json.loads(first["errors"])
    export(run_cli, sample_db, "errors", tmp_path / "errors.xlsx")
    book = openpyxl.load_workbook(tmp_path / "errors.xlsx", read_only=True)
    sheet = list(book["errors"].iter_rows(values_only=True))
    book.close()
    assert sheet[1] == (1, 3, 4, first["message"], first["errors"], first["raw"])


def test_a_json_number_input_is_shown_as_a_number(
    run_cli: RunCli, tricky_db: Path, tmp_path: Path
) -> None:
    export(run_cli, tricky_db, "errors", tmp_path / "errors.parquet")
    back = pl.read_parquet(tmp_path / "errors.parquet")
    assert back.select("run_id", "row_number", "line_number", "message").rows() == [
        (1, 4, 4, "amount: Input should be greater than 0 (got -1)"),
        (2, 3, 5, "amount: Input should be greater than 0 (got '-5')"),
    ]


def test_run_and_where_filters(run_cli: RunCli, tricky_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    export(run_cli, tricky_db, "processed", out, "--run", "2")
    assert pl.read_csv(out)["external_id"].to_list() == ["TX,1", "TX2"]
    export(run_cli, tricky_db, "processed", out, "--where", "currency IN ('EUR', 'GBP')")
    assert pl.read_csv(out)["external_id"].to_list() == ["TXN-2", "TXN-3", "TX2"]
    export(run_cli, tricky_db, "processed", out, "--run", "1", "--where", "currency = 'EUR'")
    assert pl.read_csv(out)["external_id"].to_list() == ["TXN-2"]
    export(run_cli, tricky_db, "raw", out, "--run", "2", "--where", "line_number > 2")
    assert pl.read_csv(out).select("run_id", "row_number", "line_number").rows() == [
        (2, 2, 4),
        (2, 3, 5),
    ]
    export(run_cli, tricky_db, "errors", out, "--where", "message LIKE '%(got -1)'")
    assert pl.read_csv(out)["row_number"].to_list() == [4]
    xlsx = tmp_path / "out.xlsx"
    export(run_cli, tricky_db, "processed", xlsx, "--run", "2", "--where", "amount < 100")
    book = openpyxl.load_workbook(xlsx, read_only=True)
    assert [r[2] for r in book["processed"].iter_rows(values_only=True)] == ["external_id", "TX,1"]
    book.close()


def test_the_closing_line_and_format_from_the_extension(
    run_cli: RunCli, sample_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "valid.jsonl"
    result = run_cli("export", "processed", "--db", str(sample_db), "-o", str(out))
    assert result.exit_code == 0
    assert result.output.startswith(f"exported 7 rows of processed_data to {out} (ndjson) in ")
    assert len(out.read_text().splitlines()) == 7
    forced = tmp_path / "valid.txt"
    result = run_cli(
        "export", "raw", "--db", str(sample_db), "-o", str(forced), "--format", "csv", "-q"
    )
    assert result.exit_code == 0 and result.output == ""
    assert len(pl.read_csv(forced)) == 21


def test_a_failed_export_leaves_the_old_file_alone(
    run_cli: RunCli, sample_db: Path, tmp_path: Path
) -> None:
    for name in ("out.csv", "out.xlsx"):
        out = tmp_path / name
        out.write_text("old")
        # Binds fine, fails while running: the half-written file is removed, the old one kept.
        result = run_cli(
            "export",
            "processed",
            "--db",
            str(sample_db),
            "-o",
            str(out),
            "--where",
            "CAST(external_id AS INTEGER) > 0",
        )
        assert result.exit_code == 2
        assert_wraps(result.stderr, f"error: {out}: export failed: ", "\n", mentions=("TXN-1",))
        assert out.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "out.xlsx", "sample.duckdb"]


def test_several_schemas_several_typed_tables(
    run_cli: RunCli, sample_db: Path, tmp_path: Path
) -> None:
    model = tmp_path / "readings.py"
    model.write_text("from pydantic import BaseModel\nclass Reading(BaseModel):\n    sensor: str\n")
    (tmp_path / "readings.csv").write_text("sensor\nA\nB\n")
    run_cli(
        "run",
        str(tmp_path / "readings.csv"),
        "--db",
        str(sample_db),
        "--schema",
        f"{model}:Reading",
        "-q",
    )
    out = tmp_path / "out.csv"
    result = run_cli("export", "processed", "--db", str(sample_db), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == (
        "error: runs wrote to several typed tables (processed_data, reading) "
        "(pick one with --table or --run)\n"
    )
    export(run_cli, sample_db, "processed", out, "--table", "reading")
    assert pl.read_csv(out).rows() == [(2, 1, "A"), (2, 2, "B")]
    export(run_cli, sample_db, "processed", out, "--run", "1")
    assert pl.read_csv(out).height == 7
    result = run_cli("export", "raw", "--db", str(sample_db), "-o", str(out), "--table", "reading")
    assert result.stderr == "error: --table picks the typed table of `processed`, not of 'raw'\n"
