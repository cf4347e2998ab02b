"""Sources: files and streams (CSV, NDJSON, JSON array) read lazily, once, as RawBatches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from engine.batch import RawBatch
from engine.errors import ConfigError, SourceError
from engine.sources.csv import CsvSource
from engine.sources.inputs import HashingReader, Input, open_input
from engine.sources.json import JsonSource

FORMATS = ("csv", "ndjson", "json")
EXTENSIONS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}
SNIFF_BYTES = 4096


class Source(Protocol):
    format: str
    keys: tuple[str, ...]
    blank_lines: int
    reader: HashingReader

    def batches(self) -> Iterator[RawBatch]: ...


def detect_format(source: str | Path, declared: str | None, head: bytes | None = None) -> str:
    """``declared`` if given; else from the extension of ``source`` (a path or a name). A .json
    file holding NDJSON is sniffed: from ``head``, its first bytes, when given (a stream cannot
    be read twice), else by opening the file."""
    path = Path(source)
    if declared is not None:
        if declared not in FORMATS:
            raise ConfigError(f"unknown format {declared!r}; choose one of {', '.join(FORMATS)}")
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            source,
            f"cannot tell the format from the extension {path.suffix!r}",
            hint="pass --format csv|ndjson|json",
        )
    if fmt == "json":
        if head is None:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
            return "ndjson"
    return fmt


def open_source(
    source: Path | Input,
    fmt: str,
    *,
    keys: tuple[str, ...],
    want_all_keys: bool,
    block_size: int,
    max_record_bytes: int,
) -> Source:
    if fmt == "csv":
        return CsvSource(source, block_size=block_size, max_record_bytes=max_record_bytes)
    return JsonSource(
        source,
        keys=keys,
        want_all_keys=want_all_keys,
        array=fmt == "json",
        block_size=block_size,
        max_record_bytes=max_record_bytes,
    )


__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "SNIFF_BYTES",
    "Input",
    "Source",
    "detect_format",
    "open_input",
    "open_source",
]
