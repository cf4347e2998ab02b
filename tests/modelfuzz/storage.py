"""The README's storage errors, as the fuzzer reads them: which values Pydantic accepts that a
column cannot hold, and exactly what the engine reports instead ("Known, deliberate
differences"). Worked out from the model's annotations and the README's column rules, not
from the engine's code.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from decimal import Decimal, localcontext
from typing import Any

import annotated_types
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from tests.modelfuzz.oracle import Error, OutOfRange, Verdict, _plain_type, same

MESSAGES = {
    "int_storage_overflow": "Valid integer, but too large for the {column} column it is stored in",
    "datetime_storage_overflow": (
        "Valid datetime, but in UTC it falls outside years 1-9999, which the {column} column it "
        "is stored in cannot give back"
    ),
    "string_storage_surrogate": (
        "Valid string, but it holds a lone surrogate, which the {column} column (UTF-8) cannot "
        "store"
    ),
    "decimal_storage_overflow": (
        "Valid decimal, but it does not fit the {column} column it is stored in"
    ),
}
INT64 = range(-(2**63), 2**63)


def _constraints(info: FieldInfo) -> list[Any]:
    """The field's constraints: on the Field, and inside ``Annotated[...]`` (under ``| None``)."""
    found = list(info.metadata)
    pending = [info.annotation]
    while pending:
        annotation = pending.pop()
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            base, *extra = typing.get_args(annotation)
            for item in extra:
                found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
            pending.append(base)
        elif origin in (typing.Union, types.UnionType):
            pending.extend(typing.get_args(annotation))
    return found


def _bounds(info: FieldInfo) -> tuple[Any, Any]:
    low = high = None
    for item in _constraints(info):
        if isinstance(item, annotated_types.Ge | annotated_types.Gt):
            low = item.ge if isinstance(item, annotated_types.Ge) else item.gt
        if isinstance(item, annotated_types.Le | annotated_types.Lt):
            high = item.le if isinstance(item, annotated_types.Le) else item.lt
    return low, high


def _decimal_shape(info: FieldInfo) -> tuple[int, int]:
    digits = places = None
    for item in _constraints(info):
        digits = getattr(item, "max_digits", None) or digits
        found = getattr(item, "decimal_places", None)
        places = found if found is not None else places
    return min(digits or 38, 38), places or 0


def column(info: FieldInfo) -> str:
    """The DuckDB column type the README gives the field."""
    kind = _plain_type(info.annotation)
    if kind is int:
        low, high = _bounds(info)
        if low is not None and high is not None and low in INT64 and high in INT64:
            return "BIGINT"
        return "DECIMAL(38,0)"
    if kind is Decimal:
        digits, places = _decimal_shape(info)
        return f"DECIMAL({digits},{places})"
    if kind is str:
        return "VARCHAR"
    return "TIMESTAMP"


def problem(info: FieldInfo, value: Any) -> str | None:
    """The storage error a valid value gets, or None when its column holds it."""
    if isinstance(value, OutOfRange):
        return "datetime_storage_overflow"
    if isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        return "string_storage_surrogate"
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and _plain_type(info.annotation) is int:
        wide = column(info) == "DECIMAL(38,0)"
        fits = abs(value) < 10**38 if wide else value in INT64
        return None if fits else "int_storage_overflow"
    if isinstance(value, Decimal) and value.is_finite():
        digits, places = _decimal_shape(info)
        # trailing zeros do not count: the column holds 0.110 as 0.11
        with localcontext(prec=100):
            fits = value == value.quantize(Decimal(10) ** -places)
        return (
            None
            if fits and abs(value) < Decimal(10) ** (digits - places)
            else ("decimal_storage_overflow")
        )
    return None


def _keys(model: type[BaseModel], name: str) -> list[str]:
    info = model.model_fields[name]
    alias = info.validation_alias
    keys = (
        [str(a) for a in (alias.choices if isinstance(alias, AliasChoices) else [alias])]
        if alias
        else []
    )
    config = model.model_config
    if not keys or config.get("validate_by_name") or config.get("populate_by_name"):
        keys.append(name)
    return keys


def expected_errors(model: type[BaseModel], verdict: Verdict) -> list[Error]:
    """What the engine reports for a valid row holding unstorable values: one error per such
    field, in field order, under the key used (the first when absent), with the input as given."""
    data = verdict.data if isinstance(verdict.data, dict) else {}
    errors: list[Error] = []
    for name, info in model.model_fields.items():
        kind = problem(info, verdict.values.get(name))
        if kind is None:
            continue
        keys = _keys(model, name)
        key = next((k for k in keys if k in data), keys[0])
        loc = key if model.model_config.get("loc_by_alias", True) else name
        errors.append((kind, (loc,), MESSAGES[kind].format(column=column(info)), data.get(key)))
    return errors


def storage_limited(model: type[BaseModel], expected: Verdict, got: Sequence[Error]) -> bool:
    """A row Pydantic accepts, reported with exactly the README's storage errors."""
    if not expected.valid or not got:
        return False
    want = expected_errors(model, expected)
    return len(want) == len(got) and all(
        w[0] == g[0] and tuple(w[1]) == tuple(g[1]) and w[2] == g[2] and same(w[3], g[3])
        for w, g in zip(want, got, strict=True)
    )
