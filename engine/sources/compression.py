"""Compressed inputs (gzip, zstd, bz2, xz), known by their extension or their magic bytes.

A compressed input is read as the stream of its decompressed bytes, decompressed block by
block as the run reads it (never whole, never to a temporary file): the records, their
lineage and the run's content hash are those of the decompressed bytes, so ``data.csv`` and
``data.csv.gz`` are the same content. gzip, bz2 and xz use Python's own modules (which read
concatenated members, as ``zcat`` does); zstd uses pyarrow's codec (Python has none before
3.14), which reads concatenated frames too.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from pathlib import PurePosixPath
from typing import IO, Any, cast

from engine.errors import SourceError
from engine.sources.inputs import Input

EXTENSIONS = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".bz2": "bz2",
    ".xz": "xz",
}
# Each format's magic bytes (bzip2: "BZh", the block size digit, then a block's own magic).
MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
BZIP2_BLOCK = b"\x31\x41\x59\x26\x53\x59"
MAGIC_BYTES = 10  # enough to tell them all apart


def codec_of(name: str, head: bytes) -> str | None:
    """The compression of an input called ``name`` starting with ``head``, or None."""
    found = EXTENSIONS.get(PurePosixPath(name).suffix.lower())
    if found is not None:
        return found
    for magic, codec in MAGIC:
        if head.startswith(magic):
            return codec
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == BZIP2_BLOCK:
        return "bz2"
    return None


def without_codec_suffix(name: str) -> str:
    """``data.csv.gz`` -> ``data.csv``: the name that tells the format of what is inside."""
    path = PurePosixPath(name)
    return str(path.with_suffix("")) if path.suffix.lower() in EXTENSIONS else name


def decompressing(source: Input, codec: str) -> Input:
    """``source`` as the stream of its decompressed bytes (a stream: no size, no path)."""
    return Input(_Decompressing(source, codec), source.name, recorded_as=source.recorded_as)


class _Raw(io.RawIOBase):
    """An Input as the file object the decompressors read (closing it is the Input's owner's)."""

    def __init__(self, source: Input) -> None:
        self.source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open(source: Input, codec: str) -> Any:
    raw = _Raw(source)
    if codec == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if codec == "bz2":
        return bz2.BZ2File(raw)
    if codec == "xz":
        return lzma.LZMAFile(cast(IO[bytes], raw))
    import pyarrow as pa

    return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")


class _Decompressing:
    """Reads decompressed bytes; a corrupt or truncated input is a one-line SourceError."""

    def __init__(self, source: Input, codec: str) -> None:
        self.source = source
        self.codec = codec
        self.stream = _open(source, codec)

    def read(self, n: int) -> bytes:
        try:
            return bytes(self.stream.read(n))
        except EOFError as exc:
            raise SourceError(
                self.source.name,
                f"the {self.codec} data ends before its end marker (a truncated file?)",
            ) from exc
        except (OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "truncated" in reason.lower():
                raise SourceError(
                    self.source.name,
                    f"the {self.codec} data ends before its end marker (a truncated file?)",
                ) from exc
            raise SourceError(self.source.name, f"not valid {self.codec} data ({reason})") from exc

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.source.close()
