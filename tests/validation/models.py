"""Models for the parity suite: together they cover every construct the compiler handles."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Annotated, Literal
from uuid import UUID

import polars as pl
from pydantic import (
    UUID4,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from engine.validation.vectorized import Check, ModelOutcome, Outcome, VectorContext, vectorized


class Color(StrEnum):
    RED = "red"
    GREEN = "green"


class Level(IntEnum):
    LOW = 1
    HIGH = 2


class Scalars(BaseModel):
    """Every scalar type and constraint, lax mode."""

    name: str = Field(min_length=2, max_length=12, pattern=r"^[a-z]")
    code: (
        Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, min_length=2)] | None
    ) = None
    small: int = Field(default=0, ge=-100, le=1_000_000, multiple_of=3)
    big: int | None = None
    ratio: float = Field(default=1.0, gt=0, lt=1e6, allow_inf_nan=False)
    step: float | None = Field(None, multiple_of=0.25)
    plain: float | None = None
    flag: bool = False
    # Pydantic types multiple_of as float; a Decimal step is what a Decimal field needs.
    price: Decimal | None = Field(
        None, max_digits=7, decimal_places=2, ge=0, multiple_of=Decimal("0.05")
    )  # type: ignore[call-overload]
    day: date | None = None
    moment: datetime | None = None
    aware: AwareDatetime | None = None
    clock: time | None = None
    ident: UUID | None = None
    ident4: UUID4 | None = None
    color: Color = Color.RED
    level: Level | None = None
    mode: Literal["a", "b"] = "a"
    rank: Literal[1, 2, 3] | None = None
    yes: Literal[True] | None = None


class Configured(BaseModel):
    """Model config: extra=forbid, whitespace stripping, aliases, populate_by_name, defaults."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    order_id: str = Field(validation_alias="Order ID", min_length=3)
    qty: int = Field(default=1, validation_alias=AliasChoices("quantity", "qty_total"), ge=1)
    note: str | None = None
    when: date = Field(default_factory=lambda: date(2020, 1, 1))
    tag: str = "none"


class Strict(BaseModel):
    """strict=True on the model, with one field relaxed and one re-tightened."""

    model_config = ConfigDict(strict=True)

    count: int
    share: float | None = None
    active: bool | None = None
    label: str | None = None
    loose: int | None = Field(None, strict=False)
    stamp: datetime | None = None
    amount: Decimal | None = Field(None, decimal_places=2)


def _code_twin(value: pl.Expr, ctx: VectorContext) -> Outcome:
    return Outcome(value.str.to_uppercase(), [Check(value.str.len_chars() > 6, "code too long")])


def _window_twin(fields: Mapping[str, pl.Expr], ctx: VectorContext) -> ModelOutcome:
    return ModelOutcome(
        checks=[Check(fields["end"] < fields["start"], "end must not be before start")]
    )


class Twinned(BaseModel):
    """Custom field and model validators with vectorized twins."""

    code: str
    start: date
    end: date
    size: int = Field(default=1, ge=0)

    @field_validator("code")
    @classmethod
    @vectorized(_code_twin)
    def _code(cls, value: str) -> str:
        if len(value) > 6:
            raise ValueError("code too long")
        return value.upper()

    @model_validator(mode="after")
    @vectorized(_window_twin)
    def _window(self) -> Twinned:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Untwinned(BaseModel):
    """The same validators without twins: the engine asks Pydantic, only where needed."""

    code: str
    start: date
    end: date
    size: int = Field(default=1, ge=0)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if len(value) > 6:
            raise ValueError("code too long")
        return value.upper()

    @model_validator(mode="after")
    def _window(self) -> Untwinned:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        return self


class Bare(BaseModel):
    """Untwinned's fields without its validators: to count the rows that reach them."""

    code: str
    start: date
    end: date
    size: int = Field(default=1, ge=0)
