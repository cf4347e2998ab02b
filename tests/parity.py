"""Differential checking: the engine's verdicts against Pydantic's, row by row."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from decimal import Context, Decimal
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ValidationError

from engine.batch import ROW
from engine.sources.csv import CsvSource
from engine.sources.json import JsonSource
from engine.validation.compiler import compile_schema
from engine.validation.error_list import ERRORS, count_error_lists
from engine.validation.fallback import utc_time
from engine.validation.validate import BatchValidator

WIDE = Context(prec=200)


@dataclass
class Mismatch:
    row: int
    given: Any
    expected: Any
    got: Any


@dataclass
class ParityReport:
    rows: int = 0
    valid: int = 0
    python_rows: int = 0
    storage_limited: int = 0  # valid per Pydantic, but an int beyond 38 digits (documented)
    mismatches: list[Mismatch] = field(default_factory=list)


def _storage_limited(expected: tuple[bool, Any], actual: tuple[bool, Any] | None) -> bool:
    """The one documented divergence: an int too large for its column."""
    if actual is None or not expected[0] or actual[0]:
        return False
    values: dict[str, Any] = expected[1]
    for _loc, kind in actual[1]:
        huge = [
            v
            for v in values.values()
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10**38
        ]
        if kind != "int_storage_overflow" or not huge:
            return False
    return True


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    """Rows written by Python's csv module. A row with a carriage return in a cell has every
    cell quoted: with lineterminator="\\n" the writer leaves a "\\r" bare, and a bare "\\r" ends
    a line (for Python's own csv reader, and for the engine)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        quoted = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(columns)
        for row in rows:
            cells = [row.get(c, "") for c in columns]
            (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)


def write_ndjson(path: Path, rows: Sequence[Any]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


# Types taken as they are (most values): checked first, the other checks cannot apply to them.
PLAIN = frozenset({str, int, bool, type(None)})


def _comparable(value: Any) -> Any:
    if type(value) in PLAIN:
        return value
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, time) and value.tzinfo is not None:
        return utc_time(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        if value == value.to_integral_value():
            return int(value)
        return value.normalize(WIDE)
    return value


def expected_outcome(
    model: type[BaseModel], data: Any, context: Mapping[str, Any]
) -> tuple[bool, Any]:
    try:
        instance = model.model_validate(data, context=dict(context))
    except ValidationError as exc:
        return False, sorted((".".join(map(str, e["loc"])), e["type"]) for e in exc.errors())
    return True, {k: _comparable(getattr(instance, k)) for k in type(instance).model_fields}


def _absent(given: Any, key: str, typed: bool) -> bool:
    if not isinstance(given, dict):
        return False
    return key not in given if typed else given.get(key, "") == ""


def check_parity(
    model: type[BaseModel],
    path: Path,
    inputs: Sequence[Any],
    *,
    typed: bool,
    keys: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
    now: datetime | None = None,
    ignore_fields: Sequence[str] = (),
    ignore_when_absent: Sequence[str] = (),
    block_size: int = 1 << 20,
) -> ParityReport:
    """Run ``path`` through the engine; compare each row with ``model.model_validate``."""
    context = dict(context or {})
    schema = compile_schema(model, typed=typed, context=context)
    if typed:
        source: CsvSource | JsonSource = JsonSource(
            path,
            keys=schema.input_keys,
            want_all_keys=schema.extra == "forbid",
            array=False,
            block_size=block_size,
            max_record_bytes=1 << 20,
        )
    else:
        source = CsvSource(path, block_size=block_size, max_record_bytes=1 << 20)
    report = ParityReport()
    moment = now or datetime.now(UTC)
    got: dict[int, tuple[bool, Any]] = {}
    for batch in source.batches():
        validator = BatchValidator(schema, source.keys)
        result = validator.validate(batch, moment)
        report.python_rows += result.python_rows
        # The counts the validator keeps by rule equal those of the error lists it built.
        assert result.error_counts == count_error_lists(result.invalid, ERRORS)
        for row in result.valid.iter_rows(named=True):
            got[row[ROW]] = (True, {k: _comparable(v) for k, v in row.items() if k != ROW})
        for row in result.invalid.iter_rows(named=True):
            got[row[ROW]] = (False, sorted((".".join(e["loc"]), e["type"]) for e in row[ERRORS]))
    for index, given in enumerate(inputs, start=1):
        data = given if typed else {k: v for k, v in given.items() if v != ""}
        expected = expected_outcome(model, data, context)
        actual = got.get(index)
        report.rows += 1
        if expected[0]:
            report.valid += 1
        if actual is not None and expected[0] and actual[0]:
            skip = set(ignore_fields) | {k for k in ignore_when_absent if _absent(given, k, typed)}
            exp = {k: v for k, v in expected[1].items() if k not in skip}
            act = {k: v for k, v in actual[1].items() if k not in skip}
            if exp == act:
                continue
        elif actual == expected:
            continue
        elif _storage_limited(expected, actual):
            report.storage_limited += 1
            continue
        report.mismatches.append(Mismatch(index, given, expected, actual))
    return report
