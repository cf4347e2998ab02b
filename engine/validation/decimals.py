"""Decimal with max_digits / decimal_places, counted the way Pydantic does (normalized).

Plain decimal strings are handled vectorized; exponents, underscores and non-ASCII digits
(which Python's Decimal also accepts) are left to Pydantic for those rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message, trim
from engine.validation.rules import Parsed, Rule, Unsupported, Value

PLAIN_RE = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
SPECIAL_RE = r"^[+-]?(?i:inf|infinity|s?nan[0-9]*)$"
ASCII_PRINTABLE_RE = r"^[\x21-\x7e]*$"


def decimal_dtype(schema: Mapping[str, Any]) -> pl.Decimal:
    # ``column_*``: the shape Pydantic's own constraint validators give after an AfterValidator
    # (``nodes._column_shape``): for the column only, the checks stay with Pydantic.
    places = schema.get("decimal_places", schema.get("column_decimal_places"))
    if places is None:
        raise Unsupported(
            "a Decimal without decimal_places (no fixed-scale DECIMAL column)",
            "Field(decimal_places=N) on the Decimal, or float",
        )
    digits = schema.get("max_digits", schema.get("column_max_digits")) or 38
    return pl.Decimal(min(int(digits), 38), int(places))


def _digit_counts(number: pl.Expr) -> tuple[tuple[pl.Expr, pl.Expr], tuple[pl.Expr, pl.Expr]]:
    """(digits, decimals) of the Decimal as written and of its normalized form, as
    pydantic-core counts them (``extract_decimal_digits_info``): a limit fails only when both
    exceed it, so ``0.0`` has no whole digit although ``0`` has one."""
    unsigned = number.str.strip_chars_start("+-")
    whole = unsigned.str.split(".").list.get(0, null_on_oob=True).fill_null("")
    fraction = unsigned.str.split(".").list.get(1, null_on_oob=True).fill_null("")
    places = fraction.str.len_chars().cast(pl.Int64)
    significant = (whole + fraction).str.strip_chars_start("0")
    # As written: the coefficient without leading zeros (zero keeps one digit), exponent
    # minus the number of fraction digits.
    coefficient = pl.max_horizontal(significant.str.len_chars().cast(pl.Int64), pl.lit(1))
    written = (
        pl.when(places > 0).then(pl.max_horizontal(coefficient, places)).otherwise(coefficient),
        places,
    )
    trimmed = significant.str.strip_chars_end("0")
    exponent = (significant.str.len_chars() - trimmed.str.len_chars()).cast(pl.Int64) - places
    length = trimmed.str.len_chars().cast(pl.Int64)
    zero = trimmed == ""
    decimals = pl.when(zero | (exponent >= 0)).then(0).otherwise(-exponent)
    digits = (
        pl.when(zero)
        .then(1)
        .when(exponent >= 0)
        .then(length + exponent)
        .otherwise(pl.max_horizontal(length, -exponent))
    )
    return written, (digits, decimals)


def _bounds(number: pl.Expr, schema: Mapping[str, Any]) -> list[Rule]:
    """multiple_of, le, lt, ge, gt after the digit checks, in exact decimal arithmetic."""
    rules: list[Rule] = []
    multiple_of = schema.get("multiple_of")
    if multiple_of is not None:
        fails = (number % pl.lit(Decimal(multiple_of))) != 0
        rules.append(
            Rule(
                "multiple_of",
                fails,
                message("multiple_of", {"multiple_of": multiple_of}),
                describe=f"multiple of {multiple_of}",
            )
        )
    for key, error_type in (
        ("le", "less_than_equal"),
        ("lt", "less_than"),
        ("ge", "greater_than_equal"),
        ("gt", "greater_than"),
    ):
        bound = schema.get(key)
        if bound is None:
            continue
        limit = pl.lit(Decimal(bound))
        ok = {
            "le": number <= limit,
            "lt": number < limit,
            "ge": number >= limit,
            "gt": number > limit,
        }[key]
        rules.append(
            Rule(error_type, ~ok, message(error_type, {key: bound}), describe=f"{key} {bound}")
        )
    return rules


def parse_decimal(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    dtype = decimal_dtype(schema)
    t = trim(value.text)
    plain = t.str.contains(PLAIN_RE)
    special = t.str.contains(SPECIAL_RE)
    printable = t.str.contains(ASCII_PRINTABLE_RE) & ~t.str.contains("[_eE]")
    unsure = ~plain & ~special & ~printable
    exponent_float = pl.lit(False)
    if value.kind is None:
        is_text = pl.lit(True)
        rules = [
            Rule(
                "decimal_parsing",
                ~plain & ~special & printable,
                message("decimal_parsing"),
                describe="parse as decimal",
            )
        ]
    else:
        is_text = value.is_str
        number_kind = value.is_kind(Kind.INT, Kind.FLOAT)
        exponent_float = number_kind & value.text.str.contains("[eEI]|NaN")
        plain = pl.when(number_kind).then(~exponent_float).otherwise(plain)
        t = pl.when(number_kind).then(value.text).otherwise(t)
        rules = [
            Rule(
                "decimal_type",
                value.is_kind(Kind.NULL, Kind.OBJECT, Kind.ARRAY, Kind.BOOL),
                message("decimal_type"),
                describe="JSON number or string",
            ),
            Rule(
                "decimal_parsing",
                is_text & ~plain & ~special & printable,
                message("decimal_parsing"),
                describe="parse as decimal",
            ),
        ]
    allow_inf_nan = schema.get("allow_inf_nan", config.get("allow_inf_nan", False))
    if not allow_inf_nan:
        rules.append(
            Rule("finite_number", is_text & special, message("finite_number"), describe="finite")
        )
    (digits, decimals), (n_digits, n_decimals) = _digit_counts(t)
    max_digits = schema.get("max_digits")
    places = schema.get("decimal_places")
    if max_digits is not None:
        rules.append(
            Rule(
                "decimal_max_digits",
                (digits > max_digits) & (n_digits > max_digits),
                message("decimal_max_digits", {"max_digits": max_digits}),
                describe=f"max_digits {max_digits}",
            )
        )
    if places is not None:
        rules.append(
            Rule(
                "decimal_max_places",
                (decimals > places) & (n_decimals > places),
                message("decimal_max_places", {"decimal_places": places}),
                describe=f"decimal_places {places}",
            )
        )
        if max_digits is not None:
            whole = max_digits - places
            rules.append(
                Rule(
                    "decimal_whole_digits",
                    (digits - decimals > whole) & (n_digits - n_decimals > whole),
                    message("decimal_whole_digits", {"whole_digits": whole}),
                    describe=f"at most {whole} whole digits",
                )
            )
    parsed = pl.when(plain).then(t.str.strip_chars_start("+").cast(dtype, strict=False))
    rules.extend(_bounds(parsed, schema))
    # A plain decimal too wide for the column (beyond 38 digits, or more places than it
    # keeps) is Pydantic's to decide, and then a storage error: never a silent null.
    too_wide = plain.fill_null(False) & parsed.is_null()
    python = (is_text & unsure) | exponent_float | too_wide
    return Parsed(
        value=parsed,
        rules=tuple(rules),
        dtype=dtype,
        steps=("trim, parse plain decimal; exponents by Pydantic",),
        python=python,
    )
