"""Pydantic's own verdict on a leaf value, for the values a vectorized parse leaves open.

A leaf parser marks the values it cannot decide: a datetime in an unusual form, a decimal
with an exponent, a broken UUID whose message names the offending character. Rather than
send each such row to ``model_validate``, the leaf's own core schema is validated (with the
model's config) on each distinct such value, once per batch: the value it gives, or the one
error it reports, type and message exactly Pydantic's. Anything else (several errors, an
error inside the value, an error input that is not the value as given, a value the column
cannot hold, an exception) leaves the row to Pydantic, as before.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl
from pydantic import ValidationError
from pydantic_core import SchemaValidator

from engine.validation.rules import Helper, Parsed, Rule, Value
from engine.validation.storable import Unstorable, column_values, storable

TYPE, MSG, VALUE, OPEN = "type", "msg", "value", "open"


def with_oracle(
    parsed: Parsed, schema: Mapping[str, Any], config: Mapping[str, Any], value: Value
) -> Parsed:
    """``parsed`` with the rows it leaves to Pydantic decided per distinct value where the
    leaf alone decides them; only the rest still go to Pydantic row by row."""
    if parsed.python is None:
        return parsed
    try:
        validator = SchemaValidator(dict(schema), dict(config))  # type: ignore[arg-type]
    except Exception:  # a leaf pydantic-core does not take on its own: rows stay Pydantic's
        return parsed
    left_open = parsed.python.fill_null(False)
    source = value.token if value.kind is not None else value.text
    helper = Helper.staged(
        value.helper("oracle"),
        _decide(validator, source, parsed.dtype, typed=value.kind is not None),
        source,
        rows=left_open,
    )
    field = pl.col(helper.name).struct.field
    decided = left_open & ~field(OPEN).fill_null(True)
    rule = Rule(
        "pydantic",
        decided & field(TYPE).is_not_null(),
        field(MSG),
        type_expr=field(TYPE),
        describe="values the vectorized parse leaves open: Pydantic's verdict per distinct value",
    )
    others = tuple(
        dataclasses.replace(r, fails=r.fails.fill_null(False) & ~left_open) for r in parsed.rules
    )
    return dataclasses.replace(
        parsed,
        value=pl.when(decided).then(field(VALUE)).otherwise(parsed.value),
        rules=(rule, *others),
        python=left_open & field(OPEN).fill_null(True),
        helpers=(*parsed.helpers, helper),
        steps=(*parsed.steps, "values it leaves open: Pydantic per distinct value"),
    )


def _decide(
    validator: SchemaValidator, source: pl.Expr, dtype: pl.DataType, *, typed: bool
) -> Callable[[pl.DataFrame], pl.Series]:
    struct = pl.Struct({TYPE: pl.String, MSG: pl.String, VALUE: dtype, OPEN: pl.Boolean})

    def compute(frame: pl.DataFrame) -> pl.Series:
        inputs = frame.select(source.alias("in")).to_series()
        distinct = inputs.unique(maintain_order=True)
        verdicts = [_verdict(validator, text, dtype, typed) for text in distinct]
        values = [v[2] for v in verdicts]
        try:
            stored = column_values(values, dtype)
        except (Unstorable, TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
            stored = pl.Series([None] * len(values), dtype=dtype)
            verdicts = [(t, m, None, True) for t, m, _, _ in verdicts]
        table = pl.DataFrame(
            {
                "in": distinct,
                TYPE: pl.Series([v[0] for v in verdicts], dtype=pl.String),
                MSG: pl.Series([v[1] for v in verdicts], dtype=pl.String),
                VALUE: stored,
                OPEN: pl.Series([v[3] for v in verdicts], dtype=pl.Boolean),
            }
        )
        joined = inputs.to_frame("in").join(
            table, on="in", how="left", nulls_equal=True, maintain_order="left"
        )
        return joined.select(pl.struct(TYPE, MSG, VALUE, OPEN).cast(struct)).to_series()

    return compute


Verdict = tuple[str | None, str | None, Any, bool]  # (error type, message, value, left open)


def _verdict(
    validator: SchemaValidator, text: str | None, dtype: pl.DataType, typed: bool
) -> Verdict:
    if text is None:
        return None, None, None, True
    try:
        given = json.loads(text) if typed else text
        result = validator.validate_python(given)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        only = errors[0] if len(errors) == 1 else None
        if only is None or only["loc"] or not _same(only.get("input"), given):
            return None, None, None, True
        return only["type"], only["msg"], None, False
    except Exception:  # a validator's own exception: the row's verdict is Pydantic's
        return None, None, None, True
    try:
        return None, None, storable(result, dtype), False
    except Unstorable:
        return None, None, None, True


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
