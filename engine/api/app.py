"""The application: ``create_app(settings)``, whose lifespan owns the server's resources.

Startup opens the one DuckDB connection (and, when asked, starts the Kafka consumer on it);
shutdown stops the consumer, which writes its in-flight batch first, then closes DuckDB.
Everything runs in one process: DuckDB allows a single writing process per file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from engine.api import exports, health, ingest, reports
from engine.api.errors import install_error_handlers
from engine.api.services import Services
from engine.api.settings import ApiSettings

DESCRIPTION = """\
Ingest CSV, NDJSON and JSON files into one DuckDB file, validated against a Pydantic model,
and read back the summary, the run history and exports of valid and invalid rows.

Errors are `{"detail": "..."}`: 400 bad input, 403 a path outside the data directory,
404 an unknown run or file, 409 the database's writer is busy, 413 an upload too large.
"""

DOCS_ASSETS = "/docs-assets"


def create_app(settings: ApiSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await anyio.to_thread.run_sync(Services.open, settings)
        app.state.services = services
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(services.close)

    # /docs with Swagger UI's script, style and icon served from an installed package, not
    # a CDN, so that the interactive docs work offline and behind a firewall. No /redoc: its
    # page fetches a logo from the vendor's CDN whatever its options.
    app = FastAPIOffline(
        title="ingest-engine API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        redoc_url=None,
    )
    install_error_handlers(app)
    for module in (ingest, reports, exports, health):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with its 422 answers replaced by the 400 this API gives."""
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
