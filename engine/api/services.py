"""What the lifespan opens and closes: the database, the schema, metrics, the consumer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import BaseModel

from engine.api.consumer import BackgroundConsumer
from engine.api.database import Database
from engine.api.lake import LakeDatabase
from engine.api.metrics import Metrics
from engine.api.models import ErrorBody
from engine.api.settings import ApiSettings
from engine.api.spool import Spool, remove_stale
from engine.api.summaries import Answers, SummaryCache
from engine.lake.location import Lake
from engine.pipeline import prepare_schema
from engine.schemas import load_schema
from engine.store.runs import mark_interrupted
from engine.store.store import SHARED_BULK_LOAD, Store
from engine.validation.compiler import compile_schema

LOG = logging.getLogger("engine.api")
MAX_ID = 2**63 - 1

# What each status means, for the OpenAPI description of every route that can answer it.
STATUS_TEXT = {
    400: "Bad input: a parameter, path or upload that cannot be used (the detail says why).",
    403: "file_path leads outside the data directory, or ingest by path is disabled.",
    404: "No such run, or no such file in the data directory.",
    409: "The database's writer stayed busy (another ingest or a Kafka batch).",
    413: "The upload is larger than the server's limit.",
    503: "The database failed and is being reopened, or stayed out of memory: retry.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": STATUS_TEXT[status]} for status in statuses}


@dataclass
class Services:
    settings: ApiSettings
    model: type[BaseModel]
    table: str  # the schema's typed table: what /report exports
    database: Database | LakeDatabase
    metrics: Metrics
    staging: Spool  # this server's staging directory (uploads, exports), removed at shutdown
    summaries: SummaryCache
    consumer: BackgroundConsumer | None
    answers: Answers

    @property
    def spool(self) -> Path:
        return self.staging.path

    @staticmethod
    def check(settings: ApiSettings) -> None:
        """Fail before the server starts, with one line, on what its lifespan would fail on."""
        load_schema(settings.schema)
        if settings.lake is not None:
            LakeDatabase(settings.lake)  # reachable; an empty lake gets its manifest
            return
        Store(settings.db).close()  # locked by another process: StoreLockedError

    @classmethod
    def open(cls, settings: ApiSettings) -> Services:
        model = load_schema(settings.schema)
        remove_stale(settings.spool_root)
        if settings.lake is not None:
            return cls._open_lake(settings, model, settings.lake)
        database = Database(lambda: open_store(settings.db))
        store = database.store
        assert store is not None
        try:
            interrupted = mark_interrupted(store)
            if interrupted:
                LOG.warning("marked %d run(s) left running by a process that died", interrupted)
            schema = prepare_schema(store, model, typed=True, context=settings.context)
            staging = Spool(settings.spool_root)
            metrics = Metrics(consuming=settings.consumer is not None)
        except BaseException:
            database.close()
            raise
        consumer = None
        if settings.consumer is not None:
            consumer = BackgroundConsumer(store, model, settings.consumer, metrics)
            consumer.start()
        return cls(
            settings,
            model,
            schema.table,
            database,
            metrics,
            staging,
            SummaryCache(),
            consumer,
            Answers(),
        )

    @classmethod
    def _open_lake(cls, settings: ApiSettings, model: type[BaseModel], lake: Lake) -> Services:
        """The same services over a lake: reads through its manifest, runs published into
        it, and the consumer's batches staged in a private file, then published."""
        from engine.lake.staging import Staging
        from engine.lake.stream import open_sink

        database = LakeDatabase(lake)
        table = compile_schema(model, typed=True, context=settings.context).table
        staging = Spool(settings.spool_root)
        metrics = Metrics(consuming=settings.consumer is not None)
        consumer = None
        if settings.consumer is not None:
            stage = Staging(lake)
            try:
                sink = open_sink(lake, stage, model, settings.consumer)
                consumer = BackgroundConsumer(
                    stage.store, model, settings.consumer, metrics, sink=sink, closing=stage.close
                )
            except BaseException:
                stage.close()
                raise
            consumer.start()
        return cls(
            settings,
            model,
            table,
            database,
            metrics,
            staging,
            SummaryCache(),
            consumer,
            Answers(),
        )

    def close(self) -> None:
        """Stop the consumer (its in-flight batch is written first), then the database."""
        try:
            if self.consumer is not None:
                self.consumer.stop("server shutting down")
        finally:
            self.database.close()
            self.staging.close()


def open_store(path: Path) -> Store:
    """The server's connection: a file run keeps the memory limit (readers share it)."""
    store = Store(path, bulk_settings=SHARED_BULK_LOAD)
    try:
        store.execute("SET TimeZone = 'UTC'")
    except BaseException:
        store.close()
        raise
    return store


async def get_services(request: Request) -> Services:
    # async: a plain function dependency would run on the worker threads, which queued
    # ingests may all hold; every endpoint would then wait for them (/health included).
    services = getattr(request.app.state, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("the API's services are opened by its lifespan (create_app)")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
