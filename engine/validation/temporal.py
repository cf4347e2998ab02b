"""date and datetime.

The common ISO 8601 / RFC 3339 forms are parsed vectorized: ``YYYY-MM-DDTHH:MM:SS`` by a
fast fixed-format parse, the other forms (date only, space or ``_`` separator, minutes only,
fractions, ``Z`` / ``±HH:MM`` offsets) by a regex run only on the rows that need it. Anything
else (unix timestamps, out-of-range parts, unusual forms) is decided by Pydantic itself for
just those rows, which also yields speedate's exact messages ("month value is outside
expected range of 1-12").

Aware datetimes are stored in UTC; a naive value is stored as given.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message
from engine.validation.rules import Helper, Parsed, Rule, Value

DATE = r"(\d{4})-(\d{2})-(\d{2})"
DATETIME_RE = (
    rf"^{DATE}(?:[Tt _](\d{{2}}):(\d{{2}})(?::(\d{{2}})(?:\.(\d{{1,6}}))?)?"
    r"(Z|z|[+-]\d{2}:?\d{2})?)?$"
)
FAST_DATETIME_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d$"
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
PARTS = ["year", "month", "day", "hour", "minute", "second", "fraction", "offset"]


def _days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )


def _group(groups: pl.Expr, name: str) -> pl.Expr:
    """A regex group as text; optional groups that did not take part come back as ""."""
    part = groups.struct.field(name)
    return pl.when(part != "").then(part)


def _number(groups: pl.Expr, name: str) -> pl.Expr:
    return _group(groups, name).cast(pl.Int32, strict=False)


def general_datetime(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(UTC datetime or null, has an offset) for every form of DATETIME_RE."""
    groups = text.str.extract_groups(DATETIME_RE).struct.rename_fields(PARTS)
    year, month, day = (_number(groups, p) for p in ("year", "month", "day"))
    hour = _number(groups, "hour").fill_null(0)
    minute = _number(groups, "minute").fill_null(0)
    second = _number(groups, "second").fill_null(0)
    micro = _group(groups, "fraction").str.pad_end(6, "0").cast(pl.Int32, strict=False).fill_null(0)
    offset = _group(groups, "offset")
    digits = offset.str.replace_all(":", "", literal=True)
    off_hours = digits.str.slice(1, 2).cast(pl.Int32, strict=False)
    off_minutes = digits.str.slice(3, 2).cast(pl.Int32, strict=False)
    zulu = offset.is_null() | offset.is_in(["Z", "z"])
    sign = pl.when(digits.str.starts_with("-")).then(-1).otherwise(1)
    offset_minutes = pl.when(zulu).then(0).otherwise(sign * (off_hours * 60 + off_minutes))
    ok = (
        (year >= 1)
        & month.is_between(1, 12)
        & (day >= 1)
        & (day <= _days_in_month(year, month))
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & (zulu | ((off_hours <= 23) & (off_minutes <= 59)))
    ).fill_null(False)
    safe = pl.when(ok)
    naive = pl.datetime(
        safe.then(year).otherwise(1970),
        safe.then(month).otherwise(1),
        safe.then(day).otherwise(1),
        safe.then(hour).otherwise(0),
        safe.then(minute).otherwise(0),
        safe.then(second).otherwise(0),
        safe.then(micro).otherwise(0),
        time_unit="us",
    )
    utc = naive - pl.duration(minutes=offset_minutes.fill_null(0))
    return pl.when(ok).then(utc), offset.is_not_null()


def _not_decidable(value: Value) -> pl.Expr:
    """Present values that are neither strings nor clear type errors: Pydantic decides."""
    if value.kind is None:
        return pl.lit(False)
    return value.is_kind(Kind.INT, Kind.FLOAT, Kind.BOOL)


def _type_error(value: Value, error_type: str) -> list[Rule]:
    if value.kind is None:
        return []
    wrong = value.is_kind(Kind.NULL, Kind.OBJECT, Kind.ARRAY)
    return [Rule(error_type, wrong, message(error_type), describe="JSON string or number")]


def parse_date(value: Value, schema: dict[str, Any], config: dict[str, Any]) -> Parsed:
    text = value.text
    shaped = (text.str.len_bytes() == 10) & text.str.contains(DATE_RE)
    parsed = pl.when(shaped).then(text.str.to_date("%Y-%m-%d", strict=False))
    python = (value.is_str & ~value.absent & parsed.is_null()) | _not_decidable(value)
    steps = ("YYYY-MM-DD vectorized; other forms by Pydantic",)
    return Parsed(parsed, tuple(_type_error(value, "date_type")), pl.Date(), steps, python)


def parse_datetime(value: Value, schema: dict[str, Any], config: dict[str, Any]) -> Parsed:
    text = value.text
    shape = Helper(
        value.helper("fast_shape"),
        (text.str.len_bytes() == 19) & text.str.contains(FAST_DATETIME_RE),
    )
    fast_shape = pl.col(shape.name)
    fast = text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
    general_value, general_tz = general_datetime(text)
    slow_rows = value.is_str & ~value.absent & ~fast_shape.fill_null(False)
    general = Helper(value.helper("datetime"), general_value, slow_rows)
    offset = Helper(value.helper("has_tz"), general_tz, slow_rows)
    parsed = Helper(
        value.helper("parsed"), pl.when(fast_shape).then(fast).otherwise(pl.col(general.name))
    )
    result = pl.col(parsed.name)
    has_tz = fast_shape.not_() & pl.col(offset.name).fill_null(False)
    rules = _type_error(value, "datetime_type")
    tz = schema.get("tz_constraint")
    if tz == "aware":
        rules.append(
            Rule(
                "timezone_aware",
                result.is_not_null() & ~has_tz,
                message("timezone_aware"),
                describe="has a UTC offset",
            )
        )
    elif tz == "naive":
        rules.append(
            Rule(
                "timezone_naive",
                result.is_not_null() & has_tz,
                message("timezone_naive"),
                describe="has no UTC offset",
            )
        )
    elif tz is not None:
        raise NotImplementedError(f"datetime tz_constraint={tz!r}")
    if schema.get("now_op") is not None:
        raise NotImplementedError("PastDatetime / FutureDatetime")
    python = (value.is_str & ~value.absent & result.is_null()) | _not_decidable(value)
    steps = ("ISO 8601 date[time][offset] vectorized, stored in UTC; other forms by Pydantic",)
    return Parsed(
        result, tuple(rules), pl.Datetime("us"), steps, python, (shape, general, offset, parsed)
    )
