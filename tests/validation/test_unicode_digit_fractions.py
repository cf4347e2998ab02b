"""A second fraction written with non-ASCII digits (Arabic-Indic U+0661, full-width U+FF15) is
not a fraction to Pydantic: ``datetime`` and ``time`` refuse it. Found by hand-targeting the
temporal parsers while testing the distinct-input path; it is not that path's doing (one row
is enough): the general ISO datetime parse and the time parse match with ``\\d``, which is
Unicode in Polars' regex, and then read the fraction as nothing.

Through the real CLI into DuckDB: each row must be invalid with Pydantic's exact error list
(before the fix a datetime was stored without its fraction, a time stored as NULL)."""

from __future__ import annotations

import datetime
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pydantic import BaseModel, ValidationError

from tests.conftest import query

MODEL = """
import datetime
from pydantic import BaseModel


class Clocked(BaseModel):
    moment: datetime.datetime | None = None
    clock: datetime.time | None = None
"""


class Clocked(BaseModel):
    moment: datetime.datetime | None = None
    clock: datetime.time | None = None


DATETIME_EXTRA = (
    "Input should be a valid datetime or date, unexpected extra characters at the end of the input"
)
CASES: list[tuple[str, str, list[tuple[str, list[str], str, Any]]]] = [
    (
        "moment",
        "2024-01-01T00:00:00.12\u0663",
        [
            (
                "datetime_from_date_parsing",
                ["moment"],
                DATETIME_EXTRA,
                "2024-01-01T00:00:00.12\u0663",
            )
        ],
    ),
    (
        "moment",
        "2024-01-01 00:00:00.\u0661",
        [("datetime_from_date_parsing", ["moment"], DATETIME_EXTRA, "2024-01-01 00:00:00.\u0661")],
    ),
    (
        "moment",
        "2024-01-01T00:00:00.\u0661Z",
        [("datetime_from_date_parsing", ["moment"], DATETIME_EXTRA, "2024-01-01T00:00:00.\u0661Z")],
    ),
    (
        "moment",
        "2024-01-01T00:00:00.\uff15",
        [("datetime_from_date_parsing", ["moment"], DATETIME_EXTRA, "2024-01-01T00:00:00.\uff15")],
    ),
    (
        "clock",
        "12:00:00.\u0661",
        [
            (
                "time_parsing",
                ["clock"],
                "Input should be in a valid time format, second fraction digits missing after `.`",
                "12:00:00.\u0661",
            )
        ],
    ),
    (
        "clock",
        "12:00:00.12\u0663",
        [
            (
                "time_parsing",
                ["clock"],
                "Input should be in a valid time format, invalid timezone sign",
                "12:00:00.12\u0663",
            )
        ],
    ),
    (
        "clock",
        "12:00:00.\uff15",
        [
            (
                "time_parsing",
                ["clock"],
                "Input should be in a valid time format, second fraction digits missing after `.`",
                "12:00:00.\uff15",
            )
        ],
    ),
]


def _pydantic(field: str, text: str) -> list[tuple[str, list[str], str, Any]]:
    try:
        Clocked.model_validate({field: text})
    except ValidationError as exc:
        return [
            (e["type"], [str(part) for part in e["loc"]], e["msg"], e["input"])
            for e in exc.errors()
        ]
    return []


def test_the_expected_errors_are_pydantic_s() -> None:
    for field, text, expected in CASES:
        assert _pydantic(field, text) == expected


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_non_ascii_digit_fractions_are_refused_as_pydantic_refuses_them(
    run_cli: Callable[..., Result],
    write: Callable[[str, str], Path],
    db: Path,
    tmp_path: Path,
    fmt: str,
) -> None:
    model = tmp_path / "clocked.py"
    model.write_text(textwrap.dedent(MODEL), encoding="utf-8")
    if fmt == "csv":
        lines = ["moment,clock"] + [
            (f"{text}," if field == "moment" else f",{text}") for field, text, _ in CASES
        ]
    else:
        lines = [json.dumps({field: text}) for field, text, _ in CASES]
    data = write(f"rows.{fmt}", "".join(f"{line}\n" for line in lines))
    result = run_cli("run", str(data), "--db", str(db), "--schema", f"{model}:Clocked")
    assert result.exit_code == 0, result.output
    stored = query(db, "SELECT row_number, moment, clock FROM clocked ORDER BY row_number")
    invalid = query(db, "SELECT row_number, errors FROM ingestion_errors ORDER BY row_number")
    assert stored == []
    got = [
        (number, [(e["type"], e["loc"], e["msg"], json.loads(e["input"])) for e in errors])  # type: ignore[attr-defined]
        for number, errors in invalid
    ]
    assert got == [(n, expected) for n, (_, _, expected) in enumerate(CASES, start=1)]
