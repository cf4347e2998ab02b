"""Multipart uploads streamed to disk in chunks, never held in memory whole.

The request body is fed to python-multipart's streaming parser as it arrives. The file
part's bytes go to a staging file in blocks of about 1 MiB, written on a worker thread so
that a slow disk never stalls the event loop; small text fields (``source_type``,
``force``) are kept, anything else is refused. A body over the limit stops with a 413, a
malformed one with a 400, and either leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from engine.api.errors import BadRequestError, TooLargeError

FILE_FIELD = "file"
TEXT_FIELDS = ("source_type", "force")
MAX_FIELD_BYTES = 1024
MAX_FILENAME_BYTES = 200
WRITE_BLOCK = 1 << 20
FRAMING_SLACK = 64 << 10  # multipart boundaries and part headers around the file's bytes


@dataclass(frozen=True)
class Upload:
    directory: Path  # the staging directory: remove it (``discard``) once ingested
    path: Path  # the file, under the name the client gave it
    filename: str
    size: int
    fields: dict[str, str]

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def safe_filename(name: str) -> str:
    """The client's file name reduced to one harmless path component, extension kept."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(char for char in base if char.isprintable()).strip()
    if base in ("", ".", ".."):
        return "upload"
    stem, suffix = os.path.splitext(base)
    while len((stem + suffix).encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES and stem:
        stem = stem[:-1]
    return (stem + suffix)[-MAX_FILENAME_BYTES:] or "upload"


class _Receiver:
    """python-multipart callbacks: route each part to the staging file or a small field."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.part: str | None = None
        self.field = bytearray()
        self.fields: dict[str, str] = {}
        self.handle: BinaryIO | None = None
        self.path: Path | None = None
        self.filename = ""
        self.size = 0
        self.file_done = False
        self.ended = False
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.disposition = b""
        self.part = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self.header_name).lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _kind, options = parse_options_header(self.disposition)
        raw_name = options.get(b"name")
        if raw_name is None:
            raise BadRequestError(
                "a form part has no name (Content-Disposition: form-data; name=...)"
            )
        name = raw_name.decode("utf-8", "replace")
        if name == FILE_FIELD:
            if self.path is not None:
                raise BadRequestError("send one file per request")
            raw_filename = options.get(b"filename", b"")
            self.filename = safe_filename(raw_filename.decode("utf-8", "replace"))
            self.path = self.directory / self.filename
            self.handle = self.path.open("xb")
        elif name in TEXT_FIELDS:
            if name in self.fields:
                raise BadRequestError(f"form field {name!r} is given twice")
            self.field.clear()
        else:
            expected = ", ".join((FILE_FIELD, *TEXT_FIELDS))
            raise BadRequestError(f"unexpected form field {name!r} (expected {expected})")
        self.part = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part == FILE_FIELD:
            self.size += end - start
            if self.size > self.max_bytes:
                raise TooLargeError(
                    f"the upload is larger than the server's limit of {self.max_bytes:,} bytes"
                )
            self.pending.append(data[start:end])
            self.pending_bytes += end - start
        else:
            self.field += data[start:end]
            if len(self.field) > MAX_FIELD_BYTES:
                raise BadRequestError(
                    f"form field {self.part!r} is longer than {MAX_FIELD_BYTES} bytes"
                )

    def on_part_end(self) -> None:
        if self.part == FILE_FIELD:
            self.file_done = True
        elif self.part is not None:
            try:
                self.fields[self.part] = self.field.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequestError(f"form field {self.part!r} is not UTF-8 text") from None

    def on_end(self) -> None:
        self.ended = True

    def flush(self) -> None:
        """Write the buffered file bytes (on a worker thread)."""
        if self.handle is not None and self.pending:
            self.handle.writelines(self.pending)
        self.pending.clear()
        self.pending_bytes = 0

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


async def receive_upload(request: Request, spool: Path, *, max_bytes: int) -> Upload:
    """Stream the request's multipart body into a new staging directory under ``spool``."""
    _kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequestError("multipart/form-data without a boundary")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FRAMING_SLACK:
        raise TooLargeError(
            f"the upload ({int(declared):,} bytes) is larger than the server's limit of "
            f"{max_bytes:,} bytes"
        )
    directory = Path(tempfile.mkdtemp(prefix="upload-", dir=spool))
    receiver = _Receiver(directory, max_bytes)
    try:
        try:
            parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
            async for chunk in request.stream():
                parser.write(chunk)
                if receiver.pending_bytes >= WRITE_BLOCK:
                    await anyio.to_thread.run_sync(receiver.flush)
            parser.finalize()
            await anyio.to_thread.run_sync(receiver.flush)
        except FormParserError as exc:
            raise BadRequestError(f"malformed multipart body ({exc})") from exc
        except ClientDisconnect:
            raise BadRequestError("the client disconnected during the upload") from None
        finally:
            receiver.close()
        if not receiver.ended:
            raise BadRequestError("the multipart body ended before its closing boundary")
        if receiver.path is None or not receiver.file_done:
            raise BadRequestError(f"the form has no {FILE_FIELD!r} part with the file to ingest")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Upload(directory, receiver.path, receiver.filename, receiver.size, receiver.fields)
