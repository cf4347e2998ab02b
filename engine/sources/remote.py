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
    from engine.sources.http_input import open_http  # http.client, urllib and ssl: only now

    return open_http(url, settings)


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
