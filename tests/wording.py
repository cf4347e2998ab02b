"""Checking output by what the project controls, not by the wording of its dependencies.

DuckDB rewords its error messages and Rich redraws its tables between versions: a test that
pins either breaks on an upgrade without a regression. These helpers check the project's own
part of a message exactly (its prefix, its hint, one line) and only that DuckDB's part names
what it must; and read a Rich table as rows of cell texts, whatever characters draw it.
"""

from __future__ import annotations

import re

BOX = re.compile("[\u2500-\u257f]")  # Unicode box drawing: Rich's borders and rules


def assert_wraps(
    message: str, before: str, after: str = "", *, mentions: tuple[str, ...] = ()
) -> None:
    """``message`` is ``before``, some explanation by a dependency, then ``after``, on one
    line; the explanation is not empty and contains each of ``mentions``."""
    assert "\n" not in message.rstrip("\n"), message
    assert message.startswith(before), (message, before)
    assert message.endswith(after), (message, after)
    middle = message[len(before) : len(message) - len(after)]
    assert middle.strip(), message
    for word in mentions:
        assert word in middle, (message, word)


def cells(line: str) -> list[str]:
    """A table row's cell texts."""
    return [cell.strip() for cell in BOX.split(line)]


def table_rows(text: str) -> list[list[str]]:
    """The header and body rows of the tables in ``text``, as cell texts (rules skipped)."""
    rows = []
    for line in text.splitlines():
        if not BOX.search(line):
            continue
        found = cells(line)
        if any(found):
            rows.append(found)
    return rows
