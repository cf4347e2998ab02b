"""Sources: files and streams (CSV, NDJSON, JSON array, Parquet, Arrow IPC; compressed or
not; local, stdin or remote) and rows in memory, read lazily, once, as RawBatches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from engine.batch import RawBatch
from engine.errors import ConfigError, Remedy, SourceError
from engine.sources.csv import CsvSource
from engine.sources.dialect import CsvDialect
from engine.sources.inputs import Fingerprint, Input, open_input
from engine.sources.json import JsonSource
from engine.sources.records import MAX_RECORDS

TEXT_FORMATS = ("csv", "ndjson", "json")
FORMATS = (*TEXT_FORMATS, "parquet", "arrow")
EXTENSIONS = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
SNIFF_BYTES = 4096


class Reader(Protocol):
    """What a run learns from a source's reader: how far it got, and what it read."""

    @property
    def bytes_read(self) -> int: ...

    def fingerprint(self) -> Fingerprint: ...

    def limit_blocks(self, size: int) -> None:
        """Read blocks of at most ``size`` bytes from the next one on, where blocks are read."""


class Source(Protocol):
    format: str
    keys: tuple[str, ...]
    blank_lines: int

    @property
    def reader(self) -> Reader: ...

    def batches(self) -> Iterator[RawBatch]: ...


def sniff(head: bytes) -> str | None:
    """The format the first bytes show, where they can: JSON, Parquet, Arrow IPC (not CSV)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"{"):
        return "ndjson"
    if text.startswith(b"["):
        return "json"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "arrow"
    return None


def detect_format(source: str | Path, declared: str | None, head: bytes | None = None) -> str:
    """``declared`` if given; else from the extension of ``source`` (a path or a name), else
    from ``head``, its first bytes, when they show one. A .json file holding NDJSON is
    sniffed: from ``head`` when given (a stream cannot be read twice), else by opening it."""
    path = Path(source)
    if declared is not None:
        if declared not in FORMATS:
            raise ConfigError(f"unknown format {declared!r}; choose one of {', '.join(FORMATS)}")
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        found = sniff(head) if head is not None else None
        if found is not None:
            return found
        problem = (
            f"cannot tell the format from the extension {path.suffix!r}"
            if path.suffix
            else "cannot tell the format (no extension, and the first bytes do not show it)"
        )
        raise SourceError(source, problem, hint=Remedy("pass {}", "format", FORMATS))
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
    dialect: CsvDialect | None = None,
    max_records: int = MAX_RECORDS,
) -> CsvSource | JsonSource:
    """A text format's reader (CSV, NDJSON, JSON array), in batches of at most
    ``max_records`` records."""
    if fmt == "csv":
        return CsvSource(
            source,
            block_size=block_size,
            max_record_bytes=max_record_bytes,
            dialect=dialect or CsvDialect(),
            expected=keys,
            max_records=max_records,
        )
    return JsonSource(
        source,
        keys=keys,
        want_all_keys=want_all_keys,
        array=fmt == "json",
        block_size=block_size,
        max_record_bytes=max_record_bytes,
        max_records=max_records,
    )


__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "SNIFF_BYTES",
    "TEXT_FORMATS",
    "CsvDialect",
    "Input",
    "Reader",
    "Source",
    "detect_format",
    "open_input",
    "open_source",
    "sniff",
]
