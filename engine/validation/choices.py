"""Literal and Enum: a value must be one of a fixed set (lax matching, like Pydantic)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import polars as pl
from pydantic_core import SchemaValidator, ValidationError

from engine.batch import Kind
from engine.validation.common import message
from engine.validation.numbers import parse_int
from engine.validation.rules import Parsed, Rule, Unsupported, Value


def sentinel_message(schema: Mapping[str, Any]) -> str:
    """The message pydantic-core gives for a choice error, got by asking it directly."""
    try:
        SchemaValidator(dict(schema)).validate_python(object())
    except ValidationError as exc:
        return str(exc.errors()[0]["msg"])
    raise AssertionError("a sentinel object validated")  # pragma: no cover


def int_size_message() -> str:
    return message("int_parsing_size")


def _numeric(value: Value) -> pl.Expr:
    """A JSON number or bool as a float (True is 1), null for anything else."""
    number = value.text.cast(pl.Float64, strict=False)
    return (
        pl.when(value.is_kind(Kind.BOOL))
        .then((value.text == "true").cast(pl.Float64))
        .when(value.is_kind(Kind.INT, Kind.FLOAT))
        .then(number)
    )


def _int_too_big(value: Value) -> pl.Expr:
    """A JSON int beyond 64 bits, which pydantic-core cannot look up."""
    if value.kind is None:
        return pl.lit(False)
    return value.is_kind(Kind.INT) & value.text.cast(pl.Int64, strict=False).is_null()


def _equal_number(value: Value, expected: list[Any]) -> tuple[pl.Expr, pl.Expr]:
    """(rows whose value equals one of ``expected`` as Python's ``==`` sees it -- 2.0 and True
    equal 2 and 1 --, the value as a number); a CSV cell is a string, never equal to one."""
    if value.kind is None:
        return pl.lit(False), pl.lit(None, pl.Float64)
    number = _numeric(value)
    return number.is_in([float(c) for c in expected]).fill_null(False), number


def parse_literal(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    """str choices match strings exactly; int and bool choices match equal numbers (1, 1.0, True)."""
    expected = list(schema["expected"])
    if any(isinstance(c, Enum) or c is None for c in expected):
        raise Unsupported("Literal with enum members or None", "Literal of str, int or bool values")
    kinds = {bool if isinstance(c, bool) else type(c) for c in expected}
    if kinds == {str}:
        matched = value.is_str & value.text.is_in(expected)
        typed: pl.Expr = value.text
        dtype: pl.DataType = pl.String()
    elif kinds in ({int}, {bool}):
        matched, number = _equal_number(value, expected)
        typed = number.cast(pl.Int64, strict=False) if kinds == {int} else number == 1.0
        dtype = pl.Int64() if kinds == {int} else pl.Boolean()
    else:
        raise Unsupported(
            f"Literal mixing {sorted(k.__name__ for k in kinds)} values",
            "a Literal whose values are all str, all int or all bool",
        )
    rules = [
        Rule("literal_error", ~matched, sentinel_message(schema), describe=f"one of {expected!r}")
    ]
    if kinds == {int}:
        rules.insert(
            0,
            Rule(
                "int_parsing_size", _int_too_big(value), int_size_message(), describe="fits 64 bits"
            ),
        )
    return Parsed(value=typed, rules=tuple(rules), dtype=dtype, steps=("exact match",))


def _own_missing(cls: Any) -> Any:
    """The enum class's own ``_missing_`` hook, if it defines one (None for Enum's)."""
    hook = getattr(cls, "_missing_", None)
    default = getattr(Enum._missing_, "__func__", None)
    if hook is None or getattr(hook, "__func__", None) is default:
        return None
    return hook


def parse_enum(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    """Stores the member's value: str enums match strings exactly, int enums parse an int first."""
    members: list[Enum] = list(schema["members"])
    values = [m.value for m in members]
    sub_type = schema.get("sub_type")
    message = sentinel_message(schema)
    describe = f"one of {values!r}"
    # A custom _missing_ hook may still turn an unmatched value into a member: Pydantic decides.
    # pydantic-core calls the class on an unmatched value, which runs a ``_missing_`` the
    # class defines (not in the core schema: found on the class).
    missing_hook = schema.get("missing") or _own_missing(schema.get("cls"))
    if sub_type == "str" or (sub_type is None and all(isinstance(v, str) for v in values)):
        matched = value.is_str & value.text.is_in(values)
        missing = None if missing_hook is None else (~value.absent & ~matched)
        return Parsed(
            value=value.text,
            rules=(Rule("enum", ~matched, message, describe=describe),),
            dtype=pl.String(),
            steps=("match a value",),
            python=missing,
        )
    if sub_type is None and all(type(v) is int for v in values):
        # A plain Enum of ints looks a value up by equality, with no parsing ('2' never matches).
        matched, equal = _equal_number(value, values)
        missing = None if missing_hook is None else (~value.absent & ~matched)
        beyond = _int_too_big(value)
        return Parsed(
            value=equal.cast(pl.Int64, strict=False),
            rules=(
                Rule("int_parsing_size", beyond, int_size_message(), describe="fits 64 bits"),
                Rule("enum", ~matched, message, describe=describe),
            ),
            dtype=pl.Int64(),
            steps=("match a value by equality (a plain Enum: no parsing)",),
            python=missing,
        )
    if sub_type == "int":
        number = parse_int(value, {}, config)
        matched = number.value.is_in(values).fill_null(False)
        steps = ("parse as int (lax)", "match a value")
        # Anything that is not a member is an `enum` error, except ints beyond 64 bits, which
        # pydantic-core cannot even look up (an int from a JSON float never gets that far).
        outside = (number.value < -(2**63)) | (number.value >= 2**63)
        too_big = number.value.is_not_null() & outside & ~value.is_kind(Kind.FLOAT)
        # Its input is the parsed int, whatever text it came from ('+0099_...' shows as 99...).
        rules: tuple[Rule, ...] = (
            Rule(
                "int_parsing_size",
                too_big,
                int_size_message(),
                input=number.value.cast(pl.String),
                describe="fits 64 bits",
            ),
        )
        rule = Rule("enum", ~matched, message, describe=describe)
        rules = (*rules, rule)
        typed = number.value.cast(pl.Int64, strict=False)
        missing = None if missing_hook is None else (~value.absent & ~matched)
        python = number.python if missing is None else _either(number.python, missing)
        return Parsed(
            value=typed,
            rules=rules,
            dtype=pl.Int64(),
            steps=steps,
            python=python,
            helpers=number.helpers,
        )
    raise Unsupported(
        f"Enum {schema['cls'].__name__} with values of mixed or non str/int types",
        "an Enum whose values are all str or all int",
    )


def _either(a: pl.Expr | None, b: pl.Expr) -> pl.Expr:
    return b if a is None else (a | b)
