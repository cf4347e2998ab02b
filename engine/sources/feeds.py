"""From an opened input to the reader of its records: compression, format, then the reader.

A compressed input is decompressed as it is read (``engine.sources.compression``); its
format comes from its name without the compression's extension (``data.csv.gz``), else from
its first decompressed bytes. Text formats (CSV, NDJSON, JSON arrays) are read in blocks of
bytes; Parquet and Arrow IPC in record batches, as rows (``engine.sources.columnar``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.block_budget import records_for
from engine.errors import SourceError
from engine.sources import SNIFF_BYTES, TEXT_FORMATS, Source, detect_format, open_source
from engine.sources.columnar import arrow_chunks, parquet_chunks
from engine.sources.compression import (
    MAGIC_BYTES,
    codec_of,
    decompressing,
    without_codec_suffix,
)
from engine.sources.dialect import CsvDialect
from engine.sources.frames import RecordsSource
from engine.sources.inputs import Input
from engine.validation.compiler import CompiledSchema

MiB = 1 << 20


@dataclass(frozen=True)
class ReadOptions:
    """How to read an input: its format (None: from its name or first bytes), the CSV
    dialect, the block size and the longest record allowed."""

    fmt: str | None = None
    dialect: CsvDialect = field(default_factory=CsvDialect)
    block_size: int = 16 * MiB  # about 300,000 CSV rows per batch
    max_record_bytes: int = 16 * MiB


@dataclass(frozen=True)
class Feed:
    """An input ready to be read once: its (decompressed) bytes and its format.

    ``precheck`` is the plain file whose bytes are the run's content, when there is one: it
    can be fingerprinted before it is read, so that content ingested before is skipped
    without reading it through. A compressed file's content is its decompressed bytes, a
    Parquet file's its rows: those are known only once read.
    """

    input: Input
    fmt: str
    codec: str | None
    precheck: Path | None

    @property
    def typed(self) -> bool:
        """Values carry JSON types (everything but CSV)."""
        return self.fmt != "csv"

    def open(self, schema: CompiledSchema, options: ReadOptions) -> Source:
        limit = options.max_record_bytes
        if self.fmt in ("parquet", "arrow"):
            chunks = (
                parquet_chunks(self.input, max_record_bytes=limit)
                if self.fmt == "parquet"
                else arrow_chunks(self.input, max_record_bytes=limit)
            )
            return RecordsSource(chunks, schema, self.fmt, limit, self.input.name)
        return open_source(
            self.input,
            self.fmt,
            keys=schema.input_keys,
            want_all_keys=schema.extra == "forbid",
            block_size=options.block_size,
            max_record_bytes=options.max_record_bytes,
            dialect=options.dialect,
            max_records=records_for(len(schema.fields)),
        )


def file_name(name: str) -> str:
    """The part of an input's name that carries its extensions: a URL's path, without its
    host, query or fragment (``https://host/t.csv.gz?sig=...`` -> ``/t.csv.gz``)."""
    return urlsplit(name).path if "://" in name else name


def prepare(source: Input, options: ReadOptions) -> Feed:
    """Detect ``source``'s compression and format (reading only its first bytes)."""
    named = file_name(source.name)
    codec = codec_of(named, source.head(MAGIC_BYTES))
    if codec is not None:
        source = decompressing(source, codec)
        named = without_codec_suffix(named)
    head = source.head(SNIFF_BYTES) if options.fmt is None else None
    try:
        fmt = detect_format(named, options.fmt, head)
    except SourceError as exc:  # about the input as the user named it
        raise exc.named(source.name) from None
    precheck = source.path if codec is None and fmt in TEXT_FORMATS else None
    return Feed(source, fmt, codec, precheck)
