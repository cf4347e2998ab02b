"""``GET /api/v1/health`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Response

from engine.api.metrics import CONTENT_TYPE
from engine.api.models import ConsumerStatus, Health
from engine.api.services import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/api/v1/health", response_model=Health)
async def health(services: ServicesDep) -> Health:
    """The database answers; what holds its writer; the consumer's state when consuming."""

    def probe() -> None:
        with services.database.reader() as store:
            store.rows("SELECT 1")

    await anyio.to_thread.run_sync(probe)
    consumer = None
    if services.consumer is not None:
        consumer = ConsumerStatus.model_validate(services.consumer.state(), from_attributes=True)
    settings = services.settings
    return Health(
        status="degraded" if consumer is not None and consumer.state == "failed" else "ok",
        database=str(settings.db),
        schema_name=services.model.__name__,
        data_dir=None if settings.data_dir is None else str(settings.data_dir),
        writer=services.database.writer,
        consumer=consumer,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
)
async def metrics(services: ServicesDep) -> Response:
    """Rows ingested, valid and invalid, file runs by outcome and duration, and when
    consuming: micro-batches, their latency, the Kafka lag and the messages in flight."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
