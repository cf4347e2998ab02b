"""The divergences found by independently written models (issue 12), each through the real CLI
path into DuckDB and read back, against what Pydantic says for the same input."""

from __future__ import annotations

import json
import math
import runpy
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pydantic import ValidationError

from tests.conftest import query

MODEL = """
from datetime import date, datetime
from pydantic import BaseModel, ConfigDict, Field


class Payment(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    amount: int = Field(gt=0)
    label: str = Field("", alias="Label")
    when: datetime | None = None
    day: date | None = Field(None, ge=date(2000, 1, 1))
    ratio: float = 0.0
"""


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "payment.py"
    path.write_text(textwrap.dedent(MODEL))
    return path


def ingest(
    run_cli: Callable[..., Result], db: Path, model: Path, data: Path
) -> list[tuple[int, str, Any]]:
    """(row_number, "valid"|"invalid", stored row or error list) for every row of the run."""
    result = run_cli("run", str(data), "--db", str(db), "--schema", f"{model}:Payment")
    assert result.exit_code == 0, result.output
    valid = query(db, 'SELECT row_number, amount, label, "when", day, ratio FROM payment')
    invalid = query(db, "SELECT row_number, errors FROM ingestion_errors")
    raw = query(db, "SELECT count(*) FROM raw_data")[0][0]
    assert raw == len(valid) + len(invalid)
    rows: list[tuple[int, str, Any]] = [(int(str(r[0])), "valid", r[1:]) for r in valid]
    for number, errors in invalid:
        listed = [(e["type"], e["loc"], e["msg"], e["input"]) for e in errors]  # type: ignore[attr-defined]
        rows.append((int(str(number)), "invalid", listed))
    return sorted(rows)


def ndjson(write: Callable[[str, str], Path], *lines: str) -> Path:
    return write("rows.ndjson", "".join(line + "\n" for line in lines))


def test_json_duplicate_keys_keep_the_last_value_as_python_does(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    data = ndjson(write, '{"amount": 7, "amount": -5}', '{"amount": -5, "amount": 7}')
    assert ingest(run_cli, db, model, data) == [
        (1, "invalid", [("greater_than", ["amount"], "Input should be greater than 0", "-5")]),
        (2, "valid", (7, "", None, None, 0.0)),
    ]


def test_json_trailing_commas_are_invalid_json(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    lines = ['{"amount": 1,}', '{"amount": 1, "when": "2024-01-01T00:00:00.1234567",}']
    lines.append('{"amount": [1,]}')
    data = ndjson(write, *lines)
    expected: list[tuple[int, str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except json.JSONDecodeError as exc:
            expected.append(
                (
                    number,
                    "invalid",
                    [("json_invalid", [], f"Invalid JSON: {exc}", json.dumps(line))],
                )
            )
    assert ingest(run_cli, db, model, data) == expected


def test_a_lone_surrogate_is_read_as_python_reads_it(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    data = ndjson(
        write,
        '{"amount": 1, "Label": "\\ud800"}',  # a valid str for Pydantic: not storable
        '{"amount": "\\ud800"}',  # string_unicode for an int
        '{"amount": 1, "Label": "\\ud83d\\ude00"}',  # a proper pair: stored
    )
    assert ingest(run_cli, db, model, data) == [
        (
            1,
            "invalid",
            [
                (
                    "string_storage_surrogate",
                    ["Label"],
                    "Valid string, but it holds a lone surrogate, which the VARCHAR column "
                    "(UTF-8) cannot store",
                    '"\\ud800"',
                )
            ],
        ),
        (
            2,
            "invalid",
            [
                (
                    "string_unicode",
                    ["amount"],
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                    '"\\ud800"',
                )
            ],
        ),
        (3, "valid", (1, "\U0001f600", None, None, 0.0)),
    ]


OUT_OF_RANGE = "Valid datetime, but in UTC it falls outside years 1-9999, which the TIMESTAMP column it is stored in cannot give back"


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_datetimes_outside_pythons_range_are_a_storage_error_on_both_paths(
    run_cli: Callable[..., Result],
    write: Callable[[str, str], Path],
    db: Path,
    model: Path,
    fmt: str,
) -> None:
    values = [
        "0001-01-01T00:00:00.1234567+01:00",  # seven digits: Pydantic's path
        "0001-01-01T00:30:00+01:00",  # the vectorized path
        "9999-12-31T23:30:00-01:00",
        "0001-01-01T01:00:00+01:00",  # exactly year 1 in UTC: fine
    ]
    if fmt == "csv":
        data = write("rows.csv", "amount,when\n" + "".join(f"1,{v}\n" for v in values))
    else:
        data = ndjson(write, *(json.dumps({"amount": 1, "when": v}) for v in values))
    rows = ingest(run_cli, db, model, data)
    assert [r[:2] for r in rows] == [(1, "invalid"), (2, "invalid"), (3, "invalid"), (4, "valid")]
    for row, value in zip(rows[:3], values, strict=False):
        assert row[2] == [("datetime_storage_overflow", ["when"], OUT_OF_RANGE, json.dumps(value))]


def test_extra_keys_are_listed_in_the_inputs_key_order(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    # populate_by_name: "Label" is used, "label" is extra; "zz" is unknown.
    data = write("rows.csv", "label,Label,amount,zz\nx,y,1,z\n")
    assert ingest(run_cli, db, model, data) == [
        (
            1,
            "invalid",
            [
                ("extra_forbidden", ["label"], "Extra inputs are not permitted", '"x"'),
                ("extra_forbidden", ["zz"], "Extra inputs are not permitted", '"z"'),
            ],
        )
    ]
    json_data = ndjson(write, '{"label": "x", "zz": 3, "Label": "y", "amount": 1}')
    rows = ingest(run_cli, db.with_suffix(".2.duckdb"), model, json_data)
    assert rows == [
        (
            1,
            "invalid",
            [
                ("extra_forbidden", ["label"], "Extra inputs are not permitted", '"x"'),
                ("extra_forbidden", ["zz"], "Extra inputs are not permitted", "3"),
            ],
        )
    ]


def test_json_nan_and_infinity_inputs_are_stored_as_python_writes_them(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    data = ndjson(write, '{"amount": NaN}', '{"amount": -Infinity}')
    assert ingest(run_cli, db, model, data) == [
        (1, "invalid", [("finite_number", ["amount"], "Input should be a finite number", "NaN")]),
        (
            2,
            "invalid",
            [("finite_number", ["amount"], "Input should be a finite number", "-Infinity")],
        ),
    ]


def test_an_int_too_large_names_the_column_type_it_is_stored_in(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    data = write("rows.csv", "amount\n" + "9" * 39 + "\n")
    assert ingest(run_cli, db, model, data) == [
        (
            1,
            "invalid",
            [
                (
                    "int_storage_overflow",
                    ["amount"],
                    "Valid integer, but too large for the DECIMAL(38,0) column it is stored in",
                    json.dumps("9" * 39),
                )
            ],
        )
    ]
    assert query(
        db,
        "SELECT data_type FROM information_schema.columns WHERE table_name = 'payment' AND column_name = 'amount'",
    ) == [("DECIMAL(38,0)",)]


# Found by the second set of independently written models (issue 12).


def _python_verdicts(lines: list[str]) -> list[tuple[int, str, Any]]:
    """What ``model_validate(json.loads(line))`` gives each line of the Payment model, where
    json.loads refuses the line: json_invalid with its message."""
    expected: list[tuple[int, str, Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            json.loads(line)
        except (ValueError, RecursionError) as exc:
            error: tuple[str, list[str], str, str] = (
                "json_invalid",
                [],
                f"Invalid JSON: {exc}",
                json.dumps(line),
            )
            expected.append((number, "invalid", [error]))
        else:
            expected.append((number, "valid", None))
    return expected


def test_json_reads_only_pythons_nan_and_infinity_and_what_python_can_read(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    """DuckDB takes nan/inf in any case, a 5,000-deep nesting and a 4,301-digit int; Python's
    json refuses each (in a field or under a key the model does not know)."""
    lines = [
        '{"amount": 1, "ratio": inf}',
        '{"amount": 1, "ratio": -inf}',
        '{"amount": 1, "ratio": infinity}',
        '{"amount": 1, "ratio": -NaN}',
        '{"amount": 1, "ratio": NAN}',
        '{"amount": 1, "ratio": nan}',
        '{"amount": 1, "Label": "a,nan"}',  # a false alarm: read by Python, valid
        '{"amount": 1, "ratio": NaN}',
        '{"amount": 1, "ratio": -Infinity}',
        '{"amount": 1, "ratio": 2.5}',
        '{"amount": 1, "Label": "x", "other": {"a": inf}}',
        '{"amount": 1, "other": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"amount": 1' + "0" * 4300 + "}",
        '{"amount": 1, "other": 1' + "0" * 4300 + "}",
        '{"amount": 1, "other": ' + "[" * 300 + "]" * 300 + "}",  # deep, but Python reads it
    ]
    # Python's json takes NaN and -Infinity, and a float field allows them (stored as such).
    got = ingest(run_cli, db, model, ndjson(write, *lines))
    expected = _python_verdicts(lines)
    # The last line is read by Python, and has a key the model forbids.
    assert got[-1][:2] == (15, "invalid") and [e[0] for e in got[-1][2]] == ["extra_forbidden"]
    got = got[:-1]
    assert [(n, v) for n, v, _ in got] == [(n, v) for n, v, _ in expected[:-1]]
    assert [n for n, v, _ in got if v == "valid"] == [7, 8, 9, 10]
    assert [g for g in got if g[1] == "invalid"] == [e for e in expected if e[1] == "invalid"]
    ratios = [g[2][4] for g in got if g[0] in (8, 9)]
    assert math.isnan(ratios[0]) and ratios[1] == -math.inf


ENUMS = """
from datetime import date, datetime, time
from enum import Enum

from pydantic import BaseModel, ConfigDict


class Size(Enum):
    S = "s"
    M = "m"

    @classmethod
    def _missing_(cls, value):
        return cls.M if value == "medium" else None


class Shirt(BaseModel):
    size: Size


class Defaults(BaseModel):
    model_config = ConfigDict(validate_default=True)
    n: int
    day: date = "2024-01-01"
    at: time = "08:00"
    stamp: datetime = "2024-01-01T00:00:00Z"


class Unchecked(BaseModel):
    n: int
    day: date = "2024-01-01"
"""


def test_an_enums_own_missing_hook_and_text_defaults_of_temporal_fields(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    models = write("models.py", ENUMS)
    shirts = write("shirts.csv", "size\nmedium\nm\nlarge\n")
    db = tmp_path / "e.duckdb"
    result = run_cli("run", str(shirts), "--db", str(db), "--schema", f"{models}:Shirt")
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT row_number, size FROM shirt ORDER BY 1") == [(1, "m"), (2, "m")]
    assert query(db, "SELECT row_number, errors[1].type FROM ingestion_errors") == [(3, "enum")]
    numbers = write("n.csv", "n\n1\n")
    result = run_cli("run", str(numbers), "--db", str(db), "--schema", f"{models}:Defaults")
    assert result.exit_code == 0, result.output
    assert [tuple(str(v) for v in row) for row in query(db, "FROM defaults")] == [
        ("2", "1", "1", "2024-01-01", "08:00:00", "2024-01-01 00:00:00")
    ]
    result = run_cli("run", str(numbers), "--db", str(db), "--schema", f"{models}:Unchecked")
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT run_id, errors FROM ingestion_errors WHERE run_id = 3") == [
        (
            3,
            [
                {
                    "type": "value_storage_type",
                    "loc": ["day"],
                    "msg": "Valid, but a str value cannot be stored in the DATE column",
                    "input": "null",
                }
            ],
        )
    ]


def test_an_ndjson_file_whose_first_record_is_an_array(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path, model: Path
) -> None:
    """Found by the 30-minute fuzz run: a first line holding a whole JSON array is a record
    (not an object: model_type), not a JSON array file; one that opens an array spread over
    lines still is, and is refused with the format to use."""
    data = ndjson(write, "[1, 2]", '{"amount": 3}')
    assert ingest(run_cli, db, model, data) == [
        (
            1,
            "invalid",
            [
                (
                    "model_type",
                    [],
                    "Input should be a valid dictionary or instance of Payment",
                    "[1, 2]",
                )
            ],
        ),
        (2, "valid", (3, "", None, None, 0.0)),
    ]
    spread = write("spread.ndjson", '[{"amount": 1},\n{"amount": 2}]\n')
    result = run_cli("run", str(spread), "--db", str(db), "--schema", f"{model}:Payment")
    assert result.exit_code == 2
    assert result.output == (
        f"error: {spread}, line 1: looks like a JSON array, not NDJSON (one object per line) "
        "(use --format json)\n"
    )


BOUNDS_MODEL = """
from enum import IntEnum
from pydantic import BaseModel, Field


class Level(IntEnum):
    low = 1
    high = 2


class Reading(BaseModel):
    big: float = Field(0.0, ge=2**53 + 1)
    huge: float = Field(0.0, lt=123456789012345678, multiple_of=2**70)
    level: Level | None = None
"""


def test_float_bounds_and_intenum_sizes_are_shown_as_pydantic_shows_them(
    run_cli: Callable[..., Result], write: Callable[[str, str], Path], db: Path
) -> None:
    """A float field's int bound is a float to pydantic-core, and its message shows the float
    (9007199254740992 for 2**53 + 1); an IntEnum's int_parsing_size input is the parsed int,
    whatever text it came from. Every row's error list equals Pydantic's."""
    model_path = write("reading.py", textwrap.dedent(BOUNDS_MODEL))
    reading = runpy.run_path(str(model_path))["Reading"]
    cells = [
        ("1", "", ""),
        ("9007199254740992", "2", " +0099_999999999999999999 "),
        ("", "1e30", "-99999999999999999999.0"),
        ("", "1180591620717411303424", "9223372036854775808"),
    ]
    data = write("r.csv", "big,huge,level\n" + "".join(",".join(c) + "\n" for c in cells))
    result = run_cli("run", str(data), "--db", str(db), "--schema", f"{model_path}:Reading")
    assert result.exit_code == 0, result.output
    stored: dict[Any, Any] = {
        number: errors
        for number, errors in query(db, "SELECT row_number, errors FROM ingestion_errors")
    }
    for number, row in enumerate(cells, start=1):
        given = {k: v for k, v in zip(("big", "huge", "level"), row, strict=True) if v}
        try:
            reading.model_validate(given)
            expected: list[Any] = []
        except ValidationError as exc:
            expected = [[e["type"], e["loc"][0], e["msg"], e["input"]] for e in exc.errors()]
        got = [
            [e["type"], e["loc"][0], e["msg"], json.loads(e["input"])]
            for e in stored.get(number, [])
        ]
        assert got == expected, number
    assert stored[1][0]["msg"] == "Input should be greater than or equal to 9007199254740992"
    assert json.loads(stored[2][-1]["input"]) == 99999999999999999999
    assert stored[4][0]["msg"] == "Input should be less than 123456789012345680"
