"""strict=True (per field or model): Pydantic's strict *Python* mode, which is what
``model_validate(row)`` applies to the strings of a CSV and the values of a JSON object.

Only exact types pass: a JSON int for ``int``, an int or float for ``float``, a bool for
``bool``; dates, times, Decimals, UUIDs and enum members never arrive as such from a file, so
every present value of those fails with Pydantic's type error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message
from engine.validation.rules import Parsed, Rule, Value

Parser = Callable[[Value, Mapping[str, Any], Mapping[str, Any]], Parsed]

ACCEPTED = {
    "int": ((Kind.INT,), "int_type"),
    "float": ((Kind.INT, Kind.FLOAT), "float_type"),
    "bool": ((Kind.BOOL,), "bool_type"),
    "str": ((Kind.STR,), "string_type"),
}
NEVER = {"date": "date_type", "datetime": "datetime_type", "time": "time_type"}
INSTANCE_OF = {"decimal": "Decimal", "uuid": "UUID"}


def strict_parse(
    kind: str, parser: Parser, value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]
) -> Parsed:
    lax = parser(value, schema, config)
    present = ~value.absent
    if kind in ACCEPTED:
        kinds, error_type = ACCEPTED[kind]
        wrong = present & ~value.is_kind(*kinds)
        rule = Rule(
            error_type,
            wrong,
            message(error_type),
            describe=f"strict: JSON {'/'.join(k.name.lower() for k in kinds)} only",
        )
        return dataclasses.replace(lax, rules=(rule, *lax.rules), steps=("strict", *lax.steps))
    if kind in NEVER:
        rule = Rule(
            NEVER[kind],
            present,
            message(NEVER[kind]),
            describe="strict: only datetime objects pass",
        )
    elif kind in INSTANCE_OF or kind == "enum":
        name = INSTANCE_OF.get(kind) or schema["cls"].__name__
        rule = Rule(
            "is_instance_of",
            present,
            message("is_instance_of", {"class": name}),
            describe=f"strict: only {name} instances pass",
        )
    else:
        return lax
    return Parsed(
        value=pl.lit(None, lax.dtype),
        rules=(rule,),
        dtype=lax.dtype,
        steps=("strict: every file value fails",),
        sql_type=lax.sql_type,
    )
