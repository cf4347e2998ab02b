"""How a count reads in a message: ``count(1, "row")`` is "1 row", ``count(1200, "row")``
"1,200 rows"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with thousands separators, and ``noun`` (or its plural: ``plural``, by default
    the noun with an s) as English wants it."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
