"""``GET /api/v1/summary``, ``/runs`` and ``/runs/{run_id}``: read on a cursor of their own.

The summary comes from the server's run-by-run cache (``engine.api.summaries``), equal to
``cli.py summary --json`` of the same committed state. It, and a page of runs, are answered
without reading DuckDB while the database has not changed since they were read.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query

from engine.api.errors import NotFoundError
from engine.api.models import ErrorCount, Run, RunDetail, RunsPage, Summary
from engine.api.services import MAX_ID, Services, ServicesDep, error_responses
from engine.reports import summary as summaries
from engine.reports.summary import errors_by_field, run_rows
from engine.store.ddl import RUNS
from engine.store.store import Store

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/summary", response_model=Summary)
async def get_summary(services: ServicesDep) -> Summary:
    """Totals and success rate over completed runs, per-run figures, errors by field and
    type, and the most frequent offending values per field (as `cli.py summary --json`)."""

    return Summary.model_validate(await read_summary(services), from_attributes=True)


async def read_summary(services: Services) -> summaries.Summary:
    """The summary as of now: the one in hand if nothing changed since it was read (no
    DuckDB read at all), otherwise read on a worker thread."""
    changes = services.database.changes()
    found = services.summaries.current(changes)
    if found is not None:
        return found
    return await anyio.to_thread.run_sync(refresh_summary, services, changes)


def refresh_summary(services: Services, changes: Hashable = None) -> summaries.Summary:
    """Read the summary if the database changed (an ingest calls it before it answers, so
    that readers find the summary already up to date)."""
    changes = changes or services.database.changes()
    return services.database.read(partial(services.summaries.summary, changes=changes))


@router.get("/runs", response_model=RunsPage, responses=error_responses(400))
async def list_runs(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Runs per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Runs to skip.")] = 0,
) -> RunsPage:
    """The run history, oldest first: file runs and Kafka consumer sessions."""
    changes = services.database.changes()
    kept = services.answers.get(changes, ("runs", limit, offset))
    if isinstance(kept, RunsPage):
        return kept

    def read(store: Store) -> RunsPage:
        with store.transaction():  # the count and the page from one snapshot
            total = int(store.rows(f"SELECT count(*) FROM {RUNS}")[0][0])
            rows = run_rows(store, limit=limit, offset=offset)
        runs = [Run.model_validate(row, from_attributes=True) for row in rows]
        page = RunsPage(total=total, limit=limit, offset=offset, runs=runs)
        services.answers.put(changes, ("runs", limit, offset), page)
        return page

    return await anyio.to_thread.run_sync(services.database.read, read)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=error_responses(400, 404))
async def get_run(
    services: ServicesDep,
    run_id: Annotated[int, Path(ge=1, le=MAX_ID, description="A run id, as /runs lists them.")],
) -> RunDetail:
    """One run's figures and its errors by field and type."""

    def read(store: Store) -> RunDetail:
        with store.transaction():
            found = run_rows(store, run_id=run_id)
            if not found:
                raise no_such_run(store, run_id)
            errors = errors_by_field(store, run_id=run_id)
        return RunDetail.model_validate(
            {
                **Run.model_validate(found[0], from_attributes=True).model_dump(),
                "errors": [ErrorCount.model_validate(e, from_attributes=True) for e in errors],
            }
        )

    return await anyio.to_thread.run_sync(services.database.read, read)


def no_such_run(store: Store, run_id: int) -> NotFoundError:
    low, high = store.rows(f"SELECT min(run_id), max(run_id) FROM {RUNS}")[0]
    known = "no runs yet" if low is None else f"runs are {low} to {high}"
    return NotFoundError(f"run {run_id}: no such run ({known})")


def check_run(store: Store, run_id: int) -> None:
    if not store.rows(f"SELECT 1 FROM {RUNS} WHERE run_id = ?", [run_id]):
        raise no_such_run(store, run_id)
