"""Decimal with max_digits / decimal_places, counted the way Pydantic does (normalized).

Plain decimal strings are handled vectorized; exponents, underscores and non-ASCII digits
(which Python's Decimal also accepts) are left to Pydantic for those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message, trim
from engine.validation.rules import Helper, Parsed, Rule, Unsupported, Value

MAX_DIGITS = 38  # of a DECIMAL column
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


def _forms(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """The text's form: a struct of ``plain`` (a decimal without exponent), ``special``
    (inf, nan) and ``printable`` (ASCII without ``_``/``e``: Python's Decimal reads no other)."""

    def compute(frame: pl.DataFrame) -> pl.Series:
        return frame.select(
            pl.struct(
                plain=text.str.contains(PLAIN_RE),
                special=text.str.contains(SPECIAL_RE),
                printable=text.str.contains(ASCII_PRINTABLE_RE) & ~text.str.contains("[_eE]"),
            )
        ).to_series()

    return compute


def _digit_counts(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """(digits, decimals) of the Decimal as written and of its normalized form, as
    pydantic-core counts them (``extract_decimal_digits_info``): a limit fails only when both
    exceed it, so ``0.0`` has no whole digit although ``0`` has one. A struct of four fields
    (``digits``, ``decimals``, ``n_digits``, ``n_decimals``), computed in stages: each step is
    a column computed once, where one nested expression would repeat its inputs."""

    def compute(frame: pl.DataFrame) -> pl.Series:
        col = pl.col
        steps = (
            frame.lazy()
            .select(unsigned=text.str.strip_chars_start("+-").str.split("."))
            .select(
                whole=col("unsigned").list.get(0, null_on_oob=True).fill_null(""),
                fraction=col("unsigned").list.get(1, null_on_oob=True).fill_null(""),
            )
            .select(
                places=col("fraction").str.len_chars().cast(pl.Int64),
                significant=(col("whole") + col("fraction")).str.strip_chars_start("0"),
            )
            .with_columns(trimmed=col("significant").str.strip_chars_end("0"))
            .select(
                "places",
                # As written: the coefficient without leading zeros (zero keeps one digit),
                # exponent minus the number of fraction digits.
                coefficient=pl.max_horizontal(
                    col("significant").str.len_chars().cast(pl.Int64), pl.lit(1)
                ),
                exponent=(col("significant").str.len_chars() - col("trimmed").str.len_chars()).cast(
                    pl.Int64
                )
                - col("places"),
                length=col("trimmed").str.len_chars().cast(pl.Int64),
                zero=col("trimmed") == "",
            )
            .select(
                pl.struct(
                    digits=pl.when(col("places") > 0)
                    .then(pl.max_horizontal(col("coefficient"), col("places")))
                    .otherwise(col("coefficient")),
                    decimals=col("places"),
                    n_digits=pl.when(col("zero"))
                    .then(1)
                    .when(col("exponent") >= 0)
                    .then(col("length") + col("exponent"))
                    .otherwise(pl.max_horizontal(col("length"), -col("exponent"))),
                    n_decimals=pl.when(col("zero") | (col("exponent") >= 0))
                    .then(0)
                    .otherwise(-col("exponent")),
                )
            )
        )
        return steps.collect().to_series()

    return compute


def fast_pattern(max_digits: int | None, places: int | None) -> str | None:
    """A regex for plain decimal texts whose lengths alone show that no digit limit can fail,
    so that their form and digit counts need not be computed (None: no text qualifies).

    With ``W`` the characters before the point, sign included (at least 1), and ``F`` those
    after it, pydantic-core's counts are at most: digits ``W + F``, decimals ``F``, whole
    digits ``W`` (``_digit_counts``). The limits hold when ``F <= places`` and
    ``W <= max_digits - places``; with ``max_digits`` alone the caller also asks for at
    most ``max_digits`` characters (then ``W + F`` is at most the length)."""
    fraction = "*" if places is None else f"{{0,{places}}}"
    tail = rf"(?:\.[0-9]{fraction})?"
    point_first = (
        [] if places == 0 else [r"\.[0-9]" + ("+" if places is None else f"{{1,{places}}}")]
    )
    if max_digits is None or places is None:
        branches = [rf"[+-]?[0-9]+{tail}", *(rf"[+-]?{b}" for b in point_first)]
    else:
        whole = max_digits - places
        if whole < 1:
            return None
        branches = [rf"[0-9]{{1,{whole}}}{tail}", *point_first]
        branches += [rf"[+-]{b}" for b in point_first]
        if whole > 1:
            branches.append(rf"[+-][0-9]{{1,{whole - 1}}}{tail}")
    return rf"^(?:{'|'.join(branches)})$"


def _decimal(bound: Any) -> Decimal:
    """A bound as pydantic-core compares a Decimal with it: a float by its repr (``0.1``)."""
    return Decimal(repr(bound)) if isinstance(bound, float) else Decimal(bound)


def _representable(value: Decimal) -> bool:
    _, digits, exponent = value.as_tuple()
    return isinstance(exponent, int) and -exponent <= 38 and len(digits) + max(exponent, 0) <= 38


def _literal(bound: Any) -> pl.Expr:
    """A bound as a DECIMAL literal; one beyond DECIMAL(38, s) cannot be compared in Polars."""
    value = _decimal(bound)
    if not _representable(value):
        raise Unsupported(
            f"a Decimal bound {bound!r} of more than 38 digits",
            "a bound of at most 38 digits, or float",
        )
    return pl.lit(value)


def _on_grid(bound: Any, key: str, scale: int) -> tuple[str, Decimal]:
    """A bound as pydantic-core compares with it, moved
    onto the column's grid of ``scale`` places where it is not on it: the values that pass
    (which have at most ``scale`` places) are the same. ``ge 0.105`` on two places is
    ``ge 0.11``; ``lt`` of a bound off the grid is ``le`` its floor."""
    value = _decimal(bound)
    step = Decimal(1).scaleb(-scale)
    with localcontext(prec=200):
        up, down = value.quantize(step, ROUND_CEILING), value.quantize(step, ROUND_FLOOR)
    if up == value:
        return key, value
    return {"ge": ("ge", up), "gt": ("ge", up), "le": ("le", down), "lt": ("le", down)}[key]


def _shown(bound: Any) -> Any:
    """A bound as Pydantic's message shows it: a Decimal as written (``0.50``, ``-1E+6``)."""
    return str(_decimal(bound)) if isinstance(bound, Decimal | float) else bound


def _huge_quotient(number: pl.Expr, step: Decimal, scale: int) -> pl.Expr:
    """Values Pydantic's multiple_of judges in 28-digit arithmetic: it divides by the step
    in Python's default decimal context (28 digits, rounded) and asks whether the quotient
    leaves a remainder by 1, which fails outright past 28 whole digits. Below
    ``|step| * 10**(28 - digits(step) - scale)`` the quotient's rounding cannot hide a
    fraction (no fraction of it is smaller than ``1 / (step's digits * 10**scale)``) and
    the exact ``%`` gives the same verdict; values from there up are Pydantic's."""
    power = 28 - len(step.as_tuple().digits) - scale
    with localcontext(prec=2 * MAX_DIGITS):
        threshold = abs(step) * Decimal(10) ** power
    if not _representable(threshold):  # beyond any value the column holds
        return pl.lit(False)
    return (number.abs() >= pl.lit(threshold)).fill_null(False)


def _bounds(number: pl.Expr, schema: Mapping[str, Any], scale: int) -> list[Rule]:
    """multiple_of, le, lt, ge, gt after the digit checks, in exact decimal arithmetic."""
    rules: list[Rule] = []
    multiple_of = schema.get("multiple_of")
    if multiple_of is not None:
        fails = (number % _literal(multiple_of)) != 0
        rules.append(
            Rule(
                "multiple_of",
                fails,
                message("multiple_of", {"multiple_of": _shown(multiple_of)}),
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
        compare, at = _on_grid(bound, key, scale)
        limit = _literal(at)
        ok = {
            "le": number <= limit,
            "lt": number < limit,
            "ge": number >= limit,
            "gt": number > limit,
        }[compare]
        rules.append(
            Rule(
                error_type,
                ~ok,
                message(error_type, {key: _shown(bound)}),
                describe=f"{key} {bound}",
            )
        )
    return rules


def parse_decimal(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    dtype = decimal_dtype(schema)
    text = Helper(value.helper("dec_text"), trim(value.text))
    t = pl.col(text.name)
    max_digits = schema.get("max_digits")
    places = schema.get("decimal_places")
    # The column's scale from a constraint Pydantic applies after a validator: the value
    # the validator sees must not be rounded to it first (see ``outside`` below).
    after_places = schema.get("column_decimal_places") if places is None else None
    # Most texts are plain decimals short enough for every digit limit: one regex says so,
    # and the text's other forms and its digit counts are computed on the rest only.
    pattern = fast_pattern(max_digits, places if after_places is None else after_places)
    fast_test = pl.lit(False) if pattern is None else t.str.contains(pattern)
    if pattern is not None and max_digits is not None and places is None:
        fast_test = fast_test & (t.str.len_bytes() <= max_digits)
    fast = Helper(value.helper("dec_fast"), fast_test)
    # The text's form elsewhere, computed once (every rule below reads it): null on fast rows.
    forms = Helper.staged(value.helper("dec_forms"), _forms(t), t, ~pl.col(fast.name))
    on_fast = pl.when(pl.col(fast.name))
    plain, special, printable = (
        on_fast.then(is_fast).otherwise(pl.col(forms.name).struct.field(name))
        for name, is_fast in (("plain", True), ("special", False), ("printable", True))
    )
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
        text = Helper(text.name, pl.when(number_kind).then(value.text).otherwise(trim(value.text)))
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
    counts_needed = ~pl.col(fast.name) & (plain | special)
    counts = Helper.staged(value.helper("dec_digits"), _digit_counts(t), t, counts_needed)
    count = pl.col(counts.name).struct.field
    digits, decimals, n_digits, n_decimals = (
        count(f) for f in ("digits", "decimals", "n_digits", "n_decimals")
    )
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
    is_plain = Helper(value.helper("dec_plain"), plain)
    parsed = Helper(
        value.helper("decimal"),
        pl.when(pl.col(is_plain.name)).then(t.str.strip_chars_start("+").cast(dtype, strict=False)),
    )
    number = pl.col(parsed.name)
    rules.extend(_bounds(number, schema, dtype.scale or 0))
    # A plain decimal too wide for the column (beyond 38 digits, or more places than it
    # keeps) is Pydantic's to decide, and then a storage error: never a silent null.
    too_wide = pl.col(is_plain.name).fill_null(False) & number.is_null()
    python = (is_text & unsure) | exponent_float | too_wide
    if schema.get("multiple_of") is not None:
        python = python | _huge_quotient(number, _decimal(schema["multiple_of"]), dtype.scale or 0)
    if after_places is not None:
        # More significant places than the column keeps: the cast would round the value
        # the validators see (1.500 to 2 at scale 0); Pydantic decides such rows.
        outside = (decimals > after_places) & (n_decimals > after_places)
        python = python | (pl.col(is_plain.name).fill_null(False) & outside.fill_null(False))
    return Parsed(
        value=number,
        rules=tuple(rules),
        dtype=dtype,
        steps=("trim, parse plain decimal; exponents by Pydantic",),
        python=python,
        helpers=(text, fast, forms, counts, is_plain, parsed),
    )
