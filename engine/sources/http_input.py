"""HTTP(S) inputs: a response body streamed as it is read, or ranged GETs for Parquet.

Imported only when an ``http(s)://`` input is opened (``engine.sources.remote``), so that a run
over local files does not load ``http.client``, ``urllib`` and ``ssl``.
"""

from __future__ import annotations

import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from engine.errors import SourceError
from engine.sources.inputs import Input
from engine.sources.remote import READ_AHEAD, RemoteSettings, shown


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

    return Input(
        _HttpBody(response, url, size, settings.http_timeout_s),
        shown(url),
        size=size,
        random_access=random_access,
    )


class _HttpBody:
    """A response body read as it arrives; a broken connection is a one-line SourceError
    that counts the bytes received (read by ``read1``, as they come: a read of a whole block
    that timed out lost the part of it that had come, and the count said 4,096 of 5,000)."""

    def __init__(self, response: Any, url: str, size: int | None, timeout: float) -> None:
        self.response = response
        self.url = url
        self.size = size  # the Content-Length the server announced, if any
        self.timeout = timeout
        self.read_so_far = 0

    def read(self, n: int) -> bytes:
        """``n`` bytes, fewer only at the end of the body."""
        parts: list[bytes] = []
        wanted = n
        while wanted > 0:
            data = self._read1(wanted)
            if not data:
                break
            parts.append(data)
            wanted -= len(data)
        if wanted == n and n and self.size is not None and self.read_so_far < self.size:
            # With a Content-Length, a body cut short just ends early: never a whole input.
            raise SourceError(
                shown(self.url),
                f"the connection broke after {self.read_so_far:,} of {self.size:,} bytes",
            )
        return b"".join(parts)

    def _read1(self, n: int) -> bytes:
        try:
            data: bytes = self.response.read1(n)
        except http.client.IncompleteRead as exc:
            got = self.read_so_far + len(exc.partial)
            raise SourceError(shown(self.url), f"the connection broke after {got:,} bytes") from exc
        except TimeoutError as exc:
            raise SourceError(
                shown(self.url),
                f"the server sent nothing for {self.timeout:g} s after {self.read_so_far:,} bytes",
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                shown(self.url), f"the connection broke after {self.read_so_far:,} bytes ({exc})"
            ) from exc
        self.read_so_far += len(data)
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
