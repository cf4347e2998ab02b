"""A second reference schema: orders, with a unique key, aliases and a cross-field rule.

Shows what the compiler understands beyond the transactions schema: ``extra="forbid"``,
whitespace stripping, a column whose header differs from the field name, Decimal and enum
fields, and a model validator with its vectorized twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.validation.vectorized import Check, ModelOutcome, VectorContext, vectorized


class Status(StrEnum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Priority(IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3


def _ship_after_order_rule(fields: Mapping[str, pl.Expr], ctx: VectorContext) -> ModelOutcome:
    # ordered_at is stored as its UTC instant: its date is the UTC date (as in _ship_after_order)
    too_early = fields["ship_by"] < fields["ordered_at"].dt.date()
    return ModelOutcome(checks=[Check(too_early, "ship_by is before the order date")])


class Order(BaseModel):
    """An order line as exported by a shop system."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    __table_name__: ClassVar[str] = "orders"
    __unique__: ClassVar[tuple[str, ...]] = ("order_id",)

    order_id: str = Field(validation_alias="Order ID", pattern=r"^ORD-[0-9]+$")
    customer: str = Field(min_length=1, max_length=64)
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Decimal = Field(max_digits=12, decimal_places=2, gt=0)
    status: Status = Status.NEW
    priority: Priority = Priority.NORMAL
    ordered_at: datetime
    ship_by: date | None = None
    gift: bool = False

    @model_validator(mode="after")
    @vectorized(_ship_after_order_rule)
    def _ship_after_order(self) -> Order:
        # The order date is the UTC date, as the twin sees it: the column stores the UTC
        # instant, not the offset the value was given with.
        ordered = self.ordered_at
        if ordered.tzinfo is not None:
            ordered = ordered.astimezone(UTC)
        if self.ship_by is not None and self.ship_by < ordered.date():
            raise ValueError("ship_by is before the order date")
        return self
