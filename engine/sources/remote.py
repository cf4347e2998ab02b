"""Remote inputs: ``http(s)://`` and ``s3://`` URLs, streamed as they are read.

Neither is downloaded first: an HTTP body is read from the response as the run reads it,
an S3 object in ranged GETs of one block each (pyarrow's S3 filesystem). A Parquet file needs
random access (its index is at its end): an S3 object gives it, an HTTP resource too when the
server answers ranged requests (``Accept-Ranges: bytes``), read ahead a few MiB at a time.

Where to reach S3 is explicit (:class:`RemoteSettings`): the command line fills it from the
standard AWS variables (``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, ``AWS_REGION``/
``AWS_DEFAULT_REGION``). Credentials come from AWS's own chain, which the AWS SDK inside
pyarrow reads: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``,
``~/.aws``, an instance role.
"""

from __future__ import annotations

import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engine.errors import SourceError
from engine.sources.inputs import Input

MiB = 1 << 20
SCHEMES = ("http://", "https://", "s3://")
READ_AHEAD = 4 * MiB  # an HTTP range read asks for at least this much


@dataclass(frozen=True)
class RemoteSettings:
    """How to reach remote inputs. ``s3_endpoint`` is an S3-compatible server's URL (MinIO,
    a local test server); None means AWS itself."""

    s3_endpoint: str | None = None
    s3_region: str | None = None
    http_timeout_s: float = 60.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> RemoteSettings:
        """The standard AWS variables (for the edges: the CLI and the server read them)."""
        return cls(
            s3_endpoint=environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"),
            s3_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        )


def shown(url: str) -> str:
    """A URL as messages and lineage name it: without a password in it (``user:***@host``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_remote(location: str) -> bool:
    return location.lower().startswith(SCHEMES)


def open_remote(url: str, settings: RemoteSettings) -> Input:
    if url.lower().startswith("s3://"):
        return open_s3(url, settings)
    return open_http(url, settings)


# -- HTTP --------------------------------------------------------------------------------


def _get(url: str, timeout: float, headers: Mapping[str, str] | None = None) -> Any:
    try:
        request = urllib.request.Request(
            url, headers={"User-Agent": "ingest-engine", **(headers or {})}
        )
    except ValueError as exc:  # a URL urllib cannot even parse ("http://[::1")
        raise SourceError(shown(url), f"is not a valid URL ({exc})") from exc
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise SourceError(shown(url), f"the server answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise SourceError(shown(url), f"cannot be reached ({exc.reason})") from exc
    except TimeoutError as exc:
        raise SourceError(shown(url), f"no answer within {timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise SourceError(shown(url), f"cannot be read ({exc})") from exc


def open_http(url: str, settings: RemoteSettings) -> Input:
    response = _get(url, settings.http_timeout_s)
    length = response.headers.get("Content-Length")
    size = int(length) if length and length.isdigit() else None
    ranges = response.headers.get("Accept-Ranges", "").lower() == "bytes" and size is not None
    random_access = None
    if ranges:
        assert size is not None

        def random_access() -> Any:
            return HttpRangeFile(url, size, settings.http_timeout_s)

    return Input(_HttpBody(response, url, size), shown(url), size=size, random_access=random_access)


class _HttpBody:
    """A response body read as it arrives; a broken connection is a one-line SourceError."""

    def __init__(self, response: Any, url: str, size: int | None = None) -> None:
        self.response = response
        self.url = url
        self.size = size  # the Content-Length the server announced, if any
        self.read_so_far = 0

    def read(self, n: int) -> bytes:
        try:
            data: bytes = self.response.read(n)
        except http.client.IncompleteRead as exc:
            got = self.read_so_far + len(exc.partial)
            raise SourceError(shown(self.url), f"the connection broke after {got:,} bytes") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                shown(self.url), f"the connection broke after {self.read_so_far:,} bytes ({exc})"
            ) from exc
        self.read_so_far += len(data)
        if not data and n and self.size is not None and self.read_so_far < self.size:
            # With a Content-Length, a body cut short just ends early: never a whole input.
            raise SourceError(
                shown(self.url),
                f"the connection broke after {self.read_so_far:,} of {self.size:,} bytes",
            )
        return data

    def close(self) -> None:
        self.response.close()


class HttpRangeFile(io.RawIOBase):
    """An HTTP resource read with seeks, by ranged GETs (for Parquet's footer and columns)."""

    def __init__(self, url: str, size: int, timeout: float) -> None:
        self.url = url
        self.size = size
        self.timeout = timeout
        self.position = 0
        self._cache_start = 0
        self._cache = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, n: int = -1) -> bytes:
        stop = self.size if n is None or n < 0 else min(self.size, self.position + n)
        if stop <= self.position:
            return b""
        cached_stop = self._cache_start + len(self._cache)
        if not (self._cache_start <= self.position and stop <= cached_stop):
            self._fetch(self.position, max(stop, min(self.size, self.position + READ_AHEAD)))
        start = self.position - self._cache_start
        data = self._cache[start : start + stop - self.position]
        self.position = stop
        return data

    def _fetch(self, start: int, stop: int) -> None:
        response = _get(self.url, self.timeout, {"Range": f"bytes={start}-{stop - 1}"})
        with response:
            if response.status != 206:
                raise SourceError(
                    shown(self.url),
                    "the server does not answer ranged requests, which Parquet needs",
                )
            try:
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(shown(self.url), f"the connection broke ({exc})") from exc
        if len(data) != stop - start:
            raise SourceError(
                shown(self.url), f"asked for bytes {start}-{stop - 1}, got {len(data):,} bytes"
            )
        self._cache_start, self._cache = start, data


# -- S3 ----------------------------------------------------------------------------------


def _s3_filesystem(settings: RemoteSettings) -> Any:
    from pyarrow import fs

    options: dict[str, Any] = {}
    if settings.s3_endpoint:
        options["endpoint_override"] = settings.s3_endpoint
        if settings.s3_endpoint.lower().startswith("http://"):
            options["scheme"] = "http"
    if settings.s3_region:
        options["region"] = settings.s3_region
    return fs.S3FileSystem(**options)


def _s3_reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__


def open_s3(url: str, settings: RemoteSettings) -> Input:
    from pyarrow import fs

    parts = urlsplit(url)
    bucket, key = parts.netloc, parts.path.lstrip("/")
    if not bucket or not key:
        raise SourceError(
            shown(url), "an S3 URL names a bucket and a key: s3://bucket/path/to/file"
        )
    path = f"{bucket}/{key}"
    filesystem = _s3_filesystem(settings)
    try:
        info = filesystem.get_file_info(path)
    except OSError as exc:
        raise SourceError(shown(url), f"cannot be read ({_s3_reason(exc)})") from exc
    if info.type == fs.FileType.NotFound:
        raise SourceError(shown(url), "no such object")
    if info.type == fs.FileType.Directory:
        raise SourceError(shown(url), "is a prefix (a directory), not an object")
    try:
        stream = filesystem.open_input_stream(path, compression=None)  # not by extension
    except OSError as exc:
        raise SourceError(shown(url), f"cannot be read ({_s3_reason(exc)})") from exc
    return Input(
        _S3Body(stream, url),
        url,
        size=info.size,
        random_access=lambda: filesystem.open_input_file(path),
    )


class _S3Body:
    def __init__(self, stream: Any, url: str) -> None:
        self.stream = stream
        self.url = url

    def read(self, n: int) -> bytes:
        try:
            return bytes(self.stream.read(n))
        except OSError as exc:
            raise SourceError(shown(self.url), f"reading failed ({_s3_reason(exc)})") from exc

    def close(self) -> None:
        self.stream.close()
