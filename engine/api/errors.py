"""HTTP statuses for engine errors, and the handlers that answer ``{"detail": "..."}``.

The API's own refusals are engine errors too (``ApiError`` and its subclasses carry their
status); every other ``EngineError`` maps by kind: bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from engine.errors import (
    ConfigError,
    EngineError,
    SchemaError,
    SourceError,
    StoreLockedError,
    StreamError,
)

LOG = logging.getLogger("engine.api")


class ApiError(EngineError):
    """A request the API refuses; ``status`` is the HTTP status it answers with."""

    status: ClassVar[int] = 400


class BadRequestError(ApiError):
    """Malformed input: a bad parameter, a malformed path or upload."""


class PathRefusedError(ApiError):
    """A path that leaves the data directory (or ingest by path is not enabled)."""

    status = 403


class NotFoundError(ApiError):
    status = 404


class BusyError(ApiError):
    """The single writer stayed busy (another ingest, a Kafka batch) past the wait allowed."""

    status = 409


class TooLargeError(ApiError):
    status = 413


class UnavailableError(ApiError):
    """The database cannot serve the request right now (it failed and is being reopened, or
    stayed out of memory); the request can be retried."""

    status = 503


# Settings that are the server's own options (its database, its consumer's Kafka settings).
SERVER_OPTIONS = {
    "db": "--db",
    "bootstrap_servers": "--bootstrap-servers",
    "group": "--group",
    "topics": "--consume-topic",
    "extra": "--kafka-config",
    "dead_letter_topic": "--dead-letter-topic",
    "max_records": "--max-records",
    "max_wait_ms": "--max-wait-ms",
}


def api_spelling(setting: str, values: tuple[str, ...]) -> str:
    """How this API names a setting in a remedy: a query parameter or form field
    (``source_type=json``, ``force=true``), or the server's own option."""
    if setting == "force":
        return "force=true"
    if setting in SERVER_OPTIONS:
        return SERVER_OPTIONS[setting]
    name = {"format": "source_type"}.get(setting, setting)
    return f"{name}={'|'.join(values)}" if values else name


def status_for(exc: EngineError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, StoreLockedError):
        return 409
    if isinstance(exc, SourceError | ConfigError | SchemaError):
        return 400
    if isinstance(exc, StreamError):
        return 502
    return 500  # the server's own database failed: not the request's fault


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line: ``query parameter run_id: ... (got 'x')``."""
    parts = []
    for error in errors:
        loc = [str(item) for item in error.get("loc", ())]
        where = ""
        if len(loc) >= 2 and loc[0] in ("query", "path", "header"):
            where = f"{loc[0]} parameter {'.'.join(loc[1:])}: "
        elif loc:
            where = f"{'.'.join(loc)}: "
        got = f" (got {error['input']!r})" if "input" in error and loc[0:1] != ["body"] else ""
        parts.append(f"{where}{error.get('msg', 'invalid')}{got}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    async def engine_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, EngineError)
        status = status_for(exc)
        if status >= 500:
            LOG.error("%s", exc)
        return JSONResponse({"detail": exc.render(api_spelling)}, status_code=status)

    async def invalid_request(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_message(exc.errors())}, status_code=400)

    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the request's fault: the traceback goes to the server's log.
        return JSONResponse(
            {"detail": f"internal error ({type(exc).__name__}); see the server log"},
            status_code=500,
        )

    app.add_exception_handler(EngineError, engine_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)
