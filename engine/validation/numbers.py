"""int, float and Decimal in Pydantic's lax mode, and their numeric constraints.

The grammars are pydantic-core's: strings are trimmed (Unicode whitespace), then parsed with
Rust's number grammar; if that fails and the string has underscores only *between*
characters, they are removed and the parse retried (so ``"1_000"`` is 1000 but ``"_1"`` fails).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from engine.batch import Kind
from engine.validation.common import context_number, message, nan_safe, trim
from engine.validation.int_grammar import JSON_INT, cleaned_int_text
from engine.validation.rules import Helper, Parsed, Rule, Value

FLOAT_RE = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
HUGE_DIGITS = 38  # a Decimal(38, 0) column holds every int of up to 38 digits


def _underscore_free(t: pl.Expr) -> pl.Expr:
    """Underscores removed when Python-style separators (none leading, trailing or doubled)."""
    allowed = (
        t.str.contains("_", literal=True)
        & ~t.str.starts_with("_")
        & ~t.str.ends_with("_")
        & ~t.str.contains("__", literal=True)
    )
    return pl.when(allowed).then(t.str.replace_all("_", "", literal=True))


def _plain_failed(plain: Helper, value: Value) -> pl.Expr:
    """Rows whose text the plain parse rejected: the only ones where the underscore-free
    retry can matter (elsewhere it is null, or unused). Cheap: two validity masks."""
    return pl.col(plain.name).is_null() & value.text.is_not_null()


def _int_text(value: Value) -> tuple[pl.Expr, tuple[Helper, ...]]:
    """The integer text pydantic-core would parse (``int_grammar``), or null if none: the text
    as it is when it is a JSON integer, else its cleaned form, computed only on those rows."""
    exact = Helper(
        value.helper("int_exact"), pl.when(value.text.str.contains(JSON_INT)).then(value.text)
    )
    cleaned = Helper.staged(
        value.helper("int_cleaned"),
        cleaned_int_text(value.text),
        value.text,
        rows=_plain_failed(exact, value),
    )
    return pl.coalesce(pl.col(exact.name), pl.col(cleaned.name)), (exact, cleaned)


def _float_text(value: Value) -> tuple[pl.Expr, tuple[Helper, ...]]:
    """The value as a float where Rust's grammar accepts it (trimmed, maybe without
    underscore separators), else null.

    Polars' string-to-float cast accepts exactly Rust's grammar (checked against FLOAT_RE on
    ~190k generated strings and by the parity suite), so no regex is needed here."""
    # Most values need no trimming: cast as is (the cast rejects any whitespace), and retry
    # trimmed, then without underscores, only on the rows that failed.
    plain = Helper(value.helper("float_plain"), value.text.cast(pl.Float64, strict=False))
    # pydantic-core retries without underscores on the *untrimmed* text (" 1_000" fails).
    retried = Helper(
        value.helper("float_retried"),
        pl.coalesce(
            trim(value.text).cast(pl.Float64, strict=False),
            _underscore_free(value.text).cast(pl.Float64, strict=False),
        ),
        rows=_plain_failed(plain, value),
    )
    return pl.coalesce(pl.col(plain.name), pl.col(retried.name)), (plain, retried)


def parse_float(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    from_text, helpers = _float_text(value)
    if value.kind is None:
        number_expr = from_text
    else:
        number_expr = (
            pl.when(value.is_kind(Kind.INT, Kind.FLOAT))
            .then(value.text.cast(pl.Float64, strict=False))
            .when(value.is_kind(Kind.BOOL))
            .then((value.text == "true").cast(pl.Float64))
            .when(value.is_str)
            .then(from_text)
        )
    parsed = Helper(value.helper("float"), number_expr)
    number = pl.col(parsed.name)
    if value.kind is None:
        rules = [
            Rule(
                "float_parsing",
                number.is_null(),
                message("float_parsing"),
                describe="parse text as float",
            )
        ]
    else:
        wrong_type = value.is_kind(Kind.NULL, Kind.OBJECT, Kind.ARRAY) | (
            value.is_kind(Kind.INT) & number.is_infinite()
        )
        rules = [
            Rule(
                "float_type",
                wrong_type,
                message("float_type"),
                describe="JSON number, bool or numeric string",
            ),
            Rule(
                "float_parsing",
                value.is_str & number.is_null(),
                message("float_parsing"),
                describe="parse string as float",
            ),
        ]
    allow_inf_nan = schema.get("allow_inf_nan", config.get("allow_inf_nan", True))
    if not allow_inf_nan:
        rules.append(
            Rule("finite_number", ~number.is_finite(), message("finite_number"), describe="finite")
        )
    rules.extend(_bounds(number, schema, float_mod=True))
    steps = ("trim, parse float (Rust grammar, _ separators)",)
    return Parsed(
        value=number,
        rules=tuple(rules),
        dtype=pl.Float64(),
        steps=steps,
        helpers=(*helpers, parsed),
    )


def int_dtype(schema: Mapping[str, Any]) -> pl.DataType:
    """Int64 when the constraints keep values in 64 bits, else a 38-digit decimal (HUGEINT)."""
    low = schema.get("ge", schema.get("gt"))
    high = schema.get("le", schema.get("lt"))
    if low is not None and high is not None and low >= INT64_MIN and high <= INT64_MAX:
        return pl.Int64()
    return pl.Decimal(HUGE_DIGITS, 0)


def parse_int(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    """Parsed and checked as a 38-digit decimal (exact), stored as ``int_dtype(schema)``."""
    dtype = int_dtype(schema)
    wide = pl.Decimal(HUGE_DIGITS, 0)
    digits, helpers = _int_text(value)
    parsed_text = Helper(value.helper("int_wide"), digits.cast(wide, strict=False))
    from_text = pl.col(parsed_text.name)
    rules: list[Rule] = []
    if value.kind is None:
        number = from_text
        overflow = digits.is_not_null() & from_text.is_null()
        rules += [
            Rule(
                "int_parsing",
                digits.is_null(),
                message("int_parsing"),
                describe="parse text as int",
            ),
        ]
    else:
        as_float = value.text.cast(pl.Float64, strict=False)
        is_float = value.is_kind(Kind.FLOAT)
        whole = as_float.is_finite() & (as_float.floor() == as_float)
        in_range = (as_float > INT64_MIN) & (as_float < INT64_MAX)
        from_int = value.text.cast(wide, strict=False)
        number = (
            pl.when(value.is_kind(Kind.INT))
            .then(from_int)
            .when(is_float & whole & in_range)
            .then(as_float.cast(pl.Int64, strict=False).cast(wide))
            .when(value.is_kind(Kind.BOOL))
            .then((value.text == "true").cast(pl.Int64).cast(wide))
            .when(value.is_str)
            .then(from_text)
        )
        overflow = (value.is_str & digits.is_not_null() & from_text.is_null()) | (
            value.is_kind(Kind.INT) & from_int.is_null()
        )
        rules += [
            Rule(
                "int_type",
                value.is_kind(Kind.NULL, Kind.OBJECT, Kind.ARRAY),
                message("int_type"),
                describe="JSON number, bool or numeric string",
            ),
            Rule(
                "finite_number",
                is_float & ~as_float.is_finite(),
                message("finite_number"),
                describe="finite float",
            ),
            Rule(
                "int_from_float",
                is_float & ~whole,
                message("int_from_float"),
                describe="no fractional part",
            ),
            Rule(
                "int_parsing_size",
                is_float & ~in_range,
                message("int_parsing_size"),
                describe="a float within 64 bits",
            ),
            Rule(
                "int_parsing",
                value.is_str & digits.is_null(),
                message("int_parsing"),
                describe="parse string as int",
            ),
        ]
    parsed = Helper(value.helper("int"), number)
    number = pl.col(parsed.name)
    rules.extend(_bounds(number, schema, float_mod=False))
    steps = (
        "a JSON integer, else pydantic-core's cleaning (trim, sign, leading zeros, .000, _)",
        f"ints over {HUGE_DIGITS} digits go to Pydantic",
    )
    all_helpers = (*helpers, parsed_text, parsed)
    return Parsed(
        value=number.cast(dtype, strict=False),
        rules=tuple(rules),
        dtype=dtype,
        steps=steps,
        python=overflow,
        helpers=all_helpers,
    )


def _off_multiple(step: float) -> Callable[[pl.Series], pl.Series]:
    """pydantic-core's float check, in f64 through NumPy: a value fails when it is more than
    1e-9 away from ``step * round(value / step)`` (Rust rounding: halves away from zero)."""

    def apply(series: pl.Series) -> pl.Series:
        values = series.cast(pl.Float64).to_numpy()
        with np.errstate(invalid="ignore", over="ignore"):
            quotient = values / step
            whole = np.trunc(quotient)
            whole += np.where(np.abs(quotient - whole) >= 0.5, np.sign(quotient), 0.0)
            distance = np.abs(values - step * whole)
        return pl.Series(series.name, distance > 1e-9, dtype=pl.Boolean)

    return apply


def _as_compared(bound: Any, float_field: bool) -> Any:
    """A float field's int bound is a float to pydantic-core (its message shows
    9007199254740992 for ``ge=2**53 + 1``)."""
    if float_field and isinstance(bound, int) and not isinstance(bound, bool):
        return float(bound)
    return bound


def _bounds(number: pl.Expr, schema: Mapping[str, Any], *, float_mod: bool) -> list[Rule]:
    """multiple_of, le, lt, ge, gt: pydantic-core's order; NaN fails every comparison."""
    rules: list[Rule] = []
    multiple_of = schema.get("multiple_of")
    if multiple_of is not None:
        if float_mod:
            fails = number.map_batches(_off_multiple(float(multiple_of)), return_dtype=pl.Boolean)
        else:
            fails = (number % int(multiple_of)) != 0
        rules.append(
            Rule(
                "multiple_of",
                fails,
                message(
                    "multiple_of",
                    {"multiple_of": context_number(_as_compared(multiple_of, float_mod))},
                ),
                describe=f"multiple of {multiple_of}",
            )
        )
    checks: list[tuple[str, str, Callable[[pl.Expr, pl.Expr], pl.Expr]]] = [
        ("le", "less_than_equal", lambda v, c: v <= c),
        ("lt", "less_than", lambda v, c: v < c),
        ("ge", "greater_than_equal", lambda v, c: v >= c),
        ("gt", "greater_than", lambda v, c: v > c),
    ]
    for key, error_type, compare in checks:
        bound = schema.get(key)
        if bound is None:
            continue
        literal = pl.lit(bound) if not isinstance(bound, Decimal) else pl.lit(float(bound))
        ok = compare(number, literal)
        if float_mod:
            ok = nan_safe(ok, number)
        rules.append(
            Rule(
                error_type,
                ~ok,
                message(error_type, {key: context_number(_as_compared(bound, float_mod))}),
                describe=f"{key} {bound}",
            )
        )
    return rules
