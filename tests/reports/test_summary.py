"""`summary`: success rate, rows/s, errors by field and type, the most frequent bad values."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.conftest import query
from tests.wording import table_rows

RunCli = Callable[..., Result]

SAMPLE_ERRORS = [
    {"field": "amount", "type": "float_parsing", "count": 2},
    {"field": "amount", "type": "greater_than", "count": 2},
    {"field": "currency", "type": "value_error", "count": 2},
    {"field": "", "type": "csv_too_few_fields", "count": 1},
    {"field": "", "type": "csv_too_many_fields", "count": 1},
    {"field": "", "type": "csv_unterminated_quote", "count": 1},
    {"field": "", "type": "invalid_utf8", "count": 1},
    {"field": "external_id", "type": "missing", "count": 1},
    {"field": "source_channel", "type": "missing", "count": 1},
    {"field": "timestamp", "type": "datetime_from_date_parsing", "count": 1},
    {"field": "timestamp", "type": "value_error", "count": 1},
]
SAMPLE_VALUES = [
    {"field": "amount", "value": "-50.0", "count": 1},
    {"field": "amount", "value": "0", "count": 1},
    {"field": "amount", "value": "1,000.00", "count": 1},
    {"field": "amount", "value": "abc", "count": 1},
    {"field": "currency", "value": "CAD", "count": 1},
    {"field": "currency", "value": "JPY", "count": 1},
    {"field": "timestamp", "value": "2024-13-01T00:00:00", "count": 1},
    {"field": "timestamp", "value": "2099-01-01T00:00:00", "count": 1},
]


def summary_json(run_cli: RunCli, db: Path) -> dict[str, Any]:
    result = run_cli("summary", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert isinstance(data, dict)
    return data


def test_error_breakdowns_of_the_sample(run_cli: RunCli, sample_db: Path) -> None:
    data = summary_json(run_cli, sample_db)
    assert data["errors_by_field"] == SAMPLE_ERRORS
    assert data["top_values"] == SAMPLE_VALUES
    [(seconds,)] = query(sample_db, "SELECT duration_s FROM ingestion_runs")
    assert isinstance(seconds, float)
    assert data["rows_per_s"] == 21 / seconds
    [run] = data["runs"]
    assert (run["success_rate"], run["rows_per_s"]) == (7 / 21, 21 / seconds)


def test_most_frequent_values_come_first_and_json_inputs_keep_their_type(
    run_cli: RunCli, tricky_db: Path, sample_db: Path, tmp_path: Path
) -> None:
    more = tmp_path / "more.csv"
    more.write_text(
        "external_id,amount,currency,source_channel,timestamp\n"
        + "".join(f"M{i},-50.0,USD,c,2024-01-01\n" for i in range(3))
        + "M9,0,USD,c,2024-01-01\n"
    )
    added = run_cli("run", str(more), "--db", str(tricky_db), "-q")
    assert (added.exit_code, added.stdout, added.stderr) == (0, "", "")
    data = summary_json(run_cli, tricky_db)
    assert (data["runs_completed"], data["rows_total"], data["rows_valid"]) == (3, 12, 6)
    assert data["success_rate"] == 0.5
    assert data["errors_by_field"] == [{"field": "amount", "type": "greater_than", "count": 6}]
    assert data["top_values"] == [
        {"field": "amount", "value": "-50.0", "count": 3},
        {"field": "amount", "value": "-5", "count": 1},
        {"field": "amount", "value": "0", "count": 1},
        {"field": "amount", "value": -1, "count": 1},  # from JSON: a number, not a string
    ]
    seconds = query(tricky_db, "SELECT sum(duration_s) FROM ingestion_runs")[0][0]
    assert isinstance(seconds, float)
    assert data["rows_per_s"] == 12 / seconds


def test_the_terminal_summary(run_cli: RunCli, sample_db: Path) -> None:
    result = run_cli("summary", "--db", str(sample_db))
    assert result.exit_code == 0
    lines = [line.rstrip() for line in result.output.splitlines()]
    # One line, even past the 80 columns of a non-terminal.
    head = "1 completed run (0 failed): 21 rows, 7 valid, 14 invalid, success rate 33.33%, "
    [(seconds,)] = query(sample_db, "SELECT duration_s FROM ingestion_runs")
    assert isinstance(seconds, float)
    assert lines[0] == f"{head}{21 / seconds:,.0f} rows/s"
    assert "errors by field and type" in lines
    start = lines.index("errors by field and type")
    end = lines.index("most frequent offending values")
    errors = table_rows("\n".join(lines[start:end]))
    assert errors[1] == ["amount", "float_parsing", "2"]
    assert errors[4] == ["(row)", "csv_too_few_fields", "1"]
    values = table_rows("\n".join(lines[end:]))
    assert values[1] == ["amount", "'-50.0'", "1"]
    assert values[-1] == ["timestamp", "'2099-01-01T00:00:00'", "1"]


def test_one_failing_float_is_one_value_whichever_path_judged_it(tmp_path: Path) -> None:
    """The vectorized rules keep DuckDB's JSON text of a float (150000000000000000000.0),
    rows Pydantic decides Python's (1.5e+20): the most frequent failing values counted one
    value twice (independent attack)."""
    from datetime import datetime

    from pydantic import BaseModel

    import engine
    from engine.reports.summary import summary
    from engine.store.store import Store

    class Stamp(BaseModel):
        n: int
        dt: datetime

    rows = [{"n": i, "dt": 1.5e20} for i in range(7)] + [{"n": 10**40, "dt": 1.5e20}]
    data = tmp_path / "s.ndjson"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    db = tmp_path / "s.duckdb"
    engine.ingest(data, db=db, schema=Stamp)
    with Store(db, read_only=True) as store:
        found = summary(store)
    assert [(v.field, v.value, v.count) for v in found.top_values if v.field == "dt"] == [
        ("dt", 1.5e20, 8)
    ]
