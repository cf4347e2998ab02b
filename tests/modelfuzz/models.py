"""Hypothesis strategies over models: every type, constraint, config option, alias form,
default and validator the README lists as supported, in random combinations."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal
from typing import Any, Literal

from hypothesis import strategies as st

from tests.modelfuzz.spec import (
    ORDERED,
    Default,
    FieldSpec,
    Kind,
    ModelCheck,
    ModelSpec,
    Validator,
)
from tests.modelfuzz.values import PATTERN_SAMPLES

KINDS: tuple[Kind, ...] = (
    "str",
    "int",
    "float",
    "bool",
    "decimal",
    "date",
    "datetime",
    "aware",
    "naive",
    "time",
    "uuid",
    "enum",
    "literal",
)
NAMES = ["amount", "code", "label", "qty", "price", "day", "moment", "clock", "ident", "flag"]
NAMES += ["level", "mode", "ratio", "note", "größe", "naïve", "x", "Y", "zeta", "kind"]
ALIASES = ["Order ID", "amount (EUR)", "größe", "first.name", "Col-1", "ID", "naïve", "x y z"]
ALIASES += ["日付", "UPPER", "with,comma", 'quo"te', " padded", "tab\there", "label"]
UTC = datetime.UTC
PLUS_ONE = datetime.timezone(datetime.timedelta(hours=1))

INT_BOUNDS = [0, 1, -1, 5, 100, -100, 127, 10**6, 2**31, 2**63 - 1, -(2**63), 2**63, 10**38 - 1]
FLOAT_BOUNDS = [0.0, 0.1, -1.5, 1.0, 1e3, 1e6, 1e308, -1e-300, 2.5]
DECIMAL_BOUNDS = ["0", "0.01", "-1.5", "1", "10", "99.99", "1000", "0.5"]
DATE_BOUNDS = [
    datetime.date(2000, 1, 1),
    datetime.date(1, 1, 1),
    datetime.date(9999, 12, 31),
    datetime.date(2024, 2, 29),
    datetime.date(1970, 1, 1),
]
DATETIME_BOUNDS = [
    datetime.datetime(2000, 1, 1),
    datetime.datetime(2024, 2, 29, 12, 30),
    datetime.datetime(1970, 1, 1),
    datetime.datetime(1, 1, 1, 0, 30),
    datetime.datetime(9999, 12, 31, 23, 0),
    datetime.datetime(2000, 1, 1, tzinfo=UTC),
    datetime.datetime(2024, 2, 29, 12, 30, 0, 500000, tzinfo=PLUS_ONE),
]
TIME_BOUNDS = [
    datetime.time(12),
    datetime.time(0, 0, 0, 1),
    datetime.time(23, 59, 59, 999999),
    datetime.time(10, 20, 30),
    datetime.time(9, tzinfo=UTC),
]


def _bounds(draw: st.DrawFn, values: list[Any]) -> list[tuple[str, Any]]:
    """Zero to two of gt/ge/lt/le, usually a consistent lower and upper bound."""
    lower, upper = sorted(draw(st.lists(st.sampled_from(values), min_size=2, max_size=2)), key=_key)
    out: list[tuple[str, Any]] = []
    if draw(st.booleans()):
        out.append((draw(st.sampled_from(["gt", "ge"])), lower))
    if draw(st.booleans()):
        out.append((draw(st.sampled_from(["lt", "le"])), upper))
    return out


def _key(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, datetime.time):
        return value.replace(tzinfo=None)
    return value


@st.composite
def constraints(draw: st.DrawFn, kind: Kind) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if kind == "int":
        out += _bounds(draw, INT_BOUNDS)
        if draw(st.integers(0, 3)) == 0:
            out.append(("multiple_of", draw(st.sampled_from([2, 3, 5, 10, 7, 10**20]))))
    elif kind == "float":
        out += _bounds(draw, FLOAT_BOUNDS)
        if draw(st.integers(0, 3)) == 0:
            out.append(("multiple_of", draw(st.sampled_from([0.5, 0.25, 0.1, 3.0]))))
        if draw(st.booleans()):
            out.append(("allow_inf_nan", draw(st.booleans())))
    elif kind == "decimal":
        places = draw(st.integers(0, 4))
        if draw(st.booleans()):
            out.append(("max_digits", draw(st.integers(max(places, 1), places + 12))))
        out.append(("decimal_places", places))
        out += [(k, Decimal(v)) for k, v in _bounds(draw, DECIMAL_BOUNDS)]
        if draw(st.integers(0, 3)) == 0:
            out.append(("multiple_of", Decimal(draw(st.sampled_from(["0.05", "2", "0.5"])))))
    elif kind == "date":
        out += _bounds(draw, DATE_BOUNDS)
    elif kind in ("datetime", "aware", "naive"):
        out += _bounds(draw, DATETIME_BOUNDS)
    elif kind == "time":
        out += _bounds(draw, TIME_BOUNDS)
    elif kind == "str":
        low = draw(st.one_of(st.none(), st.integers(0, 4)))
        high = draw(st.one_of(st.none(), st.integers(max(low or 0, 1), 8)))
        if low is not None:
            out.append(("min_length", low))
        if high is not None:
            out.append(("max_length", high))
        if draw(st.integers(0, 2)) == 0:
            out.append(("pattern", draw(st.sampled_from(sorted(PATTERN_SAMPLES)))))
    return out


@st.composite
def choices(draw: st.DrawFn, kind: Kind) -> tuple[tuple[Any, ...], str]:
    if kind == "enum":
        base = draw(st.sampled_from(["StrEnum", "IntEnum", "Enum", "str, Enum"]))
        if base == "IntEnum" or (base == "Enum" and draw(st.booleans())):
            pool: list[Any] = [0, 1, 2, -1, 10, 255]
        else:
            pool = ["red", "Green", "a b", "é", "1", "0", "USD"]
        return tuple(
            draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        ), base
    flavour = draw(st.sampled_from(["str", "int", "bool"]))
    if flavour == "bool":
        return tuple(draw(st.sampled_from([[True], [False], [True, False]]))), ""
    pool = ["a", "b", "A", "yes", "1", "é"] if flavour == "str" else [0, 1, 2, -7, 42]
    return tuple(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))), ""


def _default_value(spec: FieldSpec, draw: st.DrawFn) -> Any:
    kind = spec.kind
    if spec.choices:
        return draw(st.sampled_from(spec.choices))
    places = spec.constraint("decimal_places") or 0
    pool: dict[str, list[Any]] = {
        "str": ["dflt", "", " x "],
        "int": [0, 5, -1, 10**20],
        "float": [0.5, 0.0, -2.0, 1e300],
        "bool": [True, False],
        "decimal": [Decimal("1").scaleb(-places), Decimal(0), Decimal("-3")],
        "date": [datetime.date(2020, 1, 1)],
        "datetime": [
            datetime.datetime(2020, 1, 1, 10),
            datetime.datetime(2020, 1, 1, tzinfo=PLUS_ONE),
        ],
        "aware": [datetime.datetime(2020, 1, 1, tzinfo=PLUS_ONE)],
        "naive": [datetime.datetime(2020, 6, 1, 12, 0, 1)],
        "time": [datetime.time(8, 30), datetime.time(0, 30, tzinfo=PLUS_ONE)],
        "uuid": [uuid.UUID("12345678-1234-4678-8234-567812345678")],
    }
    return draw(st.sampled_from(pool[kind]))


RULES: dict[str, list[tuple[str, Any]]] = {
    "str": [("contains", "x"), ("longer", 3)],
    "int": [("above", 10), ("above", -1)],
    "float": [("above", 2.5)],
    "decimal": [("above", Decimal("1.5"))],
    "bool": [("true", None)],
    "date": [("weekend", None)],
    "datetime": [("second", 13)],
    "aware": [("second", 13)],
    "naive": [("second", 13)],
    "time": [("second", 13)],
}
PLAIN_RULES: dict[str, tuple[str, Any]] = {"uuid": ("prefix", "0"), "enum": ("equals", None)}


@st.composite
def validators(draw: st.DrawFn, spec: FieldSpec) -> Validator | None:
    if draw(st.integers(0, 3)) != 0:
        return None
    modes: list[Literal["after", "before", "annotated"]] = ["after", "after", "annotated", "before"]
    mode = draw(st.sampled_from(modes))
    if mode == "before":
        return Validator("before", False, "raw_contains", "9")
    if spec.kind in RULES:
        rule, arg = draw(st.sampled_from(RULES[spec.kind]))
        return Validator(
            mode, draw(st.booleans()), rule, arg, spec.kind == "str" and draw(st.booleans())
        )
    rule, arg = PLAIN_RULES.get(spec.kind, ("equals", None))
    return Validator(mode, False, rule, spec.choices[0] if rule == "equals" else arg)


@st.composite
def fields(draw: st.DrawFn, name: str, aliases: list[str]) -> FieldSpec:
    kind = draw(st.sampled_from(KINDS))
    picked, base = draw(choices(kind)) if kind in ("enum", "literal") else ((), "")
    alias: str | tuple[str, ...] | None = None
    form = draw(st.integers(0, 5))
    if form == 0 and aliases:
        alias = aliases.pop()
    elif form == 1 and len(aliases) >= 2:
        alias = (aliases.pop(), aliases.pop())
    ops: tuple[str, ...] = ()
    if kind == "str" and draw(st.integers(0, 3)) == 0:
        ops = tuple(
            draw(
                st.sampled_from(
                    [
                        ("strip_whitespace",),
                        ("to_upper",),
                        ("to_lower",),
                        ("strip_whitespace", "to_lower"),
                    ]
                )
            )
        )
    spec = FieldSpec(
        name=name,
        kind=kind,
        optional=draw(st.integers(0, 2)) == 0,
        constraints=tuple(draw(constraints(kind))),
        string_ops=ops,
        placement=draw(st.sampled_from(["field", "annotated", "types"])),
        # Pydantic refuses strict on a Literal ("Unable to apply constraint 'strict'").
        strict=None
        if kind == "literal"
        else draw(st.sampled_from([None, None, None, True, False])),
        strict_in_annotated=draw(st.booleans()),
        alias=alias,
        uuid_version=draw(st.sampled_from([None, None, 1, 3, 4, 5, 6, 7, 8]))
        if kind == "uuid"
        else None,
        choices=picked,
        enum_base=base,
    )
    default = draw(st.integers(0, 3))
    if default == 0 and spec.optional:
        spec = _replace(spec, default=Default(None))
    elif default == 1:
        spec = _replace(spec, default=Default(_default_value(spec, draw), draw(st.booleans())))
    return _replace(spec, validator=draw(validators(spec)))


def _replace(spec: FieldSpec, **changes: Any) -> FieldSpec:
    from dataclasses import replace

    return replace(spec, **changes)


@st.composite
def model_specs(draw: st.DrawFn) -> ModelSpec:
    count = draw(st.integers(1, 8))
    words = draw(st.lists(st.sampled_from(NAMES), min_size=count, max_size=count, unique=True))
    names = [f"{w}{i}" if draw(st.booleans()) else w for i, w in enumerate(words)]
    aliases = [a for a in draw(st.permutations(ALIASES)) if a not in names]
    drawn = tuple(draw(fields(name, aliases)) for name in names)
    check = None
    pairs = [
        (a.name, b.name)
        for a in drawn
        for b in drawn
        if a is not b and a.kind == b.kind and a.kind in ("int", "date", "str", "decimal", "float")
    ]
    if pairs and draw(st.integers(0, 2)) == 0:
        left, right = draw(st.sampled_from(pairs))
        check = ModelCheck(left, right, draw(st.booleans()))
    keyed = [
        f.name for f in drawn if f.kind in ("str", "int") and not f.optional and f.default is None
    ]
    unique = draw(st.sampled_from(keyed)) if keyed and draw(st.integers(0, 5)) == 0 else None
    return ModelSpec(
        fields=drawn,
        extra=draw(st.sampled_from([None, "ignore", "forbid", "allow"])),
        strip=draw(st.integers(0, 3)) == 0,
        strict=draw(st.integers(0, 9)) == 0,
        by_name=draw(st.sampled_from([None, None, "populate_by_name", "validate_by_name"])),
        check=check,
        unique=unique,
    )


assert set(ORDERED) <= set(KINDS)
