"""``engine.validate`` against Pydantic itself: generated frames and rows, row by row.

The oracle is ``Model.model_validate(row)`` with ``row`` as ``frame.iter_rows(named=True)``
gives it (None for a null, Python ints, floats, strings, bools, dates, datetimes, decimals):
the same verdict, the same values, the same errors in the same order (type, loc, msg, and
the input, which the engine gives as JSON text).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

import engine
from engine.errors import ConfigError, SourceError
from tests.conftest import ROOT
from tests.parity import _comparable


class Lax(BaseModel):
    i: int
    f: float | None = None
    s: str = Field(default="none", max_length=6)
    b: bool | None = None
    d: date | None = None
    t: datetime | None = None
    c: time | None = None
    m: Decimal | None = Field(None, max_digits=9, decimal_places=2, ge=0)
    n: int = Field(0, ge=0, le=1000)


class Strict(BaseModel):
    model_config = ConfigDict(strict=True)

    i: int | None = None
    f: float | None = None
    t: datetime | None = None
    d: date | None = None
    s: str | None = None


class Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    i: int = Field(gt=0)
    t: AwareDatetime | None = None
    s: str | None = None


MODELS = (Lax, Strict, Forbid)
NAMES = ("i", "f", "s", "b", "d", "t", "c", "m", "n", "extra", "other")

STRINGS = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "-3",
            " 42 ",
            "1.5",
            "1e3",
            "nan",
            "true",
            "no",
            "abc",
            "2024-01-02",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05+01:00",
            "12:30:00",
            "7.25",
            "1_000",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
)
NAIVE = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
RECENT = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(2100, 1, 1))
DECIMALS = st.decimals(
    min_value=Decimal("-99999999.99"), max_value=Decimal("99999999.99"), places=2
)

# dtype -> values of it
COLUMNS: list[tuple[pl.DataType, st.SearchStrategy[Any]]] = [
    (pl.Int64(), st.one_of(st.integers(-5, 1005), st.integers(-(2**63), 2**63 - 1))),
    (pl.Int32(), st.integers(-(2**31), 2**31 - 1)),
    (pl.UInt8(), st.integers(0, 255)),
    (pl.Float64(), st.floats(allow_nan=True, allow_infinity=True)),
    (pl.Float64(), st.sampled_from([0.0, -0.0, 1.0, 2.5, 1e20, 3.0, 1000.0, -1.0])),
    (pl.Float32(), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    (pl.String(), STRINGS),
    (pl.Boolean(), st.booleans()),
    (pl.Date(), st.dates()),
    (pl.Datetime("us"), NAIVE),
    (pl.Datetime("ns"), RECENT),
    (pl.Datetime("us", "UTC"), RECENT),
    (pl.Datetime("ms", "Europe/Paris"), RECENT),
    # Local mean time: offsets with seconds (Paris +00:09:21 until 1911).
    (pl.Datetime("us", "Europe/Paris"), st.datetimes(datetime(1800, 1, 1), datetime(1950, 1, 1))),
    (pl.Time(), st.times()),
    (pl.Decimal(10, 2), DECIMALS),
    (pl.Null(), st.none()),
]


@st.composite
def frames(draw: st.DrawFn) -> pl.DataFrame:
    """1-12 rows of a few columns (field names and extra names), each of any dtype."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    height = draw(st.integers(1, 12))
    columns = {}
    for name in names:
        dtype, values = draw(st.sampled_from(COLUMNS))
        cells = draw(st.lists(st.one_of(st.none(), values), min_size=height, max_size=height))
        if isinstance(dtype, pl.Datetime):  # naive datetimes: the zone's wall time in UTC
            series = pl.Series(name, cells, dtype=pl.Datetime("us"))
            if dtype.time_zone is not None:
                series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
            columns[name] = series.dt.cast_time_unit(dtype.time_unit)
        else:
            columns[name] = pl.Series(name, cells, dtype=dtype)
    return pl.DataFrame(columns)


def _same_input(got: Any, expected: Any) -> bool:
    """The engine's input (JSON text, read back) against Pydantic's (a Python value)."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(_same_input(got[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list | tuple):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_same_input(g, e) for g, e in zip(got, expected, strict=True))
        )
    if isinstance(expected, float):
        if math.isnan(expected):
            return isinstance(got, float) and math.isnan(got)
        return type(got) in (int, float) and got == expected
    if isinstance(expected, Decimal):
        return isinstance(got, str) and bool(Decimal(got) == expected)
    if isinstance(expected, datetime):
        if not isinstance(got, str):
            return False
        found = datetime.fromisoformat(got)
        # The same instant and offset. Not ``==``: between two time zones Python calls an
        # ambiguous wall time (a DST fold, 02:00 in Paris on 2024-10-27) unequal to anything.
        return (
            found.timestamp() == expected.timestamp() and found.utcoffset() == expected.utcoffset()
        )
    if isinstance(expected, date | time):
        return bool(got == expected.isoformat())
    return type(got) is type(expected) and bool(got == expected)


def expected_rows(model: type[BaseModel], rows: list[Any]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for row in rows:
        try:
            instance = model.model_validate(row)
        except ValidationError as exc:
            errors = [
                (e["type"], [str(p) for p in e["loc"]], e["msg"], e["input"])
                for e in exc.errors(include_url=False)
            ]
            outcomes.append((False, errors))
            continue
        outcomes.append((True, {k: _comparable(getattr(instance, k)) for k in model.model_fields}))
    return outcomes


def check(model: type[BaseModel], result: engine.Validation, rows: list[Any]) -> None:
    expected = expected_rows(model, rows)
    valid = iter(result.valid.iter_rows(named=True))
    invalid = {row["row_number"]: row["errors"] for row in result.invalid.iter_rows(named=True)}
    assert result.rows == len(rows)
    assert result.valid_rows + result.invalid_rows == len(rows)
    for number, (ok, want) in enumerate(expected, start=1):
        if ok:
            assert number not in invalid, (number, rows[number - 1], invalid.get(number))
            got = {k: _comparable(v) for k, v in next(valid).items()}
            assert got == want, (number, rows[number - 1])
            continue
        assert number in invalid, (number, rows[number - 1], want)
        errors = invalid[number]
        assert [(e["type"], e["loc"], e["msg"]) for e in errors] == [w[:3] for w in want], (
            number,
            rows[number - 1],
        )
        for error, wanted in zip(errors, want, strict=True):
            assert _same_input(json.loads(error["input"]), wanted[3]), (error, wanted)
    assert next(valid, None) is None


PARITY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PARITY
@given(frame=frames(), model=st.sampled_from(MODELS))
def test_frames_get_pydantics_verdicts(frame: pl.DataFrame, model: type[BaseModel]) -> None:
    """Ints, floats (NaN, infinities, Float32), strings, bools, nulls, dates, datetimes
    (naive, UTC, Paris, ns), times and decimals, fields missing and extra columns, lax and
    strict models: the verdict, the values and the errors of ``model_validate(row)``."""
    result = engine.validate(frame, model)
    check(model, result, list(frame.iter_rows(named=True)))
    if result.invalid_rows:
        inputs = result.invalid.drop("row_number", "errors")
        numbers = [n - 1 for n in result.invalid["row_number"]]
        assert inputs.equals(frame[numbers])


PLAIN_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    STRINGS,
    st.booleans(),
)
OTHER_VALUES = st.one_of(
    NAIVE,
    RECENT.map(lambda v: v.replace(tzinfo=timezone(timedelta(hours=-3)))),
    st.dates(),
    st.times(),
    DECIMALS,
    st.tuples(st.integers(0, 3)),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
)
ROWS = st.lists(
    st.one_of(
        st.dictionaries(st.sampled_from(NAMES), st.one_of(PLAIN_VALUES, OTHER_VALUES), max_size=5),
        st.sampled_from([5, "text", None, [1, 2]]),
    ),
    min_size=1,
    max_size=10,
)


@PARITY
@given(rows=ROWS, model=st.sampled_from(MODELS))
def test_dicts_get_pydantics_verdicts(rows: list[Any], model: type[BaseModel]) -> None:
    """Dicts of JSON's own values and of others (datetimes, decimals, tuples, nested), and
    rows that are not dicts at all (``model_type``)."""
    result = engine.validate(rows, model)
    check(model, result, rows)
    for row in result.invalid.iter_rows(named=True):
        given = rows[row["row_number"] - 1]
        assert _plain(json.loads(row["raw"])) == json.loads(json.dumps(_plain(given)))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None  # NaN != NaN: compared as null on both sides
    return value


def test_result_shape_and_counts() -> None:
    frame = pl.DataFrame(
        {
            "i": [1, None, 3, -1],
            "t": [datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris"))] * 4,
            "s": ["a", "b", None, "d"],
        }
    )
    result = engine.validate(frame, Forbid)
    # Typed as stored: an int without bounds as DECIMAL(38,0), an aware datetime in UTC.
    assert result.valid.schema == pl.Schema(
        {"i": pl.Decimal(38, 0), "t": pl.Datetime("us"), "s": pl.String()}
    )
    assert result.valid.rows() == [
        (Decimal(1), datetime(2023, 12, 31, 23), "a"),
        (Decimal(3), datetime(2023, 12, 31, 23), None),
    ]
    assert result.invalid.columns == ["row_number", "i", "t", "s", "errors"]
    assert result.invalid.select("row_number", "i", "errors").rows() == [
        (
            2,
            None,
            [
                {
                    "type": "int_type",
                    "loc": ["i"],
                    "msg": "Input should be a valid integer",
                    "input": "null",
                }
            ],
        ),
        (
            4,
            -1,
            [
                {
                    "type": "greater_than",
                    "loc": ["i"],
                    "msg": "Input should be greater than 0",
                    "input": "-1",
                }
            ],
        ),
    ]
    assert (result.rows, result.valid_rows, result.invalid_rows) == (4, 2, 2)
    assert result.error_counts == {("i", "int_type"): 1, ("i", "greater_than"): 1}


class Limited(BaseModel):
    n: int

    @field_validator("n")
    @classmethod
    def within(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {})["limit"]
        if limit is True:  # the default limit
            limit = 3
        elif isinstance(limit, list):
            limit = len(limit)
        if value > limit:
            raise ValueError("over the limit")
        return value


def test_each_context_gets_its_own_validator() -> None:
    """The compiled model is kept per (model, context): a later call with another context, an
    equal but differently typed one (``True == 1``) or an unhashable one is not answered from
    an earlier one's."""
    rows = [{"n": 1}, {"n": 2}, {"n": 5}]

    def invalid(context: dict[str, Any]) -> list[int]:
        return engine.validate(rows, Limited, context=context).invalid["row_number"].to_list()

    assert invalid({"limit": 4}) == [3]
    assert invalid({"limit": 1}) == [2, 3]
    assert invalid({"limit": 4}) == [3]
    assert invalid({"limit": True}) == [3]  # equal to 1, but the default limit
    assert invalid({"limit": 1.5}) == [2, 3]
    assert invalid({"limit": [0, 0, 0, 0]}) == [3]
    assert invalid({"limit": [0]}) == [2, 3]
    for context in ({"limit": 1}, {"limit": True}, {"limit": [0, 0]}):
        expected = [
            number for number, row in enumerate(rows, 1) if not _accepts(Limited, row, context)
        ]
        assert invalid(context) == expected


def _accepts(model: type[BaseModel], row: dict[str, Any], context: dict[str, Any]) -> bool:
    try:
        model.model_validate(row, context=context)
    except ValidationError:
        return False
    return True


def test_pandas_and_arrow_inputs() -> None:
    """pandas goes through ``pl.from_pandas`` (its NaN and None are nulls); Arrow through
    ``pl.from_arrow``: tables and record batches alike."""
    data = {"i": [1, 0, 7], "s": ["x", None, "toolong!"]}
    expected = [(2, [("greater_than", ["i"])]), (3, [("string_too_long", ["s"])])]
    lax = {"i": [1.0, float("nan")], "s": ["a", "b"]}
    for frame in (
        pd.DataFrame(data),
        pa.table(data),
        pa.RecordBatch.from_pydict(data),
        pl.DataFrame(data).lazy(),
    ):
        result = engine.validate(frame, _Short)
        found = [
            (row["row_number"], [(e["type"], e["loc"]) for e in row["errors"]])
            for row in result.invalid.iter_rows(named=True)
        ]
        assert found == expected, type(frame)
    # A documented difference: pandas' NaN is a missing value (null), not float("nan").
    result = engine.validate(pd.DataFrame(lax), Lax)
    [errors] = result.invalid["errors"].to_list()
    assert [(e["type"], e["input"]) for e in errors] == [("int_type", "null")]
    with pytest.raises(ValidationError) as raised:
        Lax.model_validate(pd.DataFrame(lax).to_dict("records")[1])
    assert [e["type"] for e in raised.value.errors()] == ["finite_number"]


def test_documented_differences_of_rows_in_memory() -> None:
    """A model instance as a row is ``model_type`` (Pydantic takes it as it is); a unique
    key is the stored table's, not checked by ``validate``."""
    instance = _Short(i=1, s=None)
    assert _Short.model_validate(instance) is instance
    result = engine.validate([instance, {"i": 2}], _Short)
    assert result.invalid.select("row_number", "raw").rows() == [(1, '{"i":1,"s":null}')]
    assert [e["type"] for e in result.invalid["errors"][0]] == ["model_type"]
    from schemas.orders import Order

    keys = Order.__unique__
    order = {
        "Order ID": "ORD-1",
        "customer": "Ada",
        "quantity": 1,
        "unit_price": "2.50",
        "ordered_at": "2024-01-01T00:00:00",
    }
    Order.model_validate(order)
    twice = engine.validate([order, order], Order)
    assert (keys, twice.valid_rows) == (("order_id",), 2)
    # A key that is not a string is named as the row's JSON object names it.
    with pytest.raises(ValidationError) as refused:
        Forbid.model_validate({"i": 1, 5: "x"})
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [("invalid_key", (5,))]
    odd = engine.validate([{"i": 1, 5: "x"}], Forbid)
    assert [(e["type"], e["loc"]) for e in odd.invalid["errors"][0]] == [("invalid_key", ["5"])]


class _Short(BaseModel):
    i: int = Field(gt=0)
    s: str | None = Field(None, max_length=4)


def test_a_name_the_result_needs_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        engine.validate(pl.DataFrame({"i": [1], "errors": ["x"]}), Lax)
    assert str(raised.value) == (
        "the input has a column named 'errors', which the invalid rows use; rename it"
    )
    with pytest.raises(ConfigError) as raised:
        engine.validate("not rows", Lax)
    assert str(raised.value) == (
        "validate takes a DataFrame, an Arrow table or record batch, or an iterable of dicts, "
        "not a str"
    )


def test_arguments_it_cannot_take_are_one_line_errors() -> None:
    with pytest.raises(ConfigError) as raised:
        engine.validate(None, Lax)
    assert str(raised.value) == (
        "validate takes a DataFrame, an Arrow table or record batch, or an iterable of dicts, "
        "not a NoneType"
    )
    with pytest.raises(ConfigError) as raised:
        engine.validate([{"i": 1}], Lax, context=[1, 2])  # type: ignore[arg-type]
    assert str(raised.value) == "validate takes a context that is a mapping (a dict), not a list"
    with pytest.raises(SourceError) as refused:
        engine.validate(pd.DataFrame([[2, 4]], columns=["i", "i"]), Lax)
    assert str(refused.value) == (
        "python:frame, column 'i': the frame has more than one column named 'i' "
        "(rename the columns so that each name is used once)"
    )


def test_importing_engine_loads_neither_the_server_nor_kafka() -> None:
    """``import engine`` (and using it) never pulls in FastAPI, uvicorn or confluent-kafka."""
    code = (
        "import sys, engine, polars as pl\n"
        "from schemas.transactions import Transaction\n"
        "engine.validate(pl.DataFrame({'external_id': ['a']}), Transaction)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('fastapi', 'uvicorn', 'starlette', 'confluent_kafka', 'engine'))\n"
        "print(' '.join(m for m in heavy if not m.startswith('engine.') or "
        "m.startswith(('engine.api', 'engine.streaming', 'engine.cli'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert done.stdout.strip() == "engine"


def test_arrow_timestamps_in_a_fixed_offset_zone_are_one_line() -> None:
    """Arrow allows a fixed-offset zone ("+05:30"), Polars does not: the same one line as a
    Parquet file with such a column, not a Polars traceback."""
    table = pa.table({"ts": pa.array([datetime(2024, 1, 1)], pa.timestamp("us", tz="+05:30"))})
    with pytest.raises(SourceError) as raised:
        engine.validate(table, "transactions")
    assert str(raised.value) == (
        "python:frame, column 'ts': its timestamps are in the time zone '+05:30', which Polars "
        "cannot hold (it reads named zones only) (write the column in UTC or in a named time zone)"
    )


class Stamped(BaseModel):
    at: datetime


def test_zoned_datetimes_with_offsets_in_seconds_are_pydantics_verdict() -> None:
    """Before 1911 Paris kept local mean time (+00:09:21): the text of such a value is
    refused by every datetime parser, the value itself is a datetime to Pydantic."""
    paris = ZoneInfo("Europe/Paris")
    values = [datetime(1900, 1, 1, 12, tzinfo=paris), datetime(2000, 1, 1, 12, tzinfo=paris)]
    frame = pl.DataFrame({"at": pl.Series(values, dtype=pl.Datetime("us", "Europe/Paris"))})
    result = engine.validate(frame, Stamped)
    expected = [Stamped.model_validate(row).at for row in frame.iter_rows(named=True)]
    assert expected[0].utcoffset() == timedelta(minutes=9, seconds=21)
    assert result.valid["at"].to_list() == [
        e.astimezone(UTC).replace(tzinfo=None) for e in expected
    ]
    assert result.valid["at"].to_list() == [
        datetime(1900, 1, 1, 11, 50, 39),
        datetime(2000, 1, 1, 11),
    ]
    assert result.invalid.height == 0


def test_a_pandas_column_of_several_types_is_one_line_naming_it() -> None:
    """Arrow holds one type per column: such a frame is refused in one line naming the
    column and what it holds; as dicts the values get Pydantic's verdicts."""

    class Mixed(BaseModel):
        b: str
        a: int | None

    frame = pd.DataFrame({"b": ["x", "y"], "a": [1, "2"]}, dtype=object)
    with pytest.raises(SourceError) as raised:
        engine.validate(frame, Mixed)
    assert str(raised.value) == (
        "python:frame, column 'a': a column holds values of several types (int, str), which "
        "one Arrow column cannot hold (Could not convert '2' with type str: tried to convert "
        "to int64) (cast the column to one type, or pass df.to_dict('records') to validate "
        "the values as they are)"
    )
    rows = frame.to_dict("records")
    assert engine.validate(rows, Mixed).valid.rows() == [("x", 1), ("y", 2)]
    assert [Mixed.model_validate(r).a for r in rows] == [1, 2]
