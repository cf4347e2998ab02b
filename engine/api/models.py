"""The API's response bodies as Pydantic models: what ``/docs`` shows and responses are checked against."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SourceType = Literal["csv", "json", "ndjson", "parquet", "arrow"]
ExportFormat = Literal["csv", "json", "ndjson", "parquet", "xlsx"]


class ErrorBody(BaseModel):
    detail: str = Field(description="What failed, where, and how to fix it, on one line.")


class ErrorCount(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    field: str = Field(description="Field name or dotted path; empty for a row-level error.")
    type: str = Field(description="Pydantic's error type, e.g. greater_than, missing.")
    count: int = Field(description="Invalid rows with this error.")


class IngestResult(BaseModel):
    run_id: int | None = Field(description="The new run; null when the run was skipped.")
    status: Literal["completed", "skipped"] = Field(
        description="skipped: the same content was already ingested with the same schema."
    )
    source: str = Field(
        description="file_path as resolved in the data directory, or the upload's name."
    )
    uploaded: bool
    format: SourceType
    rows_total: int
    rows_valid: int
    rows_invalid: int
    duration_s: float
    rows_per_s: float
    top_errors: list[ErrorCount] = Field(description="The most frequent errors, at most 10.")
    message: str | None = Field(description="Why a run was skipped.")
    previous_run: int | None = Field(description="For a skipped run: the run that holds it.")


class Run(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    run_id: int
    source_kind: str = Field(description="file or kafka.")
    source_path: str
    format: str
    schema_name: str
    status: str = Field(
        description="running, completed, failed, interrupted, or deleted (`delete-run`)."
    )
    started_at: datetime
    duration_s: float | None
    rows_total: int
    rows_valid: int
    rows_invalid: int
    success_rate: float | None = Field(description="rows_valid / rows_total.")
    rows_per_s: float | None
    message: str | None


class RunDetail(Run):
    errors: list[ErrorCount] = Field(description="This run's errors by field and type.")


class RunsPage(BaseModel):
    total: int = Field(description="Runs in the database.")
    limit: int
    offset: int
    runs: list[Run] = Field(description="Oldest first.")


class OffendingValue(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    field: str
    value: Any = Field(description="The failing input as JSON, as Pydantic saw it.")
    count: int


class Summary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    runs_completed: int
    runs_failed: int
    rows_total: int = Field(description="Rows of completed runs.")
    rows_valid: int
    rows_invalid: int
    success_rate: float | None
    rows_per_s: float | None
    runs: list[Run]
    errors_by_field: list[ErrorCount]
    top_values: list[OffendingValue] = Field(
        description="The most frequent failing inputs of each field."
    )


class ConsumerStatus(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    state: Literal["running", "stopped", "failed"]
    topics: list[str]
    group: str
    run_id: int | None = Field(description="The consumer session's run.")
    batches: int = Field(description="Micro-batches committed by this session.")
    in_flight: int = Field(description="Messages fetched and not yet in a micro-batch.")
    error: str | None


class DatabaseReopened(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    reason: str = Field(description="The error with which DuckDB invalidated the database.")
    runs_failed: int = Field(
        description="Runs that were running then, marked failed (a Kafka session interrupted)."
    )


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="degraded: the consumer has failed; unavailable (with a 503): the "
        "database failed and cannot be reopened yet."
    )
    database: str
    database_error: str | None = Field(
        description="Why the database cannot be used now (it is reopened on a next request)."
    )
    database_reopened: DatabaseReopened | None = Field(
        description="The last time the server reopened the database after DuckDB "
        "invalidated it; null if it never had to."
    )
    schema_name: str
    data_dir: str | None = Field(description="Where file_path is resolved; null: disabled.")
    writer: str | None = Field(description="What holds the database's writer right now.")
    consumer: ConsumerStatus | None = Field(description="null when the server does not consume.")
