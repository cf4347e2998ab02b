"""pydantic-core's text-to-int grammar (``str_as_int``), as vectorized string steps.

First the text is tried as it is, as a JSON integer (``-?(0|[1-9][0-9]*)``). Failing that,
``clean_int_str`` rewrites it and the result is tried again as a JSON integer:

1. trim Unicode whitespace;
2. drop one leading ``+`` (not followed by ``-``), then note one leading ``-`` (not followed
   by ``-`` or ``+``);
3. strip leading zeros, underscores among them too: what follows must be a digit 1-9, a
   ``-`` (kept: ``"0-1"`` is -1), a ``.`` (the character before it is kept), or nothing (the
   last character is kept); anything else fails;
4. drop a fractional part made only of zeros (``"1.00"`` is 1, ``"1."`` fails);
5. remove underscores, unless one leads, trails or doubles;
6. put the ``-`` back.

Every step is a regex or a slice over the whole column, computed only on the rows whose text
failed the first try (see ``numbers.parse_int``).
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from engine.validation.common import trim

JSON_INT = r"^-?(?:0|[1-9][0-9]*)$"


def cleaned_int_text(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """The text pydantic-core parses on its second try, or null where it gives up.

    Staged: each step is a column computed once. As one nested expression each step would
    repeat its inputs (``body`` is read seven times below), and the repeats compound: 4.5 s
    for 200k values instead of 0.1 s."""

    def cleaned(trimmed: pl.LazyFrame) -> pl.LazyFrame:
        t, sign, body, zeros, after = (pl.col(c) for c in ("t", "sign", "body", "zeros", "after"))
        stripped, fraction, whole, digits = (
            pl.col(c) for c in ("stripped", "fraction", "whole", "digits")
        )
        return (
            trimmed.with_columns(sign=t.str.extract(r"^([+-])", 1))
            # "+-1", "--1" and "-+1" fail; so does any body that does not start with a digit.
            .with_columns(body=pl.when(sign.is_null()).then(t).otherwise(t.str.slice(1)))
            .with_columns(body=pl.when(body.str.contains(r"^[0-9]")).then(body))
            .with_columns(zeros=body.str.extract(r"^(0[0_]*)", 1))
            .with_columns(after=body.str.slice(zeros.str.len_chars().fill_null(0)))
            .with_columns(
                stripped=pl.when(zeros.is_null())
                .then(body)  # starts with 1-9
                .when(after == "")
                .then(zeros.str.slice(-1))  # only zeros and underscores: the last one
                .when(after.str.contains(r"^[1-9-]"))
                .then(after)
                .when(after.str.starts_with("."))
                .then(zeros.str.slice(-1) + after)
            )
            .with_columns(fraction=stripped.str.extract(r"(?s)\.(.*)$", 1))
            .with_columns(
                whole=pl.when(fraction.str.contains(r"^0+$").fill_null(False))
                .then(stripped.str.extract(r"^([^.]*)\.", 1))
                .otherwise(stripped)
            )
            .with_columns(
                digits=pl.when(
                    whole.str.contains("_", literal=True)
                    & ~whole.str.starts_with("_")
                    & ~whole.str.ends_with("_")
                    & ~whole.str.contains("__", literal=True)
                )
                .then(whole.str.replace_all("_", "", literal=True))
                .otherwise(whole)
            )
            .select(
                candidate=pl.when(sign == "-").then("-" + digits).otherwise(digits),
            )
            .select(pl.when(pl.col("candidate").str.contains(JSON_INT)).then(pl.col("candidate")))
        )

    def compute(frame: pl.DataFrame) -> pl.Series:
        # A JSON integer once trimmed (a padded number) is its own cleaned form: the steps
        # run only on the rest.
        t = pl.col("t")
        trimmed = (
            frame.lazy()
            .select(t=trim(text))
            .with_columns(json_int=t.str.contains(JSON_INT).fill_null(False))
            .collect()
        )
        result = trimmed.select(pl.when("json_int").then(t)).to_series()
        rest = trimmed.select(~pl.col("json_int") & t.is_not_null()).to_series()
        if not rest.any():
            return result
        values = cleaned(trimmed.lazy().filter(rest).select("t")).collect().to_series()
        return result.scatter(rest.arg_true(), values)

    return compute
