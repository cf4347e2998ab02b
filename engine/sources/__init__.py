"""Sources: files (CSV, NDJSON, JSON array) read lazily as RawBatches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from engine.batch import RawBatch
from engine.errors import ConfigError, SourceError
from engine.sources.blocks import HashingReader
from engine.sources.csv import CsvSource
from engine.sources.json import JsonSource

FORMATS = ("csv", "ndjson", "json")
EXTENSIONS = {".csv": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "json"}


class Source(Protocol):
    format: str
    keys: tuple[str, ...]
    blank_lines: int
    reader: HashingReader

    def batches(self) -> Iterator[RawBatch]: ...


def check_readable(path: Path) -> int:
    """The file's size, or a one-line SourceError saying why it cannot be read."""
    if not path.exists():
        raise SourceError(path, "no such file")
    if path.is_dir():
        raise SourceError(path, "is a directory, not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror})") from exc
    size = path.stat().st_size
    if size == 0:
        raise SourceError(path, "file is empty")
    return size


def detect_format(path: Path, declared: str | None) -> str:
    """``declared`` if given; else from the extension (a .json file holding NDJSON is sniffed)."""
    if declared is not None:
        if declared not in FORMATS:
            raise ConfigError(f"unknown format {declared!r}; choose one of {', '.join(FORMATS)}")
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            path,
            f"cannot tell the format from the extension {path.suffix!r}",
            hint="pass --format csv|ndjson|json",
        )
    if fmt == "json":
        with path.open("rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"{"):
            return "ndjson"
    return fmt


def open_source(
    path: Path,
    fmt: str,
    *,
    keys: tuple[str, ...],
    want_all_keys: bool,
    block_size: int,
    max_record_bytes: int,
) -> Source:
    if fmt == "csv":
        return CsvSource(path, block_size=block_size, max_record_bytes=max_record_bytes)
    return JsonSource(
        path,
        keys=keys,
        want_all_keys=want_all_keys,
        array=fmt == "json",
        block_size=block_size,
        max_record_bytes=max_record_bytes,
    )
