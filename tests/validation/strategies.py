"""Hypothesis strategies for adversarial input values, as CSV text or JSON values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

NUMBER_ATOMS = [
    "",
    " ",
    "0",
    "-0",
    "1",
    "3",
    "-3",
    " 42 ",
    "42.0",
    "42.5",
    "5.",
    ".5",
    "+5",
    "1e3",
    "1E-2",
    "inf",
    "-inf",
    "nan",
    "NaN",
    "Infinity",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "0x10",
    "١٢",
    "\u00a07\u2003",
    "1,000",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "1" * 30,
    "9" * 45,
    "1e400",
    "0.05",
    "0.1",
    "12.34",
    "99999.99",
    "100000.00",
    "0.001",
    "-0.00",
    "7.50",
    "3.0000",
]
WORD_ATOMS = [
    "",
    " ",
    "a",
    "ab",
    "abc",
    "ABC",
    " ab ",
    "x" * 13,
    "é",
    "ñandú",
    "red",
    "RED",
    "green",
    "a",
    "b",
    "A",
    "true",
    "True",
    "TRUE",
    "false",
    "yes",
    "no",
    "on",
    "off",
    "t",
    "f",
    "y",
    "n",
    " true",
    "2",
    "1.0",
    "None",
    "null",
    "\t",
    "line\nbreak",
    'quo"te',
    "com,ma",
]
UUID_ATOMS = [
    "12345678-1234-5678-1234-567812345678",
    "12345678123456781234567812345678",
    "{12345678-1234-5678-1234-567812345678}",
    "urn:uuid:12345678-1234-5678-1234-567812345678",
    "ABCDEF00-1234-4678-8234-567812345678",
    "abcdef00-1234-4678-8234-56781234567",
    "not-a-uuid",
]
TIME_ATOMS = [
    "10:20",
    "10:20:30",
    "10:20:30.5",
    "10:20:30.1234567",
    "23:59:59",
    "24:00",
    "10:60",
    "10:20:30Z",
    "10:20:30+02:00",
    "1020",
    " 10:20",
    "3600",
]
DATE_ATOMS = [
    "2024-01-01",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-1-1",
    "20240101",
    "0000-01-01",
    "2024-01-01T00:00:00",
    "2024-01-01T10:00:00",
    "1704067200",
    "yesterday",
    "",
]


def _formats(moment: datetime) -> st.SearchStrategy[str]:
    base = moment.strftime("%Y-%m-%d")
    clock = moment.strftime("%H:%M:%S")
    micro = f"{moment.microsecond:06d}"
    return st.sampled_from(
        [
            f"{base}T{clock}",
            f"{base} {clock}",
            f"{base}t{clock}",
            f"{base}_{clock}",
            f"{base}T{clock[:5]}",
            f"{base}T{clock}.{micro[:3]}",
            f"{base}T{clock}.{micro}",
            f"{base}T{clock}.{micro}9",
            f"{base}T{clock}Z",
            f"{base}T{clock}+05:30",
            f"{base}T{clock}-0800",
            f"{base}T{clock}+02",
            base,
            f" {base}T{clock}",
            str(int(moment.replace(tzinfo=UTC).timestamp())),
            str(int(moment.replace(tzinfo=UTC).timestamp() * 1000)),
        ]
    )


datetimes_text = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)
).flatmap(_formats)


def text_values() -> st.SearchStrategy[str]:
    """Any string a CSV cell could hold, weighted towards the interesting ones."""
    return st.one_of(
        st.sampled_from(NUMBER_ATOMS),
        st.sampled_from(WORD_ATOMS),
        st.sampled_from(UUID_ATOMS),
        st.sampled_from(TIME_ATOMS),
        st.sampled_from(DATE_ATOMS),
        datetimes_text,
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        st.uuids().map(str),
        st.times().map(lambda t: t.isoformat()),
        st.text(alphabet="0123456789._-+eE :TZ", max_size=10),
        st.text(max_size=20),
    )


def json_values() -> st.SearchStrategy[Any]:
    """Values of a JSON object: text as above, or another JSON type."""
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, 1, 2, 3, -3, 1.0, 2.5, 0.25, 1700000000, 3600, 1e20, 10**20]),
    )
    nested = st.one_of(
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
    return st.one_of(text_values(), text_values(), scalar, nested)


def offsets() -> st.SearchStrategy[timezone]:
    return st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda m: timezone(timedelta(minutes=m))
    )
