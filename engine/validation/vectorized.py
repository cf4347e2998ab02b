"""How a schema declares the vectorized twin of a Python validator.

Put ``@vectorized(fn)`` directly on a ``field_validator`` / ``model_validator`` function (under
``@classmethod``), or on the function given to ``AfterValidator``::

    @field_validator("currency")
    @classmethod
    @vectorized(currency_rule)
    def _currency_allowed(cls, value: str, info: ValidationInfo) -> str: ...

For a field validator, ``fn(value, ctx)`` receives the field's typed value as a Polars
expression; for a model validator, ``fn(fields, ctx)`` receives a dict of them. It returns an
:class:`Outcome`: the new value(s) and the :class:`Check` s that fail rows. The engine runs the
Python validator itself (through Pydantic) on the rows that need it when no twin is declared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import polars as pl

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__vectorized__"


@dataclass(frozen=True)
class Check:
    """Rows where ``fails`` is true get this error.

    ``message`` is what the Python validator raises, e.g. ``ValueError(message)``; the engine
    prefixes it the way Pydantic does ("Value error, ..." for ``value_error``).
    """

    fails: pl.Expr
    message: str | pl.Expr
    error_type: str = "value_error"


@dataclass(frozen=True)
class Outcome:
    """What a field validator's twin returns: the (possibly transformed) value and its checks."""

    value: pl.Expr | None = None
    checks: Sequence[Check] = ()


@dataclass(frozen=True)
class ModelOutcome:
    """What a model validator's twin returns: updated field values and model-level checks."""

    values: Mapping[str, pl.Expr] = field(default_factory=dict)
    checks: Sequence[Check] = ()


@dataclass(frozen=True)
class VectorContext:
    """What a twin may use besides the value: Pydantic's validation context and batch time."""

    context: Mapping[str, Any]
    now: pl.Expr  # the batch's validation time, UTC, as a Datetime("us", "UTC") expression
    now_value: datetime
    field_name: str | None = None


def vectorized(twin: Callable[..., Outcome | ModelOutcome]) -> Callable[[F], F]:
    """Attach ``twin`` to a validator function; Pydantic ignores the attribute."""

    def attach(function: F) -> F:
        setattr(function, ATTRIBUTE, twin)
        return function

    return attach


def twin_of(function: Any) -> Callable[..., Any] | None:
    """The twin declared for a validator, looking through bound methods and classmethods."""
    for candidate in (
        function,
        getattr(function, "__func__", None),
        getattr(function, "func", None),
    ):
        if candidate is not None and hasattr(candidate, ATTRIBUTE):
            return getattr(candidate, ATTRIBUTE)  # type: ignore[no-any-return]
    return None


PREFIXES = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}


def pydantic_message(check: Check) -> pl.Expr:
    """The ``msg`` Pydantic shows for this check's exception."""
    prefix = PREFIXES.get(check.error_type, "")
    if isinstance(check.message, str):
        return pl.lit(prefix + check.message)
    return pl.lit(prefix) + check.message
