"""An error's stored input as JSON that DuckDB can read, and as strict JSON for the exports.

Inputs are stored as Python's ``json`` writes them: ``NaN`` and ``Infinity`` for
non-finite floats, and a lone surrogate (a str may hold one; UTF-8 cannot) as its ``\\uDXXX``
escape. DuckDB's JSON reader refuses such an escape, and the JSON formats promise JSON with
neither. These SQL expressions make the text readable: a lone surrogate's escape becomes
visible text (``\\\\uDXXX``: the characters the README says error lists show), anything DuckDB
still cannot read becomes a JSON string of its text, and ``strict`` turns the non-finite
numbers outside strings into ``null``.

Memory: DuckDB evaluates an expression over a chunk of up to 2,048 rows, and what a
function makes of a whole input is held for the chunk. ``to_json`` in the last branch once
made the CASE's type JSON, so every input was cast to JSON (parsed and copied) in each place
the expression was used: 1,000 inputs of 20,000 characters (20 MB) took the readers' 512 MB
cap. Its text is now VARCHAR (the same text). A JSON string with no escape (``plain``: most
failing inputs, every long one a CSV gives) is already what both expressions return: it is
tested first, by a regex that copies nothing (``tests/reports/test_long_inputs.py``).
"""

from __future__ import annotations

# A JSON string, or a run of text between strings (strings are kept whole: "NaN" stays).
_TOKENS = r"""'"(?:[^"\\]|\\.)*"|[^"]+'"""


# A surrogate pair's escapes, a lone surrogate's, any other escape, or a run of plain text.
_ESCAPES = (
    r"'\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    r"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\\.|[^\\]+'"
)
_LONE = r"'\\u[dD][89a-fA-F][0-9a-fA-F]{2}'"
# A JSON string with no escape: no quote, backslash or control character inside (RE2).
_PLAIN = r"""'"[^"\\\x00-\x1f]*"'"""


def plain(column: str) -> str:
    """SQL: ``column`` is the JSON text of a string without escapes (it reads as itself)."""
    return f"regexp_full_match({column}, {_PLAIN})"


def parsable(column: str) -> str:
    """SQL: ``column`` (an input's JSON text) as JSON text DuckDB reads."""
    shown = (
        f"array_to_string(list_transform(regexp_extract_all({column}, {_ESCAPES}), "
        f"lambda t: CASE WHEN regexp_full_match(t, {_LONE}) THEN '\\' || t ELSE t END), '')"
    )
    return (
        f"(CASE WHEN {plain(column)} THEN {column} WHEN json_valid({column}) THEN {column} "
        f"WHEN json_valid({shown}) THEN {shown} ELSE to_json({column})::VARCHAR END)"
    )


def strict(column: str) -> str:
    """SQL: JSON text ``column`` with ``NaN``, ``Infinity`` and ``-Infinity`` as ``null``."""
    return (
        f"(CASE WHEN {plain(column)} THEN {column} "
        f"WHEN {column} LIKE '%NaN%' OR {column} LIKE '%Infinity%' THEN "
        f"array_to_string(list_transform(regexp_extract_all({column}, {_TOKENS}), "
        "lambda t: CASE WHEN starts_with(t, '\"') THEN t "
        "ELSE regexp_replace(t, '-?Infinity|NaN', 'null', 'g') END), '') "
        f"ELSE {column} END)"
    )
