"""Assumptions the compiler makes about Polars' parsers, checked (they could change with an
upgrade, and the parity suite would then only catch it by chance)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.validation.numbers import FLOAT_RE

NUMBERISH = st.text(alphabet="0123456789.eE+-_ infatyINFATYx", max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBERISH, min_size=1, max_size=300))
def test_polars_float_cast_accepts_exactly_rusts_grammar(texts: list[str]) -> None:
    frame = pl.DataFrame({"t": texts}).select(
        pl.col("t").str.contains(FLOAT_RE).alias("grammar"),
        pl.col("t").cast(pl.Float64, strict=False).is_not_null().alias("cast"),
    )
    assert frame["grammar"].to_list() == frame["cast"].to_list()


def test_float_grammar_edges() -> None:
    accepted = [
        "1",
        "+1.",
        ".5",
        "-.5e-3",
        "1E5",
        "inf",
        "-Infinity",
        "NaN",
        "+nan",
        "iNf",
        "1e400",
    ]
    rejected = ["", " 1", "1 ", ".", "e5", "1e", "1e+", "0x10", "1_0", "infinit", "١٢", "1,0"]
    got = pl.Series(accepted + rejected).cast(pl.Float64, strict=False).is_not_null().to_list()
    assert got == [True] * len(accepted) + [False] * len(rejected)
