"""Bounds on date, datetime and time fields (ge/gt/le/lt), against Pydantic itself.

Random bounds (naive and aware) and random values in the forms the engine reads vectorized
and those it leaves to Pydantic, as CSV text and as JSON: every value must get Pydantic's
verdict, and an invalid one Pydantic's error type and message (pydantic-core writes the
bound the way speedate prints it, e.g. ``2030-01-01T00:00:00Z``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError, create_model

from engine.validation.fallback import utc_time
from tests.validation.one_field import engine_outcomes

KEYS = ("ge", "gt", "le", "lt")
zones = st.one_of(
    st.none(),
    st.integers(min_value=-14 * 60, max_value=14 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    ),
)
datetimes = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


def bounded(key: str, limit: Any) -> Any:
    constraints: dict[str, Any] = {key: limit}
    return Field(**constraints)


def pydantic_outcome(model: type[BaseModel], value: Any) -> tuple[Any, ...]:
    try:
        return ("ok", model.model_validate({"x": value}).x)  # type: ignore[attr-defined]
    except ValidationError as exc:
        error = exc.errors()[0]
        return ("error", error["type"], error["msg"])


def normalised(outcome: tuple[Any, ...]) -> tuple[Any, ...]:
    if outcome[0] == "ok" and isinstance(outcome[1], datetime) and outcome[1].tzinfo:
        return ("ok", outcome[1].astimezone(UTC).replace(tzinfo=None))
    if outcome[0] == "ok" and isinstance(outcome[1], time) and outcome[1].tzinfo:
        return ("ok", utc_time(outcome[1]))  # stored as UTC wall time (README)
    return outcome


def datetime_texts(moment: datetime, zone: timezone | None) -> list[str]:
    aware = moment.replace(tzinfo=zone) if zone else moment
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    texts = [base, base.replace("T", " "), f"{base}.{moment.microsecond:06d}", base[:16]]
    if zone is not None:
        texts += [aware.isoformat(), f"{base}Z"]
    return texts


def check(model: type[BaseModel], texts: list[str]) -> None:
    for typed in (False, True):
        got = engine_outcomes(model, texts, typed=typed)
        want = [normalised(pydantic_outcome(model, t)) for t in texts]
        assert list(zip(texts, got, strict=True)) == list(zip(texts, want, strict=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(KEYS),
    bound=datetimes,
    bound_zone=zones,
    values=st.lists(st.tuples(datetimes, zones), min_size=1, max_size=8),
    near=st.lists(st.integers(min_value=-2, max_value=2), min_size=1, max_size=4),
)
def test_datetime_bounds(
    key: str,
    bound: datetime,
    bound_zone: timezone | None,
    values: list[tuple[datetime, timezone | None]],
    near: list[int],
) -> None:
    limit = bound.replace(tzinfo=bound_zone) if bound_zone else bound
    model = create_model("When", x=(datetime, bounded(key, limit)))
    # Values right at the bound too (a second either side, in the bound's own zone or none).
    values = values + [(bound + timedelta(seconds=n), bound_zone) for n in near]
    texts = [t for moment, zone in values for t in datetime_texts(moment, zone)]
    check(model, texts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(KEYS),
    bound=st.dates(min_value=date(1, 1, 2), max_value=date(9999, 12, 30)),
    values=st.lists(st.dates(), min_size=1, max_size=8),
    near=st.lists(st.integers(min_value=-1, max_value=1), min_size=1, max_size=3),
)
def test_date_bounds(key: str, bound: date, values: list[date], near: list[int]) -> None:
    model = create_model("Day", x=(date, bounded(key, bound)))
    values = values + [bound + timedelta(days=n) for n in near]
    texts = [d.isoformat() for d in values] + [f"{d.isoformat()}T00:00:00" for d in values]
    check(model, texts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.sampled_from(KEYS),
    bound=st.times(),
    bound_zone=zones,
    values=st.lists(st.tuples(st.times(), zones), min_size=1, max_size=8),
)
def test_time_bounds(
    key: str, bound: time, bound_zone: timezone | None, values: list[tuple[time, timezone | None]]
) -> None:
    model = create_model("Clock", x=(time, bounded(key, bound.replace(tzinfo=bound_zone))))
    texts = [t.replace(tzinfo=z).isoformat() for t, z in values] + [bound.isoformat()]
    check(model, texts)


def test_the_reported_bounds_are_enforced_on_both_paths() -> None:
    model = create_model(
        "Reported",
        x=(date, Field(ge=date(2000, 1, 1))),
    )
    assert engine_outcomes(model, ["1999-12-31", "2000-01-01"], typed=False) == [
        ("error", "greater_than_equal", "Input should be greater than or equal to 2000-01-01"),
        ("ok", date(2000, 1, 1)),
    ]
    later = create_model("Later", x=(datetime, Field(lt=datetime(2030, 1, 1, tzinfo=UTC))))
    assert engine_outcomes(later, ["2030-01-01T00:00:00Z", "2029-12-31T23:59:59"], typed=True) == [
        ("error", "less_than", "Input should be less than 2030-01-01T00:00:00Z"),
        ("ok", datetime(2029, 12, 31, 23, 59, 59)),
    ]
