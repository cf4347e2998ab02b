"""The data the compiler produces: named rules over Polars expressions.

A rule is one way a value can fail (``"amount|greater_than"``): the error type Pydantic would
report, an expression that is true on the failing rows, and the message. A field's rules are
ordered the way Pydantic checks them; a row's error for that field is its first failing rule,
so the whole schema is evaluated as one ``select`` over a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.columns import helper_column, value_column

__all__ = ["FieldProgram", "Helper", "Parsed", "Rule", "Unsupported", "Value", "value_column"]


class Unsupported(Exception):
    """A parser meets a construct it cannot compile; the walker names the field."""

    def __init__(self, problem: str, instead: str) -> None:
        self.problem = problem
        self.instead = instead
        super().__init__(problem)


@dataclass(frozen=True)
class Helper:
    """An intermediate column computed once before the rules that use it.

    With ``rows`` set it is computed only on those rows (null elsewhere): how an expensive
    general parser runs on just the values the fast path could not take.
    """

    name: str
    expr: pl.Expr | Callable[[pl.DataFrame], pl.Series]  # a function for staged computations
    rows: pl.Expr | None = None
    reads: tuple[str, ...] = ()  # the columns a function reads (all, when empty)

    @classmethod
    def staged(
        cls,
        name: str,
        compute: Callable[[pl.DataFrame], pl.Series],
        source: pl.Expr,
        rows: pl.Expr | None = None,
    ) -> Helper:
        """A function helper that reads only ``source``'s columns."""
        return cls(name, compute, rows, tuple(dict.fromkeys(source.meta.root_names())))


@dataclass(frozen=True)
class Value:
    """An input value as the compiler sees it: its text, and its JSON kind if the source has kinds.

    ``kind is None`` means every present value is a string (CSV): parsers then emit simpler
    expressions. ``token`` is the value as JSON text, used for an error's ``input``. ``name``
    is the field's name, for naming helper columns.
    """

    text: pl.Expr
    kind: pl.Expr | None
    token: pl.Expr
    name: str = ""

    def helper(self, purpose: str) -> str:
        return helper_column(self.name, purpose)

    @property
    def absent(self) -> pl.Expr:
        return self.text.is_null() if self.kind is None else self.kind == Kind.ABSENT

    @property
    def is_null(self) -> pl.Expr:
        return pl.lit(False) if self.kind is None else self.kind == Kind.NULL

    def is_kind(self, *kinds: Kind) -> pl.Expr:
        if self.kind is None:
            return pl.lit(Kind.STR in kinds)
        if len(kinds) == 1:
            return self.kind == kinds[0]
        return self.kind.is_in([int(k) for k in kinds])

    @property
    def is_str(self) -> pl.Expr:
        return self.is_kind(Kind.STR)


@dataclass(frozen=True)
class Rule:
    """One check. ``fails`` is evaluated on every row; only rows where it is true fail."""

    error_type: str
    fails: pl.Expr
    message: str | pl.Expr
    input: pl.Expr | None = None  # JSON text of the offending input; the field's token if None
    describe: str = ""  # human summary for ``schema explain``
    type_expr: pl.Expr | None = None  # the error type per row, when not always ``error_type``


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """What parsing a value to a type gives: the typed value and the rules met on the way."""

    value: pl.Expr
    rules: tuple[Rule, ...]
    dtype: pl.DataType
    steps: tuple[str, ...] = ()  # human description of the parse, for ``schema explain``
    python: pl.Expr | None = None  # rows whose value only Pydantic itself can decide
    helpers: tuple[Helper, ...] = ()
    sql_type: str | None = None  # when the DuckDB type is not the dtype's default (UUID)


@dataclass(frozen=True, kw_only=True)
class FieldProgram:
    """Everything the engine needs to validate and store one model field."""

    name: str
    keys: tuple[str, ...]  # input keys tried in order (alias first)
    value: pl.Expr
    rules: tuple[Rule, ...]
    dtype: pl.DataType
    sql_type: str
    required: bool
    default: Any = None
    python_rows: pl.Expr | None = None  # rows that need Pydantic itself for this field
    notes: tuple[str, ...] = ()
    helpers: tuple[Helper, ...] = ()
    loc_by_alias: bool = True  # errors name the key used (else the field's name)

    @property
    def loc_name(self) -> str:
        """How errors name the field when its value is absent: its first key."""
        return self.keys[0] if self.loc_by_alias else self.name
