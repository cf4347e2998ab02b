"""``GET /api/v1/errors/{format}`` and ``/report/{format}``: invalid or valid rows as a file.

The export is the one ``cli.py export`` writes (DuckDB's ``COPY ... TO`` in constant memory,
or XLSX in batches), read on a cursor of its own into this server's staging directory; the
file is then streamed back and removed, whatever the answer: Starlette's ``FileResponse``
answers a bad ``Range`` header (416, 400) without running its background task, which left
the staged file behind for every such request, so the removal is in ``StagedFile``'s own
``finally``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, get_args

import anyio
import duckdb
from fastapi import APIRouter, Query
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from engine.api.models import ExportFormat
from engine.api.reports import check_run
from engine.api.services import MAX_ID, Services, ServicesDep, error_responses
from engine.errors import ConfigError
from engine.reports.exports import ExportRequest, plan_export, write_export
from engine.store.store import Store

router = APIRouter(prefix="/api/v1", tags=["exports"])

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
assert set(MEDIA_TYPES) == set(get_args(ExportFormat))
BINARY = {"type": "string", "format": "binary"}
FILE_SCHEMAS: dict[str, dict[str, Any]] = {
    "json": {"type": "array", "items": {"type": "object"}, "description": "One object per row."}
}

Format = Annotated[
    ExportFormat, PathParameter(description="The file format: csv, json, ndjson, parquet or xlsx.")
]
RunFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only the rows of this run.")]
Sanitize = Annotated[
    bool,
    Query(
        description="CSV only: a text cell starting with = + - @ or a tab, CR or LF, also "
        "after spaces or invisible characters (which a spreadsheet runs as a formula), gets a "
        "leading single quote. false: every cell "
        "exactly as stored, for programs that read the file."
    ),
]


class StagedFile(FileResponse):
    """A file staged for this response alone: removed once the response ends, however it
    ends (200, 206, a 416 or 400 for a bad ``Range``, the client gone, an error)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):  # also when the request is cancelled
                await anyio.to_thread.run_sync(Path(self.path).unlink, True)


def _responses(what: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": f"{what} as a file download (an empty table gives a valid empty file)",
            "content": {
                media.split(";")[0]: {"schema": FILE_SCHEMAS.get(fmt, BINARY)}
                for fmt, media in MEDIA_TYPES.items()
            },
        },
        **error_responses(400, 404),
    }


@router.get(
    "/errors/{format}", response_class=FileResponse, responses=_responses("The invalid rows")
)
async def export_errors(
    format: Format, services: ServicesDep, run_id: RunFilter = None, sanitize: Sanitize = True
) -> FileResponse:
    """Invalid rows: `run_id`, `row_number`, `line_number`, a readable `message` per
    violation, Pydantic's error list as JSON and the raw record, so the source can be fixed."""
    return await _export(services, "errors", format, run_id, sanitize)


@router.get("/report/{format}", response_class=FileResponse, responses=_responses("The valid rows"))
async def export_report(
    format: Format, services: ServicesDep, run_id: RunFilter = None, sanitize: Sanitize = True
) -> FileResponse:
    """Valid rows: the schema's typed table (or the table of run `run_id`'s schema)."""
    return await _export(services, "processed", format, run_id, sanitize)


async def _export(
    services: Services, kind: str, fmt: str, run_id: int | None, sanitize: bool
) -> StagedFile:
    path = await anyio.to_thread.run_sync(_write, services, kind, fmt, run_id, sanitize)
    name = "errors" if kind == "errors" else "report"
    suffix = "" if run_id is None else f"_run_{run_id}"
    return StagedFile(path, media_type=MEDIA_TYPES[fmt], filename=f"{name}{suffix}.{fmt}")


def _write(services: Services, kind: str, fmt: str, run_id: int | None, sanitize: bool) -> Path:
    output = services.spool / f"export-{uuid.uuid4().hex}.{fmt}"
    table = services.table if kind == "processed" and run_id is None else None

    def write(store: Store) -> Path:
        if run_id is not None:
            check_run(store, run_id)
        request = ExportRequest(kind, fmt, output, run_id, table=table, sanitize=sanitize)
        try:
            write_export(store, plan_export(store, request))
        except ConfigError as exc:
            if isinstance(exc.__cause__, duckdb.OutOfMemoryException):
                # Out of DuckDB's memory beside other reads: the database's reader waits
                # and tries again (then a 503), as for any read, not the client's 400.
                raise exc.__cause__ from None
            # The client is told of its download, not of the server's staging directory.
            shown = f"{'errors' if kind == 'errors' else 'report'}.{fmt}"
            raise ConfigError(
                exc.problem.replace(str(output), shown),
                where=None if exc.where is None else exc.where.replace(str(output), shown),
                hint=exc.hint,
                setting=exc.setting,
            ) from exc
        return output

    return services.database.read(write)
