"""Where a lake is: its root URI and the options to reach it (S3 credentials, endpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from engine.errors import ConfigError

# The standard AWS variables delta-rs' object store reads, taken from the environment by the
# edges (CLI, server) and passed explicitly.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ALLOW_HTTP",
    "AWS_PROFILE",
)

# What delta-rs reads as URL syntax in a lake URI (a fragment, a query, an escape): in an
# s3:// (or file://) URI it would store the tables under another prefix than the readers read.
URL_SYNTAX = ("#", "?", "%")


@dataclass(frozen=True)
class Lake:
    """A lake root: a local directory or ``s3://bucket/prefix``; ``storage_options`` are
    delta-rs' (``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``...)."""

    uri: str
    storage_options: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scheme = urlsplit(self.uri).scheme
        if scheme not in ("", "file", "s3", "s3a"):
            raise ConfigError(
                f"lake {self.uri}: a lake is a local directory or an s3://bucket/prefix URI",
                setting="lake",
            )
        if scheme in ("s3", "s3a", "file") and any(c in self.uri for c in URL_SYNTAX):
            kind = "a file://" if scheme == "file" else "an s3://bucket/prefix"
            raise ConfigError(
                f"lake {self.uri}: {kind} URI cannot contain '#', '?' or '%' (delta-rs would "
                "read them as URL syntax and store the tables under another prefix)",
                setting="lake",
            )
        if scheme in ("s3", "s3a"):
            prefix = urlsplit(self.uri).path.removeprefix("/").removesuffix("/")
            if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
                raise ConfigError(
                    f"lake {self.uri}: an s3://bucket/prefix URI cannot have an empty, '.' or "
                    "'..' segment (delta-rs and the readers would resolve it differently)",
                    setting="lake",
                )
        if scheme == "" and self.uri:
            root = Path(self.uri).resolve()
            if root.exists() and not root.is_dir():
                raise ConfigError(
                    f"lake {self.uri}: not a directory (a lake is a directory of Delta tables)",
                    setting="lake",
                )
            if "%" in str(root):
                raise ConfigError(
                    f"lake {root}: a lake directory's path cannot contain '%' (delta-rs reads "
                    "the path as a URL and would decode '%41' as 'A', storing the tables in "
                    "another directory)",
                    setting="lake",
                )
            object.__setattr__(self, "uri", str(root))

    @classmethod
    def from_environment(cls, uri: str, environ: Mapping[str, str]) -> Lake:
        """The lake at ``uri``, reached with the standard AWS variables found in ``environ``."""
        options = {name: environ[name] for name in AWS_VARIABLES if environ.get(name)}
        if "AWS_ENDPOINT_URL_S3" in options:
            options["AWS_ENDPOINT_URL"] = options.pop("AWS_ENDPOINT_URL_S3")
        if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            options.setdefault("AWS_ALLOW_HTTP", "true")
        if "AWS_REGION" not in options and "AWS_DEFAULT_REGION" in options:
            options["AWS_REGION"] = options["AWS_DEFAULT_REGION"]
        options.pop("AWS_DEFAULT_REGION", None)
        return cls(uri, options)

    @property
    def is_local(self) -> bool:
        return urlsplit(self.uri).scheme in ("", "file")

    def table_uri(self, name: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}"

    def __str__(self) -> str:
        return self.uri
