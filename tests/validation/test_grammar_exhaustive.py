"""Text grammars checked exhaustively against pydantic-core itself.

Every string up to a few characters long over an alphabet of the characters that matter to a
grammar (digits, signs, dot, underscore, exponent, space) is validated both ways, through the
engine's compiled rules and through Pydantic, and must get the same verdict, error type and
value. No hand-picked list: this is how ``"-_1"``, ``"1.0_0"`` or ``"0-1"`` (which Pydantic
accepts as -1) are covered, along with everything near them.
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from pydantic import BaseModel, Field, ValidationError, create_model

from engine.batch import RawBatch
from engine.columns import ERRORS, LINE, MALFORMED, MALFORMED_MSG, RAW, ROW
from engine.validation.compiler import compile_schema
from engine.validation.validate import BatchValidator


def strings(alphabet: str, longest: int) -> list[str]:
    return [
        "".join(chars)
        for length in range(1, longest + 1)
        for chars in itertools.product(alphabet, repeat=length)
    ]


def engine_verdicts(model: type[BaseModel], texts: list[str]) -> list[tuple[str, Any]]:
    """("ok", value) or ("error", type) per text, as a CSV cell of field ``x``."""
    frame = pl.DataFrame(
        {
            ROW: pl.int_range(1, len(texts) + 1, eager=True),
            LINE: pl.int_range(2, len(texts) + 2, eager=True),
            RAW: texts,
            MALFORMED: pl.Series([None] * len(texts), dtype=pl.String),
            MALFORMED_MSG: pl.Series([None] * len(texts), dtype=pl.String),
            "x": texts,
        }
    )
    validator = BatchValidator(compile_schema(model, typed=False), ("x",))
    result = validator.validate(RawBatch(frame, ("x",), typed=False), datetime.now(UTC))
    got: dict[int, tuple[str, Any]] = {}
    for row, value in result.valid.select(ROW, "x").iter_rows():
        got[row] = ("ok", value)
    for row, errors in result.invalid.select(ROW, ERRORS).iter_rows():
        got[row] = ("error", errors[0]["type"])
    return [got[i] for i in range(1, len(texts) + 1)]


def pydantic_verdict(model: type[BaseModel], text: str) -> tuple[str, Any]:
    try:
        return ("ok", model.model_validate({"x": text}).x)  # type: ignore[attr-defined]
    except ValidationError as exc:
        return ("error", exc.errors()[0]["type"])


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] == b[0] == "ok" and isinstance(a[1], float) and isinstance(b[1], float):
        return (math.isnan(a[1]) and math.isnan(b[1])) or a[1] == b[1]
    return a == b


def compare(model: type[BaseModel], texts: list[str]) -> None:
    engine = engine_verdicts(model, texts)
    expected = [pydantic_verdict(model, text) for text in texts]
    diverging = [
        (text, got, want)
        for text, got, want in zip(texts, engine, expected, strict=True)
        if not same(got, want)
    ]
    assert diverging[:20] == [], f"{len(diverging)} of {len(texts)} texts diverge"


# Characters in the int grammar: digits (zero is special), sign, dot, underscore, space, and
# a letter standing for everything else.
INT_ALPHABET = "01_.+- x"


def test_int_texts_up_to_five_characters() -> None:
    compare(create_model("Int", x=(int, ...)), strings(INT_ALPHABET, 5))


def test_int_texts_with_decimals_and_separators() -> None:
    texts = strings("09_.-", 6)
    compare(create_model("Int", x=(int, ...)), texts)


def test_bounded_int_texts() -> None:
    bounded = create_model("Bounded", x=(int, Field(ge=-128, le=127)))
    compare(bounded, strings("127._0-", 5))


FLOAT_ALPHABET = "01_.+-e "


def test_float_texts_up_to_five_characters() -> None:
    texts = strings(FLOAT_ALPHABET, 5) + [
        f"{sign}{word}{pad}"
        for sign in ("", "+", "-")
        for word in ("inf", "INF", "infinity", "nan", "NaN", "iNfInItY", "infinit", "na")
        for pad in ("", " ", "_")
    ]
    compare(create_model("Float", x=(float, ...)), texts)


def test_decimal_texts() -> None:
    model = create_model("Dec", x=(Decimal, Field(decimal_places=2, max_digits=5)))
    compare(model, strings("10_.-", 5))


def test_bool_texts() -> None:
    words = ["true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0"]
    texts = [w for word in words for w in {word, word.upper(), word.title(), f" {word}"}]
    compare(create_model("Bool", x=(bool, ...)), [*texts, *strings("01tf ", 3)])


def test_the_reported_int_texts_are_int_parsing() -> None:
    texts = ["-_1", "+_1", "1.0_0", "1_.0", "1._0", "-1.000_000"]
    verdicts = engine_verdicts(create_model("Int", x=(int, ...)), texts)
    assert verdicts == [("error", "int_parsing")] * 6
    bounded = create_model("Small", x=(int, Field(ge=-128, le=127)))
    assert engine_verdicts(bounded, ["127.0_0", "127.00", "0-1"]) == [
        ("error", "int_parsing"),
        ("ok", 127),
        ("ok", -1),
    ]
