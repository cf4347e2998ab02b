"""``GET /api/v1/summary``, ``/runs`` and ``/runs/{run_id}``: read on a cursor of their own."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query

from engine.api.errors import NotFoundError
from engine.api.models import ErrorCount, Run, RunDetail, RunsPage, Summary
from engine.api.services import MAX_ID, ServicesDep, error_responses
from engine.reports.summary import errors_by_field, run_rows, summary
from engine.store.ddl import RUNS
from engine.store.store import Store

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/summary", response_model=Summary)
async def get_summary(services: ServicesDep) -> Summary:
    """Totals and success rate over completed runs, per-run figures, errors by field and
    type, and the most frequent offending values per field (as `cli.py summary --json`)."""

    def read() -> Summary:
        with services.database.reader() as store:
            return Summary.model_validate(summary(store), from_attributes=True)

    return await anyio.to_thread.run_sync(read)


@router.get("/runs", response_model=RunsPage, responses=error_responses(400))
async def list_runs(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Runs per page.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID, description="Runs to skip.")] = 0,
) -> RunsPage:
    """The run history, oldest first: file runs and Kafka consumer sessions."""

    def read() -> RunsPage:
        with services.database.reader() as store:
            total = int(store.rows(f"SELECT count(*) FROM {RUNS}")[0][0])
            rows = run_rows(store, limit=limit, offset=offset)
        runs = [Run.model_validate(row, from_attributes=True) for row in rows]
        return RunsPage(total=total, limit=limit, offset=offset, runs=runs)

    return await anyio.to_thread.run_sync(read)


@router.get("/runs/{run_id}", response_model=RunDetail, responses=error_responses(400, 404))
async def get_run(
    services: ServicesDep,
    run_id: Annotated[int, Path(ge=1, le=MAX_ID, description="A run id, as /runs lists them.")],
) -> RunDetail:
    """One run's figures and its errors by field and type."""

    def read() -> RunDetail:
        with services.database.reader() as store:
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

    return await anyio.to_thread.run_sync(read)


def no_such_run(store: Store, run_id: int) -> NotFoundError:
    low, high = store.rows(f"SELECT min(run_id), max(run_id) FROM {RUNS}")[0]
    known = "no runs yet" if low is None else f"runs are {low} to {high}"
    return NotFoundError(f"run {run_id}: no such run ({known})")


def check_run(store: Store, run_id: int) -> None:
    if not store.rows(f"SELECT 1 FROM {RUNS} WHERE run_id = ?", [run_id]):
        raise no_such_run(store, run_id)
