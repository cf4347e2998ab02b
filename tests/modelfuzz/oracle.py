"""Pydantic's verdict for each record, in the form the engine stores it.

A CSV record is ``model_validate`` of its non-empty cells (an empty cell is absent); an NDJSON
line is ``model_validate(json.loads(line))``, or ``json_invalid`` with Python's message when
``json.loads`` refuses it. Values are normalised the way the README says they are stored:
aware datetimes as UTC, a time with an offset as UTC wall time, enums as their values.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ValidationError

Error = tuple[str, tuple[str, ...], str, Any]  # type, loc, msg, input


@dataclass
class Verdict:
    valid: bool
    values: dict[str, Any]  # stored values, normalised (valid rows)
    errors: list[Error]  # in Pydantic's order (invalid rows)
    data: Any = None  # what model_validate got
    trap: str = ""  # a JSON trap the record holds (to group divergences by cause)


def _plain_type(annotation: Any) -> Any:
    """``int`` for ``Annotated[int, ...] | None`` and the like."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


@dataclass(frozen=True)
class UniqueKey:
    """``__unique__``: the field, the key its errors are reported under (README: the first
    alias, "Duplicate Order ID"), and the keys its value is read from, in Pydantic's order."""

    name: str
    label: str
    keys: tuple[str, ...]


def unique_key(model: type[BaseModel]) -> UniqueKey | None:
    key = getattr(model, "__unique__", None)
    if not key:
        return None
    name = key[0]
    alias = model.model_fields[name].validation_alias
    aliases = list(alias.choices) if isinstance(alias, AliasChoices) else [alias] if alias else []
    keys = [str(a) for a in aliases]
    config = model.model_config
    if not keys or config.get("validate_by_name") or config.get("populate_by_name"):
        keys.append(name)
    return UniqueKey(name, keys[0], tuple(keys))


def int_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every input key of an ``int`` field, to its field name."""
    out = {}
    for name, info in model.model_fields.items():
        if _plain_type(info.annotation) is not int:
            continue
        alias = info.validation_alias
        keys = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
        out.update({str(k): name for k in [*keys, name]})
    return out


def utc_wall(value: time) -> time:
    offset = value.utcoffset() or timedelta(0)
    return (datetime.combine(date(2000, 1, 3), value.replace(tzinfo=None)) - offset).time()


@dataclass(frozen=True)
class OutOfRange:
    """A value Pydantic accepts whose UTC instant Python cannot represent (year 0 or 10000)."""

    text: str


def normalise(value: Any) -> Any:
    """A stored value as the README says it is stored."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return OutOfRange(value.isoformat())
    if isinstance(value, time) and value.tzinfo is not None:
        return utc_wall(value)
    if isinstance(value, UUID):
        return str(value)
    return value


NO_VERDICT = "pydantic raised"  # the trap of a row with no verdict: not compared


def verdict(model: type[BaseModel], data: Any) -> Verdict:
    try:
        instance = model.model_validate(data)
    except ValidationError as exc:
        errors = [
            (e["type"], tuple(str(p) for p in e["loc"]), e["msg"], e["input"])
            for e in exc.errors(include_url=False)
        ]
        return Verdict(False, {}, errors, data)
    except (TypeError, ValueError, ArithmeticError):
        # Pydantic itself fails, e.g. an annotated_types bound comparing a naive datetime
        # with an aware one ("can't compare offset-naive and offset-aware datetimes").
        return Verdict(False, {}, [], data, NO_VERDICT)
    values = {name: normalise(getattr(instance, name)) for name in type(instance).model_fields}
    return Verdict(True, values, [], data)


def csv_verdict(model: type[BaseModel], columns: Sequence[str], record: Sequence[str]) -> Verdict:
    return verdict(model, {c: v for c, v in zip(columns, record, strict=True) if v != ""})


def _has_duplicate_keys(line: str) -> bool:
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in items}) < len(items)
        return dict(items)

    json.loads(line, object_pairs_hook=pairs)
    return found


def ndjson_verdict(model: type[BaseModel], line: str) -> Verdict:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        message = f"Invalid JSON: {exc}"
        return Verdict(False, {}, [("json_invalid", (), message, line)], line, "json_invalid")
    result = verdict(model, data)
    if _has_duplicate_keys(line):
        result.trap = "duplicate keys"
    return result


def same(expected: Any, got: Any) -> bool:
    """Equal as stored values or JSON inputs: NaN equals NaN, -0.0 is not 0.0, True is not 1."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, float):
        if not isinstance(got, float):
            return False
        if math.isnan(expected) or math.isnan(got):
            return math.isnan(expected) and math.isnan(got)
        return expected == got and math.copysign(1, expected) == math.copysign(1, got)
    if isinstance(expected, Decimal) or isinstance(got, Decimal):
        if not isinstance(expected, int | Decimal) or not isinstance(got, int | Decimal):
            return False
        return Decimal(expected) == Decimal(got)
    if isinstance(expected, int):
        return type(got) is int and expected == got
    if isinstance(expected, Mapping):
        return (
            isinstance(got, Mapping)
            and set(expected) == set(got)
            and all(same(expected[k], got[k]) for k in expected)
        )
    if isinstance(expected, list | tuple):
        return (
            isinstance(got, list | tuple)
            and len(expected) == len(got)
            and all(same(a, b) for a, b in zip(expected, got, strict=True))
        )
    return type(expected) is type(got) and bool(expected == got)


def unique_errors(
    verdicts: list[Verdict],
    unique: UniqueKey,
    seen: dict[Any, tuple[int, int]],
    run: int,
    model: type[BaseModel] | None = None,
) -> None:
    """Later valid rows whose key equals an earlier valid row's (README: ``__unique__``). The
    error's input is the key as stored (README), which is what makes the rows duplicates."""
    from tests.modelfuzz.storage import problem  # storage reads this module's types

    for row, v in enumerate(verdicts, start=1):
        if not v.valid:
            continue
        value = v.values[unique.name]
        if model is not None and any(
            problem(info, v.values.get(name)) for name, info in model.model_fields.items()
        ):
            continue  # not stored: a storage error (README), so it claims no key
        if type(value) is int and abs(value) >= 10**38:
            continue
        marker = (type(value).__name__, value)
        if marker in seen:
            first_run, first_row = seen[marker]
            msg = f"Duplicate {unique.label}: first seen in run {first_run}, row {first_row}"
            error = ("duplicate", (unique.label,), msg, value)
            verdicts[row - 1] = Verdict(False, {}, [error], v.data)
        else:
            seen[marker] = (run, row)
