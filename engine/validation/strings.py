"""str and bool in Pydantic's lax mode."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message
from engine.validation.rules import Parsed, Rule, Value


def _option(schema: Mapping[str, Any], config: Mapping[str, Any], key: str, config_key: str) -> Any:
    """The schema's value, else the config's (pydantic-core's ``schema_or_config``)."""
    configured = config.get(config_key)
    return schema.get(key, configured)


def rust_regex_ok(pattern: str) -> bool:
    """Polars uses the same Rust regex crate as pydantic-core; look-arounds are not supported."""
    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.ComputeError:
        return False
    return True


def parse_str(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    strict = bool(schema.get("strict", config.get("strict", False)))
    coerce = bool(_option(schema, config, "coerce_numbers_to_str", "coerce_numbers_to_str"))
    coerce = coerce and not strict
    # Python's re and Rust's regex differ in places: with python-re, Pydantic decides.
    python_re = _option(schema, config, "regex_engine", "regex_engine") == "python-re"
    rules: list[Rule] = []
    python: pl.Expr | None = None
    if value.kind is not None:
        number = value.is_kind(Kind.INT, Kind.FLOAT)
        if coerce:
            python = number  # Python's str(float) formatting is not reproduced here
        wrong = ~value.is_str & ~value.absent & (~number if coerce else pl.lit(True))
        rules.append(Rule("string_type", wrong, message("string_type"), describe="JSON string"))
    text = value.text
    steps = ["text as is"]
    if _option(schema, config, "strip_whitespace", "str_strip_whitespace"):
        text = text.str.strip_chars()
        steps.append("strip whitespace")
    min_length = _option(schema, config, "min_length", "str_min_length")
    max_length = _option(schema, config, "max_length", "str_max_length")
    if min_length is not None:
        rules.append(
            Rule(
                "string_too_short",
                text.str.len_chars() < min_length,
                message("string_too_short", {"min_length": min_length}),
                describe=f"min_length {min_length}",
            )
        )
    if max_length is not None:
        rules.append(
            Rule(
                "string_too_long",
                text.str.len_chars() > max_length,
                message("string_too_long", {"max_length": max_length}),
                describe=f"max_length {max_length}",
            )
        )
    pattern = _option(schema, config, "pattern", "str_pattern")
    if pattern is not None:
        if rust_regex_ok(pattern) and not python_re:
            rules.append(
                Rule(
                    "string_pattern_mismatch",
                    ~text.str.contains(pattern),
                    message("string_pattern_mismatch", {"pattern": pattern}),
                    describe=f"pattern {pattern!r}",
                )
            )
        else:
            python = value.is_str if python is None else (python | value.is_str)
            steps.append(f"pattern {pattern!r} with Python's re: checked by Pydantic")
    if _option(schema, config, "to_lower", "str_to_lower"):
        text = text.str.to_lowercase()
        steps.append("to lower case")
    elif _option(schema, config, "to_upper", "str_to_upper"):
        text = text.str.to_uppercase()
        steps.append("to upper case")
    return Parsed(
        value=text, rules=tuple(rules), dtype=pl.String(), steps=tuple(steps), python=python
    )


def _case_variants(word: str) -> list[str]:
    pairs = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in word]
    return ["".join(p) for p in itertools.product(*pairs)]


TRUE_WORDS = ["1", "t", "y", "on", "yes", "true"]
FALSE_WORDS = ["0", "f", "n", "no", "off", "false"]
TRUE_TEXT = [v for w in TRUE_WORDS for v in _case_variants(w)]
FALSE_TEXT = [v for w in FALSE_WORDS for v in _case_variants(w)]


def parse_bool(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    """Exactly pydantic-core's words (ASCII case-insensitive, no trimming), 0/1 numbers."""
    is_true = value.text.is_in(TRUE_TEXT)
    is_false = value.text.is_in(FALSE_TEXT)
    if value.kind is None:
        parsed = pl.when(is_true).then(True).when(is_false).then(False)
        rules = [
            Rule(
                "bool_parsing",
                parsed.is_null(),
                message("bool_parsing"),
                describe="true/false/yes/no/on/off/1/0/t/f/y/n",
            )
        ]
    else:
        number = value.text.cast(pl.Float64, strict=False)
        # pydantic-core reads JSON ints as i64 first: a bigger int is a type error, not a word.
        huge = value.is_kind(Kind.INT) & value.text.cast(pl.Int64, strict=False).is_null()
        parsed = (
            pl.when(value.is_kind(Kind.BOOL))
            .then(value.text == "true")
            .when(value.is_kind(Kind.INT, Kind.FLOAT) & (number == 1))
            .then(True)
            .when(value.is_kind(Kind.INT, Kind.FLOAT) & (number == 0))
            .then(False)
            .when(value.is_str & is_true)
            .then(True)
            .when(value.is_str & is_false)
            .then(False)
        )
        # A float is a bool only through an exact 64-bit int (then 0 or 1, or bool_parsing).
        whole = number.is_finite() & (number.floor() == number) & (number.abs() < 2.0**63)
        odd_float = value.is_kind(Kind.FLOAT) & ~whole.fill_null(False)
        wrong_type = value.is_kind(Kind.NULL, Kind.OBJECT, Kind.ARRAY) | huge | odd_float
        rules = [
            Rule(
                "bool_type",
                wrong_type,
                message("bool_type"),
                describe="JSON bool, 0/1 or a bool word",
            ),
            Rule(
                "bool_parsing",
                ~wrong_type & parsed.is_null(),
                message("bool_parsing"),
                describe="bool words, 0 or 1",
            ),
        ]
    return Parsed(
        value=parsed,
        rules=tuple(rules),
        dtype=pl.Boolean(),
        steps=("bool words (case-insensitive) or 0/1",),
    )
