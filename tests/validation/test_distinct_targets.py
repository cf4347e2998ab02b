"""Hand-picked texts for the parsers the distinct-input path runs once per value (decimals
near their digit limits and the fast form, ints from float texts, datetimes that do not start
with a digit, UUID forms), each repeated and shuffled, read by ``cli.py run`` in small
batches that take that path; every row against Pydantic (``tests.modelfuzz.fuzz.check``:
verdict, stored value, ordered error list), CSV and NDJSON (as strings, plus JSON numbers)."""

from __future__ import annotations

import json
from pathlib import Path
from random import Random
from typing import Any

import pytest

from tests.modelfuzz.fuzz import Case, check
from tests.modelfuzz.repeated import Taken, small_batches

HEADER = """
import datetime
from decimal import Decimal
from uuid import UUID
from pydantic import UUID4, AwareDatetime, BaseModel, ConfigDict, Field
"""

DECIMALS = [
    *["0.10", "-0", "00.5", "1_0.5", "1e2", " 1.5", "1.5 ", "\u0661\u0662", "\uff11\uff12"],
    *["NaN", "-inf", "inf", "+1.5", "-.5", ".5", "5.", "+.5", "-0.00", "0000000.1", "12.34"],
    *["123.45", "99.99", "999.9", "1234", "12.345", "1.2300", "0.001", "-99.99", "1E1", "0e5"],
    *["00", "+0", "12.3400000", "\uff11.\uff15", "1.5\u00a0", "\u20081.5", "1,5", "-", "."],
]
NUMBERS_JSON: list[Any] = [0.1, 1.0, 12.345, 1e2, -0.0, 100, 99.99, 1e-7, 1e20, True, None]
INTS = [
    *["1.0", "1e0", "1.", "01", "+1", "-0", " 1", "1 ", "1_000", "\uff11\uff12", "1.5"],
    *["10.00", "-1.0", "0x10", "9223372036854775807", "9223372036854775808", "1e3", ""],
    *["2.0000000000000001", "abc", "NaN", "inf", "\u00a01", "00000000000000000000001"],
]
INTS_JSON: list[Any] = [1.0, 1e0, 2.5, True, False, None, 10**20, -0.0, 1e308, [1], {"a": 1}]
DATETIMES = [
    *["T10:00", "+2024-01-01", "  2024-01-01T00:00Z", "\u00a02024-01-01T00:00Z", "now"],
    *["\u20032024-01-01", "\uff12\uff10\uff12\uff14-01-01", "-1700000000", "+1700000000"],
    *[" 1700000000", ".5", "-1", "-2024-01-01T00:00", "infinity", "\t2024-01-01", "-1e3"],
    *["-20000000001", "2024-01-01T00:00:00Z", "2024-01-01t00:00:00z", "1700000000", "-1.5"],
]
DATETIMES_JSON: list[Any] = [1700000000, -1, 1.7e9, 1700000000.5, True, None, 1e20]
UUID_TEXT = "12345678-1234-5678-1234-567812345678"
UUIDS = [
    *[UUID_TEXT, UUID_TEXT.upper(), UUID_TEXT.title(), "{" + UUID_TEXT + "}"],
    *["urn:uuid:" + UUID_TEXT, "URN:UUID:" + UUID_TEXT, UUID_TEXT.replace("-", "")],
    *[" " + UUID_TEXT, "12345678-1234-4678-9234-567812345678".upper(), "x", UUID_TEXT + "9"],
    *["{" + UUID_TEXT.replace("-", "") + "}", "1234-5678-1234-5678-1234-5678-1234-5678"],
]
TARGETS: list[tuple[str, list[str], list[Any]]] = [
    ("x: Decimal = Field(max_digits=4, decimal_places=2)", DECIMALS, NUMBERS_JSON),
    ("x: Decimal = Field(max_digits=3, decimal_places=0, ge=0)", DECIMALS, NUMBERS_JSON),
    ("x: Decimal = Field(max_digits=2, decimal_places=2)", DECIMALS, NUMBERS_JSON),
    ("x: Decimal | None = Field(None, max_digits=5, decimal_places=2, gt=-1)", DECIMALS, []),
    ("x: int = Field(ge=0, le=100)", INTS, INTS_JSON),
    ("x: int | None = None", INTS, INTS_JSON),
    ("x: datetime.datetime", DATETIMES, DATETIMES_JSON),
    ("x: AwareDatetime | None = None", DATETIMES, DATETIMES_JSON),
    ("x: datetime.date", DATETIMES, DATETIMES_JSON),
    ("x: UUID", UUIDS, [1, None, True]),
    ("x: UUID4", UUIDS, []),
]


def _repeated(values: list[Any], rng: Random) -> list[Any]:
    out = [v for v in values for _ in range(rng.randint(6, 16))]
    rng.shuffle(out)
    return out


@pytest.mark.parametrize("field", [t[0] for t in TARGETS])
def test_targeted_texts_in_repeating_batches_agree_with_pydantic(
    field: str, tmp_path: Path
) -> None:
    texts, typed = next((t[1], t[2]) for t in TARGETS if t[0] == field)
    for strip in (False, True):
        rng = Random(f"{field} {strip}")
        config = "    model_config = ConfigDict(str_strip_whitespace=True)\n" if strip else ""
        source = f"{HEADER}\n\nclass Fuzzed(BaseModel):\n{config}    {field}\n"
        records = [[text] for text in _repeated(texts, rng)]
        lines = [json.dumps({"x": v}) for v in _repeated([*texts, *typed], rng)]
        taken = Taken()
        with small_batches(4096, taken):
            found = check(Case(source, ["x"], records, lines), tmp_path / str(strip))
        assert not found, "\n".join(d.render() for d in found[:5])
        assert taken.used >= 2, taken  # CSV and NDJSON batches did take the path
