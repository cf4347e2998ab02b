"""``POST /api/v1/ingest``: an uploaded file, or one named inside the data directory.

Either way the file goes through ``engine.ingest``, the call ``cli.py run`` makes, on a worker
thread (the event loop keeps answering), holding the database's writer for the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import anyio
import duckdb
from fastapi import APIRouter, Query, Request

from engine.api.errors import BadRequestError, api_spelling
from engine.api.models import ErrorCount, IngestResult, SourceType
from engine.api.paths import open_data_file
from engine.api.reports import refresh_summary
from engine.api.services import Services, ServicesDep, error_responses
from engine.api.uploads import FILE_FIELD, receive_upload
from engine.errors import EngineError
from engine.ingesting import ingest as ingest_source
from engine.pipeline import RunSummary, Tally
from engine.sources.inputs import Input, open_opened

router = APIRouter(prefix="/api/v1", tags=["ingest"])
LOG = logging.getLogger("engine.api")

SOURCE_TYPES: tuple[str, ...] = get_args(SourceType)
TOP_ERRORS = 10
RUN_THREADS = 8  # worker threads for runs (waiting for the writer, or writing)
TRUE_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

UPLOAD_BODY: dict[str, Any] = {
    "required": False,
    "description": "The file to ingest, as a multipart upload (leave out when giving file_path).",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV, NDJSON, a JSON array, Parquet or Arrow IPC, "
                        "compressed or not (gzip, zstd, bz2, xz); the format comes from "
                        "source_type, else the file name's extension, else the first bytes "
                        "where they show it (JSON, Parquet, Arrow).",
                    },
                    "source_type": {"type": "string", "enum": list(SOURCE_TYPES)},
                    "force": {"type": "boolean"},
                },
                "required": [FILE_FIELD],
                "additionalProperties": False,
            }
        }
    },
}


@router.post(
    "/ingest",
    response_model=IngestResult,
    summary="Ingest a file: upload it, or name one inside the data directory",
    responses=error_responses(400, 403, 404, 409, 413),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def ingest(
    request: Request,
    services: ServicesDep,
    file_path: Annotated[
        str | None,
        Query(description="A file inside the server's --data-dir, e.g. transactions.csv."),
    ] = None,
    source_type: Annotated[
        SourceType | None,
        Query(
            description="Input format; by default from the file name's extension, else from "
            "the first bytes where they show it (JSON, Parquet, Arrow), as `cli.py run` does."
        ),
    ] = None,
    force: Annotated[
        bool, Query(description="Ingest again even if this content was already ingested.")
    ] = False,
    delimiter: Annotated[str, Query(description="CSV: the field separator.")] = ",",
    quote_char: Annotated[str, Query(description="CSV: the quote character.")] = '"',
    encoding: Annotated[
        str, Query(description="CSV: the text encoding (latin-1, windows-1252, utf-16...).")
    ] = "utf-8",
    mode: Annotated[
        Literal["append", "replace", "merge"],
        Query(
            description="append: add the valid rows; replace: the table holds this run's "
            "valid rows only (atomically); merge: upsert on the model's __unique__ key."
        ),
    ] = "append",
) -> IngestResult:
    """Validate the file and store it as one atomic run, the same way as `cli.py run`.

    Send the file as `multipart/form-data` (field `file`; it is streamed to disk, never held
    in memory), or name a file inside the server's data directory with `file_path`. The
    answer is the run's summary; a file whose content and schema were already ingested is
    skipped (`status: skipped`) unless `force=true`.
    """
    asked = time.monotonic()
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        if file_path is None:
            raise BadRequestError(
                f"nothing to ingest: upload a file as multipart/form-data (field "
                f"{FILE_FIELD!r}) or name one with file_path"
            )
        found = await anyio.to_thread.run_sync(
            open_data_file, services.settings.data_dir, file_path
        )
        # The run reads the file opened and checked here: nothing opens its name again.
        with found.file:
            # Without source_type, the run tells the format, as `cli.py run` does.
            opened = open_opened(found.file, str(found.path))
            dialect = (delimiter, quote_char, encoding)
            run = partial(
                _run, services, opened, source_type, force, found.source, "path", dialect, mode
            )
            return await _on_run_thread(request, run, asked)
    if file_path is not None:
        raise BadRequestError("give either an upload or file_path, not both")
    upload = await receive_upload(
        request, services.spool, max_bytes=services.settings.max_upload_bytes
    )
    try:
        # Without source_type, the run tells the format: by the name, else the first bytes.
        fmt = _form_source_type(upload.fields.get("source_type"), source_type)
        force = force or _form_bool("force", upload.fields.get("force"))
        dialect = (delimiter, quote_char, encoding)
        run = partial(
            _run, services, upload.path, fmt, force, upload.filename, "upload", dialect, mode
        )
        return await _on_run_thread(request, run, asked)
    finally:
        await anyio.to_thread.run_sync(upload.discard)


async def _on_run_thread(
    request: Request, run: Callable[..., IngestResult], asked: float
) -> IngestResult:
    """``run(asked=asked)`` on one of the threads runs take, apart from the pool reads use:
    runs queued for the writer (one writes at a time) never leave /health, /summary or an
    export without a thread."""
    state = request.app.state
    limiter = getattr(state, "run_threads", None)
    if limiter is None:
        limiter = state.run_threads = anyio.CapacityLimiter(RUN_THREADS)
    return await anyio.to_thread.run_sync(partial(run, asked=asked), limiter=limiter)


def _form_source_type(form: str | None, query: str | None) -> str | None:
    if form is None:
        return query
    if form not in SOURCE_TYPES:
        raise BadRequestError(
            f"form field source_type: {form!r} is not one of {', '.join(SOURCE_TYPES)}"
        )
    if query is not None and query != form:
        raise BadRequestError(f"source_type is {query!r} in the query but {form!r} in the form")
    return form


def _form_bool(name: str, value: str | None) -> bool:
    if value is None:
        return False
    found = TRUE_WORDS.get(value.strip().lower())
    if found is None:
        raise BadRequestError(f"form field {name}: {value!r} is not true or false")
    return found


def _run(
    services: Services,
    path: Path | Input,
    fmt: str | None,
    force: bool,
    source: str,
    kind: str,
    dialect: tuple[str, str, str],
    mode: str = "append",
    *,
    asked: float,
) -> IngestResult:
    """One run, holding the writer (a worker thread: the event loop never waits for it).
    ``asked``: when the request came (``time.monotonic``); the time it waited for a thread
    counts against --busy-timeout."""
    settings = services.settings
    # An upload's run and errors name the client's file, not the staging copy on the server.
    name = f"upload:{source}" if kind == "upload" else None
    delimiter, quote_char, encoding = dialect
    metrics = services.metrics
    with services.database.writing(
        f"ingesting {source}", timeout_s=settings.busy_timeout_s, since=asked
    ) as store:
        metrics.ingesting.inc()
        try:
            summary = ingest_source(
                path,
                db=store,
                schema=services.model,
                format=fmt,
                force=force,
                context=settings.context,
                delimiter=delimiter,
                quote_char=quote_char,
                encoding=encoding,
                name=name,
                mode=mode,
            )
        except Exception:
            metrics.run_finished(kind, "failed", 0.0, Tally())
            raise
        finally:
            metrics.ingesting.dec()
    metrics.run_finished(kind, summary.status, summary.duration_s, summary.tally)
    if summary.status == "completed":
        # Count the new run into the summary before answering: readers that come after
        # this answer find it ready instead of each waiting for it.
        try:
            refresh_summary(services)
        except (EngineError, duckdb.Error) as exc:
            LOG.warning("the summary was not refreshed after run %s: %s", summary.run_id, exc)
    return _result(summary, source, kind == "upload")


def _result(summary: RunSummary, source: str, uploaded: bool) -> IngestResult:
    tally = summary.tally
    message = summary.explain(api_spelling) if summary.status == "skipped" else None
    return IngestResult(
        run_id=summary.run_id,
        status="skipped" if summary.status == "skipped" else "completed",
        source=source,
        uploaded=uploaded,
        format=summary.format,  # type: ignore[arg-type]  # one of the formats
        rows_total=tally.rows,
        rows_valid=tally.valid,
        rows_invalid=tally.invalid,
        duration_s=summary.duration_s,
        rows_per_s=summary.rows_per_s,
        top_errors=[
            ErrorCount(field=loc, type=kind, count=n)
            for loc, kind, n in summary.top_errors(TOP_ERRORS)
        ],
        message=message,
        previous_run=summary.previous_run,
    )
