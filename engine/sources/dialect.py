"""A CSV dialect: the delimiter, the quote character and the text encoding.

The default (``,``, ``"``, UTF-8) is RFC 4180 and takes the fast paths. Another encoding
(Latin-1, Windows-1252, UTF-16, any codec Python knows) is decoded block by block to UTF-8
before records are cut, so lineage and values are UTF-8 whatever the file's encoding. A byte
the encoding cannot decode (Windows-1252 leaves five undefined) is kept as it is, which
makes its record an invalid row naming the byte, as invalid UTF-8 does in a UTF-8 file.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.errors import ConfigError, SourceError

# Separators a header is tried with when none of its columns matches the model.
LIKELY_DELIMITERS = (",", ";", "\t", "|", ":")
UTF8 = "utf-8"


def _one_character(what: str, value: str) -> None:
    if len(value) != 1 or not value.isascii() or value in "\r\n":
        raise ConfigError(
            f"the CSV {what} must be one ASCII character other than a line break, got {value!r}"
        )


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str = ","
    quote: str = '"'
    encoding: str = UTF8

    def __post_init__(self) -> None:
        _one_character("delimiter", self.delimiter)
        _one_character("quote character", self.quote)
        if self.delimiter == self.quote:
            raise ConfigError(
                f"the CSV delimiter and quote character must differ, both are {self.quote!r}"
            )
        try:
            info = codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(f"unknown text encoding {self.encoding!r}") from None
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib...: bytes codecs
            raise ConfigError(
                f"{self.encoding!r} is not a text encoding (it transforms bytes or text, as "
                "codecs' rot13 and base64 do)"
            )
        name = info.name
        object.__setattr__(self, "encoding", UTF8 if name in (UTF8, "utf-8-sig") else name)

    def read_options(self, fmt: str, keys: tuple[str, ...]) -> dict[str, Any] | None:
        """What a CSV run's raw text lacks to be read again (``replay``): its header and
        dialect (the raw text is stored as UTF-8, whatever the file's encoding). Other
        formats' raw text is a JSON record."""
        if fmt != "csv":
            return None
        return {"keys": list(keys), "delimiter": self.delimiter, "quote_char": self.quote}

    @property
    def is_default(self) -> bool:
        return (self.delimiter, self.quote, self.encoding) == (",", '"', UTF8)

    @property
    def is_utf8(self) -> bool:
        return self.encoding == UTF8

    @property
    def bad_text(self) -> str:
        """The error type of a record the encoding cannot decode."""
        return "invalid_utf8" if self.is_utf8 else "invalid_encoding"

    def transcode(self, blocks: Iterator[bytes], name: str) -> Iterator[bytes]:
        """The blocks as UTF-8 (undecodable bytes kept as they are: invalid UTF-8)."""
        if self.is_utf8:
            yield from blocks
            return
        decoder = codecs.getincrementaldecoder(self.encoding)("surrogateescape")
        try:
            for block in blocks:
                yield decoder.decode(block).encode(UTF8, "surrogateescape")
            yield decoder.decode(b"", final=True).encode(UTF8, "surrogateescape")
        except UnicodeError as exc:
            raise SourceError(name, f"cannot be decoded as {self.encoding} ({exc})") from exc


def guess_delimiter(header: str, expected: tuple[str, ...], current: str) -> str | None:
    """A likely delimiter when ``current`` splits the header into no expected name."""
    wanted = set(expected)
    for candidate in LIKELY_DELIMITERS:
        if candidate == current:
            continue
        names = [name.strip().strip('"') for name in header.split(candidate)]
        if len(names) > 1 and wanted.intersection(names):
            return candidate
    return None
