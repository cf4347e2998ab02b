"""Adversarial inputs for one field: its constraints' boundaries in many written forms, the
lax forms of its type, whitespace and Unicode, and JSON values of every type."""

from __future__ import annotations

import datetime
import math
import uuid
from decimal import Decimal
from random import Random
from typing import Any

from tests.modelfuzz import atoms
from tests.modelfuzz.spec import FieldSpec

BOUNDS = ("gt", "ge", "lt", "le")
PATTERN_SAMPLES: dict[str, list[str]] = {
    r"^[a-z]+$": ["abc", "ABC", "ab1", "é", "a\n", "ab\n"],
    r"^[A-Z]{2,3}-\d+$": ["AB-1", "ABC-123", "ABCD-1", "ab-1", "AB-\u0661\u0662", "AB-"],
    r"\d": ["a1", "x", "\u0661", "abc"],
    r"^\w+$": ["abc_1", "a b", "größe", "日本", "a-b"],
    r"^[a-zA-Z0-9._%+-]+@[a-z]+\.[a-z]{2,}$": ["a.b@ex.com", "a@ex.c", "a@@ex.com", "A@EX.COM"],
    r"^.{2}$": ["ab", "a\n", "😀😀", "abc", "é"],
    r"abc": ["xabcx", "ABC", "ab c"],
    r"(?i)^ab": ["ABx", "aBc", "xab"],
    r"^[^,]*$": ["a b", "a,b", ""],
    r"^\p{L}+$": ["größe", "abc1", "日本"],
    r"^ORD-[0-9]+$": ["ORD-1", "ORD-", "ord-1", " ORD-1"],
}
STRING_CHARS = ["a", "Z", "é", "😀", "e\u0301", "ß", "İ", " ", "\u00a0", "日"]


def uuid_with_version(rng: Random, version: int) -> uuid.UUID:
    value = rng.getrandbits(128)
    value &= ~(0xF000 << 64)
    value |= version << 76
    value &= ~(0xC000 << 48)
    value |= 0x8000 << 48
    return uuid.UUID(int=value)


def _int_forms(v: int) -> list[str]:
    out = [str(v), f" {v} ", f"{v}.0", f"{v:_}", f"{v}.5", f"{v}e0"]
    if v >= 0:
        out.append(f"+{v}")
    return out


def _float_forms(v: float) -> list[str]:
    return [repr(v), f" {v!r} ", f"{v:e}", f"{v:.17g}"]


def _decimal_forms(v: Decimal, places: int) -> list[str]:
    return [str(v), f"{v:f}", f"{v:.{places + 2}f}", f" {v} ", f"{v:E}"]


def _date_forms(v: datetime.date) -> list[str]:
    midnight = datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.UTC)
    return [
        v.isoformat(),
        f"{v.isoformat()}T00:00:00",
        f"{v.isoformat()}T00:00:00Z",
        f"{v.isoformat()}T00:00:00.000001",
        str(int(midnight.timestamp())),
    ]


def _datetime_forms(v: datetime.datetime) -> list[str]:
    out = [v.isoformat(), v.isoformat(sep=" "), v.isoformat(timespec="microseconds")]
    if v.tzinfo is None:
        out.append(v.isoformat() + "Z")
        aware = v.replace(tzinfo=datetime.UTC)
    else:
        aware = v
        out.append(v.replace(tzinfo=None).isoformat())
    for minutes in (60, -330):
        try:
            shifted = aware.astimezone(datetime.timezone(datetime.timedelta(minutes=minutes)))
            out.append(shifted.isoformat())
        except OverflowError:
            pass
    if aware.microsecond == 0:
        out.append(str(int(aware.timestamp())))
    else:
        out.append(str(aware.timestamp()))
    return out


def _time_forms(v: datetime.time) -> list[str]:
    out = [v.isoformat(), v.isoformat(timespec="microseconds")]
    if v.tzinfo is None:
        out += [v.isoformat() + "Z", v.isoformat() + "+01:00"]
    else:
        out.append(v.replace(tzinfo=None).isoformat())
    return out


def _near(spec: FieldSpec, bound: Any) -> list[Any]:
    """bound - step, bound, bound + step for the field's type."""
    if isinstance(bound, bool):
        return [bound]
    if spec.kind == "int":
        return [bound - 1, bound, bound + 1]
    if spec.kind == "float":
        b = float(bound)
        return [math.nextafter(b, -math.inf), b, math.nextafter(b, math.inf), b - 0.5, b + 0.5]
    if spec.kind == "decimal":
        unit = Decimal(1).scaleb(-(spec.constraint("decimal_places") or 0))
        at = Decimal(bound)
        return [at - unit, at, at + unit, at + unit / 10]
    if spec.kind == "date":
        day = datetime.timedelta(days=1)
        return [d for d in (_shift(bound, -day), bound, _shift(bound, day)) if d is not None]
    if spec.kind in ("datetime", "aware", "naive"):
        out = [bound]
        for delta in (-1, 1, 1_000_000):
            moved = _shift(bound, datetime.timedelta(microseconds=delta))
            if moved is not None:
                out.append(moved)
        return out
    if spec.kind == "time":
        base = datetime.datetime.combine(datetime.date(2000, 1, 2), bound)
        return [(base + datetime.timedelta(microseconds=d)).timetz() for d in (-1, 0, 1)]
    return [bound]


def _shift(value: Any, delta: datetime.timedelta) -> Any:
    try:
        return value + delta
    except OverflowError:
        return None


def _forms(spec: FieldSpec, value: Any) -> list[str]:
    if spec.kind == "int":
        return _int_forms(value)
    if spec.kind == "float":
        return _float_forms(value)
    if spec.kind == "decimal":
        return _decimal_forms(value, spec.constraint("decimal_places") or 0)
    if spec.kind == "date":
        return _date_forms(value)
    if spec.kind in ("datetime", "aware", "naive"):
        return _datetime_forms(value)
    if spec.kind == "time":
        return _time_forms(value)
    return [str(value)]


def boundary_values(spec: FieldSpec) -> list[Any]:
    """Typed values at and around every bound and step of the field's constraints."""
    out: list[Any] = []
    for key in BOUNDS:
        bound = spec.constraint(key)
        if bound is not None:
            out.extend(_near(spec, bound))
    step = spec.constraint("multiple_of")
    if step is not None and spec.kind in ("int", "float", "decimal"):
        for k in (-1, 0, 1, 2, 3, 7):
            out.append(step * k)
            out.append(step * k + (1 if spec.kind == "int" else step / 2))
        if spec.kind == "float":
            out.append(step * 0.1 * 3 / 0.3)
    if spec.kind == "decimal":
        places = spec.constraint("decimal_places") or 0
        digits = spec.constraint("max_digits")
        if digits is not None:
            whole = 10 ** max(digits - places, 0)
            out += [Decimal(whole) - Decimal(1).scaleb(-places), Decimal(whole)]
        out.append(Decimal("1." + "1" * (places + 1)))
    return out


def _strings(spec: FieldSpec, rng: Random) -> list[str]:
    lengths = {spec.constraint("min_length"), spec.constraint("max_length")} - {None}
    out: list[str] = []
    for n in lengths:
        for length in (n - 1, n, n + 1):
            if length < 0:
                continue
            for char in rng.sample(STRING_CHARS, 4):
                out.append(char * length)
            out.append(" " + "a" * length + " ")
    pattern = spec.constraint("pattern")
    if pattern is not None:
        out += PATTERN_SAMPLES.get(pattern, [])
    return out


def _choices_text(spec: FieldSpec) -> list[str]:
    out: list[str] = []
    for c in spec.choices:
        if isinstance(c, bool):
            out += [str(c), str(c).lower(), "1" if c else "0", "yes" if c else "no"]
        elif isinstance(c, int):
            out += [str(c), f"{c}.0", f" {c} ", f"+{c}", f"0{c}", f"{c}.5", f"{c:_}"]
        else:
            out += [c, c.upper(), f" {c} ", c + "\u00a0"]
    return [*out, "M0", "other"]


def _uuid_text(spec: FieldSpec, rng: Random) -> list[str]:
    out = list(atoms.UUID_TEXT)
    for version in {spec.uuid_version or 4, rng.randint(1, 8)}:
        u = uuid_with_version(rng, version)
        out += [str(u), u.hex, str(u).upper(), f"{{{u}}}", f"urn:uuid:{u}"]
    return out


TEXT = {
    "int": atoms.INT_TEXT,
    "float": atoms.FLOAT_TEXT,
    "decimal": atoms.DECIMAL_TEXT,
    "bool": atoms.BOOL_TEXT,
    "date": atoms.DATE_TEXT,
    "datetime": atoms.DATETIME_TEXT,
    "aware": atoms.DATETIME_TEXT,
    "naive": atoms.DATETIME_TEXT,
    "time": atoms.TIME_TEXT,
    "str": atoms.STRING_TEXT,
}


def text_candidates(spec: FieldSpec, rng: Random) -> list[str]:
    """Strings a CSV cell could hold for this field ("" means absent)."""
    out: list[str] = []
    for value in boundary_values(spec):
        out.extend(_forms(spec, value))
    if spec.kind in TEXT:
        out += rng.sample(TEXT[spec.kind], min(len(TEXT[spec.kind]), 18))
    if spec.kind == "str":
        out += _strings(spec, rng)
    elif spec.kind in ("enum", "literal"):
        out += _choices_text(spec)
    elif spec.kind == "uuid":
        out += _uuid_text(spec, rng)
    base = rng.sample(out, min(len(out), 6)) if out else ["x"]
    for value in base[:3]:
        pad = rng.choice(atoms.WHITESPACE)
        out += [pad + value, value + pad]
    out += rng.sample(atoms.UNICODE, 3)
    return out


def json_candidates(spec: FieldSpec, rng: Random) -> list[Any]:
    """JSON values: the text forms, the typed values, and every other JSON type."""
    out: list[Any] = list(text_candidates(spec, rng))
    for value in boundary_values(spec):
        if spec.kind in ("int", "float"):
            out.append(value)
        elif spec.kind == "decimal":
            out += [float(value), str(value)]
            if value == value.to_integral_value():
                out.append(int(value))
        elif spec.kind in ("date", "datetime", "aware", "naive"):
            moment = value if isinstance(value, datetime.datetime) else None
            if moment is not None:
                try:
                    stamp = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
                    out.append(stamp.timestamp())
                    out.append(int(stamp.timestamp()))
                except (OverflowError, ValueError):
                    pass
    out += [c for c in spec.choices]
    if spec.kind in ("enum", "literal"):
        out += [float(c) for c in spec.choices if type(c) is int]
        out += [str(c) for c in spec.choices if not isinstance(c, str)]
    out += atoms.JSON_ANY
    return out
