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

from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any

import polars as pl

from engine.batch import Kind
from engine.validation.common import message
from engine.validation.rules import Helper, Parsed, Rule, Unsupported, Value
from engine.validation.temporal_bounds import (
    FIRST_INSTANT,
    LAST_INSTANT,
    bound_rules,
    datetime_sides,
    speedate_datetime,
    speedate_time,
)

# ASCII digits only, as Pydantic (speedate) reads them: a regex's \d is any Unicode digit
# in Polars (Rust's regex crate), and would let Arabic-Indic or full-width digits through.
DATE = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
DATETIME_RE = (
    rf"^{DATE}(?:[Tt _]([0-9]{{2}}):([0-9]{{2}})(?::([0-9]{{2}})(?:\.([0-9]{{1,6}}))?)?"
    r"(Z|z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
# Year 0000 parses in chrono but not in Python's datetime: left to Pydantic.
FAST_DATETIME_RE = (
    r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    r"-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]$"
)
DATE_RE = r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-[0-9]{2}-[0-9]{2}$"
# The same, then nothing, ``Z`` or an offset of at most 23:59 (what exports mostly write).
FAST_AWARE_RE = FAST_DATETIME_RE[:-1] + r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$"


def _days_in_month(year: pl.Expr, month: pl.Expr) -> pl.Expr:
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )


OFFSET_RE = r"([Zz]|[+-][0-9]{2}:?[0-9]{2})$"


UTC_FIELD = "utc"
OFFSET_FIELD = "offset"  # minutes east of UTC; null for a naive value


def general_datetime(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """For every form of DATETIME_RE: a struct of the UTC datetime and the UTC offset in
    minutes (both null when invalid; the offset null for a naive value), computed in stages.

    Once the capture-free shape matches, the parts sit at fixed positions; only the optional
    fraction and offset need a small regex each. Staged columns keep Polars from evaluating
    shared sub-expressions over and over."""

    def compute(frame: pl.DataFrame) -> pl.Series:
        t = pl.col("t")

        def number(start: int, length: int) -> pl.Expr:
            return t.str.slice(start, length).cast(pl.Int32, strict=False)

        has_seconds = t.str.slice(16, 1) == ":"
        parts = (
            frame.select(text.alias("t"))
            .with_columns(
                t.str.contains(DATETIME_RE).alias("shaped"),
                number(0, 4).alias("year"),
                number(5, 2).alias("month"),
                number(8, 2).alias("day"),
                pl.when(t.str.len_bytes() > 10).then(number(11, 2)).otherwise(0).alias("hour"),
                pl.when(t.str.len_bytes() > 10).then(number(14, 2)).otherwise(0).alias("minute"),
                pl.when(has_seconds).then(number(17, 2)).otherwise(0).alias("second"),
                pl.when(has_seconds).then(t.str.slice(19)).otherwise(t.str.slice(16)).alias("tail"),
            )
            .with_columns(
                pl.col("tail")
                .str.extract(r"^\.([0-9]+)", 1)
                .str.pad_end(6, "0")
                .cast(pl.Int32, strict=False)
                .fill_null(0)
                .alias("micro"),
                pl.col("tail")
                .str.extract(OFFSET_RE, 1)
                .str.replace_all(":", "", literal=True)
                .alias("offset"),
            )
            .with_columns(
                (pl.col("offset").is_null() | pl.col("offset").is_in(["Z", "z"])).alias("zulu"),
                pl.col("offset").str.slice(1, 2).cast(pl.Int32, strict=False).alias("off_hours"),
                pl.col("offset").str.slice(3, 2).cast(pl.Int32, strict=False).alias("off_minutes"),
            )
            .with_columns(
                (
                    pl.col("shaped")
                    & (pl.col("year") >= 1)
                    & pl.col("month").is_between(1, 12)
                    & (pl.col("day") >= 1)
                    & (pl.col("day") <= _days_in_month(pl.col("year"), pl.col("month")))
                    & (pl.col("hour") <= 23)
                    & (pl.col("minute") <= 59)
                    & (pl.col("second") <= 59)
                    & (
                        pl.col("zulu")
                        | ((pl.col("off_hours") <= 23) & (pl.col("off_minutes") <= 59))
                    )
                )
                .fill_null(False)
                .alias("ok"),
            )
        )
        safe = pl.when(pl.col("ok"))
        sign = pl.when(pl.col("offset").str.starts_with("-")).then(-1).otherwise(1)
        offset_minutes = (
            pl.when(pl.col("offset").is_null())
            .then(None)
            .when(pl.col("zulu"))
            .then(0)
            .otherwise(sign * (pl.col("off_hours") * 60 + pl.col("off_minutes")))
        )
        wall = pl.datetime(
            *(
                safe.then(pl.col(c)).otherwise(d)
                for c, d in (
                    ("year", 1970),
                    ("month", 1),
                    ("day", 1),
                    ("hour", 0),
                    ("minute", 0),
                    ("second", 0),
                    ("micro", 0),
                )
            ),
            time_unit="us",
        )
        utc = wall - pl.duration(minutes=offset_minutes.fill_null(0))
        return parts.select(
            pl.struct(
                pl.when(pl.col("ok")).then(utc).alias(UTC_FIELD),
                pl.when(pl.col("ok")).then(offset_minutes).cast(pl.Int32).alias(OFFSET_FIELD),
            ).alias("v")
        ).to_series()

    return compute


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


SECONDS_RE = r"^-?[0-9]{1,11}$"
MS_WATERSHED = 20_000_000_000  # speedate: larger magnitudes are milliseconds
MIN_TIMESTAMP = -11_676_096_000  # 1600-01-01


def _slow_datetime(text: pl.Expr) -> Callable[[pl.DataFrame], pl.Series]:
    """Whole-second unix timestamps (digits; UTC, so offset 0), else the general ISO forms,
    as ``general_datetime``'s struct.

    Milliseconds, fractions and out-of-range timestamps are left to Pydantic."""
    general = general_datetime(text)

    def compute(frame: pl.DataFrame) -> pl.Series:
        number = pl.when(text.str.contains(SECONDS_RE)).then(text.cast(pl.Int64, strict=False))
        in_range = (number.abs() <= MS_WATERSHED) & (number >= MIN_TIMESTAMP)
        epoch = pl.lit(0).cast(pl.Datetime("us")) + pl.duration(seconds=number)
        seconds = frame.select(
            pl.when(in_range)
            .then(pl.struct(epoch.alias(UTC_FIELD), pl.lit(0, pl.Int32).alias(OFFSET_FIELD)))
            .alias("v")
        ).to_series()
        if seconds.null_count() == 0:
            return seconds
        # Every ISO form starts with a digit: when no value left does ("yesterday"), the
        # general parse would give nulls only.
        digit = frame.select(text.str.contains(r"^[0-9]").fill_null(False)).to_series()
        if not (digit & seconds.is_null()).any():
            return seconds
        return seconds.zip_with(seconds.is_not_null(), general(frame))

    return compute


def parse_date(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    _refuse_now(schema, "PastDate / FutureDate")
    text = value.text
    shaped = (text.str.len_bytes() == 10) & text.str.contains(DATE_RE)
    # A column computed once: the rules, the Python mask and the value all read it.
    date = Helper(
        value.helper("date"), pl.when(shaped).then(text.str.to_date("%Y-%m-%d", strict=False))
    )
    parsed = pl.col(date.name)
    rules = _type_error(value, "date_type")
    rules += bound_rules(schema, lambda bound: (parsed, bound), str)
    python = (value.is_str & ~value.absent & parsed.is_null()) | _not_decidable(value)
    steps = ("YYYY-MM-DD vectorized; other forms by Pydantic",)
    return Parsed(
        value=parsed,
        rules=tuple(rules),
        dtype=pl.Date(),
        steps=steps,
        python=python,
        helpers=(date,),
    )


def parse_datetime(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    _refuse_now(schema, "PastDatetime / FutureDatetime")
    # More than 6 fractional digits ('truncate' or 'error') never take the vectorized path.
    schema.get("microseconds_precision")
    text = value.text
    length = text.str.len_bytes()
    shape = Helper(
        value.helper("fast_shape"),
        length.is_in([19, 20, 25]) & text.str.contains(FAST_AWARE_RE),
    )
    fast_shape = pl.col(shape.name)
    # Parsed alongside the shape check (helpers that read no other helper run in parallel):
    # the wall time is the first 19 characters; then "Z" (offset 0) or "+HH:MM".
    fast_wall = Helper(
        value.helper("fast"),
        text.str.slice(0, 19).str.strptime(
            pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False, cache=False
        ),
    )
    sign = pl.when(text.str.slice(19, 1) == "-").then(-1).otherwise(1)
    minutes = text.str.slice(20, 2).cast(pl.Int32, strict=False) * 60 + text.str.slice(23, 2).cast(
        pl.Int32, strict=False
    )
    fast_offset = Helper(
        value.helper("fast_offset"),
        pl.when(length == 20).then(pl.lit(0, pl.Int32)).when(length == 25).then(sign * minutes),
    )
    fast_utc = pl.col(fast_wall.name) - pl.duration(minutes=pl.col(fast_offset.name).fill_null(0))
    # Everything but the common fixed form: other ISO forms, and unix timestamps (a JSON
    # int or a string of digits) -- computed only on those rows.
    candidates = value.is_str | value.is_kind(Kind.INT)
    slow_rows = candidates & ~value.absent & ~fast_shape.fill_null(False)
    general = Helper.staged(value.helper("datetime"), _slow_datetime(text), text, slow_rows)
    parsed = Helper(
        value.helper("parsed"),
        pl.when(fast_shape).then(fast_utc).otherwise(pl.col(general.name).struct.field(UTC_FIELD)),
    )
    result = pl.col(parsed.name)
    offset = (
        pl.when(fast_shape)
        .then(pl.col(fast_offset.name))
        .otherwise(pl.col(general.name).struct.field(OFFSET_FIELD))
    )
    has_tz = offset.is_not_null()
    wall = result + pl.duration(minutes=offset.fill_null(0))
    rules = _type_error(value, "datetime_type")
    # A date bound on a datetime is its midnight (pydantic-core's reading of it).
    bounds = {
        key: datetime.combine(bound, time()) if type(bound) is date else bound
        for key in ("le", "lt", "ge", "gt")
        if (bound := schema.get(key)) is not None
    }
    rules += bound_rules(
        bounds, lambda bound: datetime_sides(result, wall, has_tz, bound), speedate_datetime
    )
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
        raise Unsupported(f"datetime tz_constraint={tz!r}", "AwareDatetime or NaiveDatetime")
    # A valid value whose UTC instant leaves years 1-9999 cannot be read back: Pydantic
    # decides it, and the fallback reports it as a storage error (as for ints too large).
    outside = (result < pl.lit(FIRST_INSTANT)) | (result > pl.lit(LAST_INSTANT))
    python = ~value.absent & (
        (result.is_null() & (value.is_str | _not_decidable(value))) | outside.fill_null(False)
    )
    steps = (
        "ISO 8601 date[time][offset] and unix seconds vectorized, stored in UTC; other forms by Pydantic",
    )
    return Parsed(
        value=result,
        rules=tuple(rules),
        dtype=pl.Datetime("us"),
        steps=steps,
        python=python,
        helpers=(shape, fast_wall, fast_offset, general, parsed),
    )


TIME_RE = r"^[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?$"


def parse_time(value: Value, schema: Mapping[str, Any], config: Mapping[str, Any]) -> Parsed:
    """``HH:MM[:SS[.ffffff]]`` vectorized; offsets, seconds-since-midnight numbers and anything
    else go to Pydantic (a time with an offset is stored as UTC wall time: DuckDB TIME is naive)."""
    schema.get("microseconds_precision")  # more than 6 digits: never vectorized
    tz = schema.get("tz_constraint")
    text = value.text
    shaped = text.str.contains(TIME_RE)
    hour = text.str.slice(0, 2).cast(pl.Int32, strict=False)
    minute = text.str.slice(3, 2).cast(pl.Int32, strict=False)
    has_seconds = text.str.len_bytes() >= 8
    second = (
        pl.when(has_seconds).then(text.str.slice(6, 2).cast(pl.Int32, strict=False)).otherwise(0)
    )
    micro = (
        pl.when(text.str.len_bytes() > 9)
        .then(text.str.slice(9).str.pad_end(6, "0").cast(pl.Int32, strict=False))
        .otherwise(0)
    )
    ok = (shaped & (hour <= 23) & (minute <= 59) & (second <= 59)).fill_null(False)
    safe = pl.when(ok)
    parsed = pl.when(ok).then(
        pl.time(
            safe.then(hour).otherwise(0),
            safe.then(minute).otherwise(0),
            safe.then(second).otherwise(0),
            safe.then(micro).otherwise(0),
        )
    )
    rules = _type_error(value, "time_type")
    # Vectorized values are naive: speedate compares them with a bound's wall time.
    rules += bound_rules(schema, lambda bound: (parsed, bound.replace(tzinfo=None)), speedate_time)
    if tz == "aware":  # a vectorized value never has an offset
        rules.append(
            Rule(
                "timezone_aware",
                parsed.is_not_null(),
                message("timezone_aware"),
                describe="has a UTC offset",
            )
        )
    elif tz not in (None, "naive"):
        raise Unsupported(f"time tz_constraint={tz!r}", "a time with or without tz_constraint")
    python = (value.is_str & ~value.absent & ~ok) | _not_decidable(value)
    steps = ("HH:MM[:SS[.f]] vectorized; other forms by Pydantic",)
    return Parsed(value=parsed, rules=tuple(rules), dtype=pl.Time(), steps=steps, python=python)


def _refuse_now(schema: Mapping[str, Any], construct: str) -> None:
    if schema.get("now_op") is not None or schema.get("now_utc_offset") is not None:
        raise Unsupported(construct, "a fixed bound (Field(lt=...)) or a validator with a twin")
