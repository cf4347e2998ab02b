"""``GET /api/v1/health`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from functools import partial
from typing import Literal

import anyio
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from engine.api.errors import UnavailableError
from engine.api.metrics import CONTENT_TYPE
from engine.api.models import ConsumerStatus, DatabaseReopened, Health
from engine.api.services import ServicesDep
from engine.store.store import Store

router = APIRouter(tags=["health"])


@router.get(
    "/api/v1/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database cannot be used right now."}},
)
async def health(services: ServicesDep) -> Health | JSONResponse:
    """The database answers; what holds its writer; whether the server had to reopen the
    database; the consumer's state when consuming."""

    def probe(store: Store) -> None:
        store.rows("SELECT 1")

    database = services.database
    error = None
    try:
        # A thread of its own too: not one of the default pool's, which exports may hold.
        await anyio.to_thread.run_sync(
            partial(database.read, probe, probe=True), limiter=anyio.CapacityLimiter(1)
        )
    except UnavailableError:
        error = database.unavailable or "the database cannot be used"
    consumer = None
    if services.consumer is not None:
        consumer = ConsumerStatus.model_validate(services.consumer.state(), from_attributes=True)
    settings = services.settings
    reopened = database.reopened
    status: Literal["ok", "degraded", "unavailable"] = "ok"
    if error is not None:
        status = "unavailable"
    elif consumer is not None and consumer.state == "failed":
        status = "degraded"
    body = Health(
        status=status,
        database=str(settings.db) if settings.lake is None else settings.lake.uri,
        database_error=error,
        database_reopened=None
        if reopened is None
        else DatabaseReopened.model_validate(reopened, from_attributes=True),
        schema_name=services.model.__name__,
        data_dir=None if settings.data_dir is None else str(settings.data_dir),
        writer=database.writer,
        consumer=consumer,
    )
    if error is not None:
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    return body


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(services: ServicesDep) -> Response:
    """Rows ingested, valid and invalid, file runs by outcome and duration, and when
    consuming: micro-batches, their latency, the Kafka lag and the messages in flight."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
