"""What a column can hold: a value Pydantic accepted, as its column stores it, or why not.

Python's values are wider than the columns: ints are unbounded, aware datetimes may leave years
1-9999 once in UTC, strings may hold lone surrogates, a default may be of any type at all
(Pydantic does not validate defaults). Such a value makes its row invalid with one of the
engine's documented storage errors, never a changed or dropped value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from enum import Enum
from typing import Any
from uuid import UUID

import polars as pl
from polars._typing import PolarsDataType

from engine.sources.json_values import SURROGATE

MAX_PRECISION = 38  # digits of the widest DECIMAL column


def utc_time(value: time) -> time:
    """A time with an offset as UTC wall time (DuckDB TIME has no offset)."""
    offset = value.utcoffset() or timedelta(0)
    moment = datetime.combine(date(2000, 1, 3), value.replace(tzinfo=None)) - offset
    return moment.time()


# Valid per Pydantic, but not storable as it is: the message per error type. These are the
# engine's documented storage errors (README, "Known, deliberate differences").
STORAGE_ERRORS = {
    "int_storage_overflow": "Valid integer, but too large for the {column} column it is stored in",
    "datetime_storage_overflow": (
        "Valid datetime, but in UTC it falls outside years 1-9999, "
        "which the {column} column it is stored in cannot give back"
    ),
    "string_storage_surrogate": (
        "Valid string, but it holds a lone surrogate, which the {column} column "
        "(UTF-8) cannot store"
    ),
    "decimal_storage_overflow": (
        "Valid decimal, but it does not fit the {column} column it is stored in"
    ),
    "value_storage_type": "Valid, but a {kind} value cannot be stored in the {column} column",
}


class Unstorable(Exception):
    def __init__(self, error_type: str, kind: str = "") -> None:
        self.error_type = error_type
        self.kind = kind
        super().__init__(error_type)

    def message(self, sql_type: str) -> str:
        return STORAGE_ERRORS[self.error_type].format(column=sql_type, kind=self.kind)


def storable(value: Any, dtype: PolarsDataType) -> Any:
    """The value as its column holds it, or :class:`Unstorable` saying why it cannot be."""
    stored = _converted(value.value if isinstance(value, Enum) else value, dtype)
    if not _admits(dtype, stored):
        raise Unstorable("value_storage_type", type(value).__name__)
    return stored


def _converted(value: Any, dtype: PolarsDataType) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if isinstance(dtype, pl.Decimal) and abs(value) >= 10 ** (dtype.precision or 38):
            raise Unstorable("int_storage_overflow")
        if dtype == pl.Int64() and not -(2**63) <= value < 2**63:
            raise Unstorable("int_storage_overflow")
        return Decimal(value) if isinstance(dtype, pl.Decimal) else value
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise Unstorable("datetime_storage_overflow") from None
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            value = value.replace(tzinfo=None)
        return value
    if isinstance(value, time) and value.tzinfo is not None:
        return utc_time(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, str) and SURROGATE.search(value):
        raise Unstorable("string_storage_surrogate")
    if isinstance(value, Decimal) and isinstance(dtype, pl.Decimal):
        scale = dtype.scale or 0
        whole = (dtype.precision or 38) - scale
        fits = value.is_finite() and _places(value) <= scale
        if not fits or abs(value) >= Decimal(10) ** whole:
            raise Unstorable("decimal_storage_overflow")
        # On the column's grid: a zero with a large exponent (``0E+40``) fits, as ``0.00``,
        # but Polars refuses it written that way.
        with localcontext(prec=2 * MAX_PRECISION):
            return value.quantize(Decimal(1).scaleb(-scale))
    return value


def _admits(dtype: PolarsDataType, value: Any) -> bool:
    """Whether the column holds ``value`` as it is (after ``storable``'s conversions): a
    float in an integer or decimal column would be rounded, a datetime in a date column cut,
    an int in a date column read as days. A float column takes an int it holds exactly."""
    if value is None:
        return True
    if dtype.is_integer():
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(dtype, pl.Decimal):
        return isinstance(value, Decimal)  # ints are Decimals by now
    if dtype.is_float():
        return isinstance(value, float) or (
            isinstance(value, int) and not isinstance(value, bool) and float(value) == value
        )
    if dtype == pl.Date():
        return type(value) is date
    if isinstance(dtype, pl.Datetime):
        return isinstance(value, datetime)
    if dtype == pl.Time():
        return isinstance(value, time)
    if dtype == pl.Boolean():
        return isinstance(value, bool)
    if dtype == pl.String():
        return isinstance(value, str)
    return True


def _places(value: Decimal) -> int:
    """Digits after the point that matter: ``0.110`` has two (the column holds it as 0.11)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros)) if any(digits) else 0


def column_values(values: list[Any], dtype: PolarsDataType) -> pl.Series:
    """Stored values as a column: exactly, or :class:`Unstorable` for the first value of a kind
    the column cannot hold (a default of the wrong type, say) -- never a silent null. Text is
    held only by a text column (Polars would parse ``"2024-01-01"`` into a date column)."""
    if dtype != pl.String():
        text = next((v for v in values if isinstance(v, str)), None)
        if text is not None:
            raise Unstorable("value_storage_type", "str")
    try:
        return pl.Series(values, dtype=dtype, strict=True)
    except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
        for value in values:
            try:
                pl.Series([value], dtype=dtype, strict=True)
            except (TypeError, ValueError, OverflowError, pl.exceptions.PolarsError):
                raise Unstorable("value_storage_type", type(value).__name__) from None
        raise


def made_default(factory: Callable[[], Any], dtype: PolarsDataType) -> tuple[Any, bool]:
    """A ``default_factory``'s value, made now, as its column holds it, and whether the
    column cannot hold it (then None)."""
    try:
        return storable_default(factory(), dtype), False
    except Unstorable:
        return None, True


def storable_default(value: Any, dtype: PolarsDataType) -> Any:
    """A default (Pydantic does not validate them) as its column holds it, or Unstorable."""
    stored = storable(value, dtype)
    column_values([stored], dtype)
    return stored
