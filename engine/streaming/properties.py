"""Kafka client settings from a Java properties file (``client.properties``), the format
Kafka's own tools and Confluent Cloud hand out, so that passwords need not be on a command line.

The format as ``java.util.Properties.load`` reads it: ``key=value``, ``key: value`` or
``key value``; ``#`` and ``!`` start comments; a line ending in an odd number of backslashes
continues on the next (whose leading blanks are dropped); ``\\t``, ``\\n``, ``\\r``, ``\\f``,
``\\uXXXX`` escapes, and a backslash before any other character keeps that character.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ConfigError

ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
BLANKS = " \t\f"


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, logical line) with continuations joined, comments dropped."""
    lines: list[tuple[int, str]] = []
    pending: str | None = None
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if pending is None:
            stripped = line.lstrip(BLANKS)
            if not stripped or stripped[0] in "#!":
                continue
            start, pending = number, stripped
        else:
            pending += line.lstrip(BLANKS)
        trailing = len(pending) - len(pending.rstrip("\\"))
        if trailing % 2 == 1:
            pending = pending[:-1]
            continue
        lines.append((start, pending))
        pending = None
    if pending is not None:
        lines.append((start, pending))
    return lines


def _unescape(text: str, path: Path, line: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        code = text[i + 1]
        if code == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ConfigError(f"{path}, line {line}: malformed \\uXXXX escape")
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        out.append(ESCAPES.get(code, code))
        i += 2
    return "".join(out)


def _split(line: str) -> tuple[str, str]:
    """The key ends at the first unescaped ``=``, ``:`` or blank."""
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] in "=:" or line[i] in BLANKS:
            break
        i += 1
    key, rest = line[:i], line[i:]
    rest = rest.lstrip(BLANKS)
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(BLANKS)
    return key, rest


def parse_properties(text: str, path: Path) -> dict[str, str]:
    properties: dict[str, str] = {}
    for line, logical in _logical_lines(text):
        key, value = _split(logical)
        properties[_unescape(key, path, line)] = _unescape(value, path, line)
    return properties


def load_properties(path: Path) -> dict[str, str]:
    """The properties in ``path`` (read as UTF-8; Latin-1 if it is not valid UTF-8)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # what Properties.load(InputStream) reads
    return parse_properties(text, path)
