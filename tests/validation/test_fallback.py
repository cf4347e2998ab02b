"""Validators without a vectorized twin: still exact, and only the rows that reach them go
through Pydantic."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.parity import check_parity, write_csv, write_ndjson
from tests.validation.models import Bare, Twinned, Untwinned

CODES = ["ab", "abcdefgh", "", "xyz", "abcdef"]
# Dates valid or absent: an unparseable date would itself be a value left to Pydantic (for
# speedate's exact message), which would blur the count this test is about.
DATES = ["2024-01-01", "2024-06-30", "2024-12-31", ""]
SIZES = ["1", "0", "-1", "x", ""]


def make_rows(count: int, typed: bool) -> list[dict[str, Any]]:
    rng = random.Random(11)
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {
            "code": rng.choice(CODES + ([5, None] if typed else [])),
            "start": rng.choice(DATES),
            "end": rng.choice(DATES),
            "size": rng.choice(SIZES + ([3, 2.5] if typed else [])),
        }
        if typed:
            row = {k: v for k, v in row.items() if v != ""}
        rows.append(row)
    return rows


def reaches_a_validator(row: dict[str, Any]) -> bool:
    """Pydantic runs the field validator when `code` itself is valid, the model validator
    when every field is: which is to say when Bare (no validators) accepts `code`."""
    try:
        Bare.model_validate(row)
    except ValidationError as exc:
        return all(tuple(e["loc"]) != ("code",) for e in exc.errors())
    return True


@pytest.mark.parametrize("typed", [False, True], ids=["csv", "ndjson"])
def test_untwinned_validators_exact_and_counted(tmp_path: Path, typed: bool) -> None:
    rows = make_rows(5000, typed)
    path = tmp_path / ("rows.ndjson" if typed else "rows.csv")
    if typed:
        write_ndjson(path, rows)
    else:
        write_csv(path, ["code", "start", "end", "size"], rows)
    untwinned = check_parity(Untwinned, path, rows, typed=typed)
    twinned = check_parity(Twinned, path, rows, typed=typed)
    assert untwinned.mismatches == []
    assert twinned.mismatches == []
    inputs = rows if typed else [{k: v for k, v in r.items() if v != ""} for r in rows]
    expected = sum(1 for row in inputs if reaches_a_validator(row))
    assert 0 < expected < len(rows)
    assert untwinned.python_rows == expected
    # With twins, the same data needs Pydantic for nothing.
    assert twinned.python_rows == 0
    assert (untwinned.valid, untwinned.rows) == (twinned.valid, twinned.rows)
