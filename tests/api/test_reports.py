"""Summary, runs, exports, health, metrics and docs of a server holding two known runs.

Run 1 is data/transactions_sample.csv ingested by path (21 rows, 7 valid), run 2 the NDJSON
sample uploaded (15 rows, 5 valid). Bodies are compared whole; only timings are masked.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import polars as pl
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Server, ServerFactory, stable
from tests.conftest import DATA

ERROR_COLUMNS = ["run_id", "row_number", "line_number", "message", "errors", "raw"]
REPORT_COLUMNS = [
    "run_id",
    "row_number",
    "external_id",
    "amount",
    "currency",
    "source_channel",
    "timestamp",
]
GREATER = "amount: Input should be greater than 0"
NUMBER = "amount: Input should be a valid number, unable to parse string as a number"
CURRENCY = "currency: Value error, currency must be one of USD, EUR, GBP, AUD"
FUTURE = "timestamp: Value error, timestamp must not be in the future (got '2099-01-01T00:00:00')"
ERRORS = [
    (1, 3, 4, f"{GREATER} (got '-50.0')"),
    (1, 5, 6, f"{NUMBER} (got 'abc')"),
    (1, 6, 7, f"{CURRENCY} (got 'JPY')"),
    (1, 7, 8, "external_id: Field required"),
    (1, 9, 10, "source_channel: Field required"),
    (1, 10, 11, FUTURE),
    (
        1,
        11,
        12,
        "timestamp: Input should be a valid datetime or date, month value is outside "
        "expected range of 1-12 (got '2024-13-01T00:00:00')",
    ),
    (1, 12, 13, f"{NUMBER} (got '1,000.00')"),
    (1, 13, 14, f"{CURRENCY} (got 'CAD')"),
    (1, 14, 15, f"{GREATER} (got '0')"),
    (1, 15, 16, "Expected 5 fields, found 4"),
    (1, 16, 17, "Expected 5 fields, found 6"),
    (1, 17, 18, "Unterminated quoted field: a field opens a quote that the line never closes"),
    (1, 21, 22, "Invalid UTF-8: byte 0xe9 at position 23 of the line"),
    (2, 3, 3, f"{GREATER} (got -50.0)"),
    (2, 5, 5, f"{NUMBER} (got 'abc')"),
    (2, 6, 6, f"{CURRENCY} (got 'JPY')"),
    (2, 7, 7, "external_id: Field required"),
    (2, 8, 8, "amount: Input should be a valid number (got null)"),
    (2, 9, 9, "external_id: Input should be a valid string (got 109)"),
    (2, 10, 10, FUTURE),
    (
        2,
        12,
        12,
        "Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 60 "
        "(char 59)",
    ),
    (2, 13, 13, "Invalid JSON: Expecting value: line 1 column 1 (char 0)"),
    (2, 14, 14, "Input should be a valid dictionary or instance of Transaction"),
]
# (run_id, row_number, external_id, amount, currency, source_channel); rows 4 and 104 have
# no timestamp: the model's default (the time of ingestion) is stored.
VALID = [
    (1, 1, "TXN-1", 120.5, "USD", "CHANNEL1"),
    (1, 2, "TXN-2", 89.99, "EUR", "CHANNEL2"),
    (1, 4, "TXN-4", 2500.0, "AUD", "CHANNEL4"),
    (1, 8, "TXN-8", 42.0, "USD", "CHANNEL4"),
    (1, 18, "TXN-18", 300.25, "GBP", 'CHANNEL "VIP"'),
    (1, 19, "TXN-19", math.inf, "USD", "CHANNEL2"),
    (1, 20, "TXN-20", 19.99, "AUD", "CHANNEL3"),
    (2, 1, "TXN-101", 120.5, "USD", "CHANNEL1"),
    (2, 2, "TXN-102", 89.99, "EUR", "CHANNEL2"),
    (2, 4, "TXN-104", 2500.0, "AUD", "CHANNEL4"),
    (2, 11, "TXN-111", 42.0, "USD", "CHANNEL1"),
    (2, 15, "TXN-115", 99.95, "GBP", "CHANNEL2"),
]
TIMESTAMPS = {
    (1, 1): "2024-03-01T09:15:00",
    (1, 2): "2024-03-01T09:16:30",
    (1, 8): "2024-03-01T07:21:00",
    (1, 18): "2024-03-01T09:28:00",
    (1, 19): "2024-03-01T09:29:00",
    (1, 20): "2024-03-01T00:00:00",
    (2, 1): "2024-03-01T09:15:00",
    (2, 2): "2024-03-01T09:16:30",
    (2, 11): "2024-03-01T09:20:00",
    (2, 15): "2024-03-01T08:35:00",
}
NDJSON_ERRORS = [
    {"field": "", "type": "json_invalid", "count": 2},
    {"field": "", "type": "model_type", "count": 1},
    {"field": "amount", "type": "float_parsing", "count": 1},
    {"field": "amount", "type": "float_type", "count": 1},
    {"field": "amount", "type": "greater_than", "count": 1},
    {"field": "currency", "type": "value_error", "count": 1},
    {"field": "external_id", "type": "missing", "count": 1},
    {"field": "external_id", "type": "string_type", "count": 1},
    {"field": "timestamp", "type": "value_error", "count": 1},
]


class Known:
    def __init__(self, server: Server, data: Path, started: datetime, upload: str) -> None:
        self.server = server
        self.data = data
        self.started = started
        self.upload_path = upload


@pytest.fixture(scope="module")
def known(servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Known:
    data = tmp_path_factory.mktemp("data")
    shutil.copy(DATA / "transactions_sample.csv", data)
    server = servers("--data-dir", str(data))
    started = datetime.now(UTC)
    with server.client() as client:
        by_path = client.post("/api/v1/ingest", params={"file_path": "transactions_sample.csv"})
        upload = client.post(
            "/api/v1/ingest",
            files={"file": ("sample.ndjson", (DATA / "transactions_sample.ndjson").read_bytes())},
        )
        assert (by_path.json()["run_id"], upload.json()["run_id"]) == (1, 2)
        upload_path = client.get("/api/v1/runs/2").json()["source_path"]
    assert upload_path == "upload:sample.ndjson"  # the client's name, not the staging copy
    return Known(server, data.resolve(), started, upload_path)


@pytest.fixture
def client(known: Known) -> httpx.Client:
    return known.server.client()


def run(known: Known, run_id: int) -> dict[str, Any]:
    csv = run_id == 1
    return {
        "run_id": run_id,
        "source_kind": "file",
        "source_path": str(known.data / "transactions_sample.csv") if csv else known.upload_path,
        "format": "csv" if csv else "ndjson",
        "schema_name": "Transaction",
        "status": "completed",
        "started_at": "<timestamp>",
        "duration_s": "<seconds>",
        "rows_total": 21 if csv else 15,
        "rows_valid": 7 if csv else 5,
        "rows_invalid": 14 if csv else 10,
        "success_rate": 1 / 3,
        "rows_per_s": "<rate>",
        "message": None,
    }


def count(field: str, kind: str, n: int) -> dict[str, Any]:
    return {"field": field, "type": kind, "count": n}


def value(field: str, v: Any, n: int) -> dict[str, Any]:
    return {"field": field, "value": v, "count": n}


def test_summary(client: httpx.Client, known: Known) -> None:
    response = client.get("/api/v1/summary")
    assert response.status_code == 200
    assert stable(response.json()) == {
        "runs_completed": 2,
        "runs_failed": 0,
        "rows_total": 36,
        "rows_valid": 12,
        "rows_invalid": 24,
        "success_rate": 1 / 3,
        "rows_per_s": "<rate>",
        "runs": [run(known, 1), run(known, 2)],
        "errors_by_field": [
            count("amount", "float_parsing", 3),
            count("amount", "greater_than", 3),
            count("currency", "value_error", 3),
            count("", "json_invalid", 2),
            count("external_id", "missing", 2),
            count("timestamp", "value_error", 2),
            count("", "csv_too_few_fields", 1),
            count("", "csv_too_many_fields", 1),
            count("", "csv_unterminated_quote", 1),
            count("", "invalid_utf8", 1),
            count("", "model_type", 1),
            count("amount", "float_type", 1),
            count("external_id", "string_type", 1),
            count("source_channel", "missing", 1),
            count("timestamp", "datetime_from_date_parsing", 1),
        ],
        "top_values": [
            value("amount", "abc", 2),
            value("amount", "-50.0", 1),
            value("amount", "0", 1),
            value("amount", "1,000.00", 1),
            value("amount", -50.0, 1),
            value("currency", "JPY", 2),
            value("currency", "CAD", 1),
            value("timestamp", "2099-01-01T00:00:00", 2),
            value("timestamp", "2024-13-01T00:00:00", 1),
            value("external_id", 109, 1),
        ],
    }
    started = datetime.fromisoformat(response.json()["runs"][0]["started_at"])
    assert known.started <= started <= datetime.now(UTC)


def test_runs(client: httpx.Client, known: Known) -> None:
    assert stable(client.get("/api/v1/runs").json()) == {
        "total": 2,
        "limit": 100,
        "offset": 0,
        "runs": [run(known, 1), run(known, 2)],
    }
    assert stable(client.get("/api/v1/runs", params={"limit": 1, "offset": 1}).json()) == {
        "total": 2,
        "limit": 1,
        "offset": 1,
        "runs": [run(known, 2)],
    }
    one = client.get("/api/v1/runs/2")
    assert (one.status_code, stable(one.json())) == (
        200,
        {**run(known, 2), "errors": NDJSON_ERRORS},
    )


@pytest.mark.parametrize(
    ("url", "status", "detail"),
    [
        ("/api/v1/runs/3", 404, "run 3: no such run (runs are 1 to 2)"),
        (
            "/api/v1/runs/0",
            400,
            "path parameter run_id: Input should be greater than or equal to 1 (got '0')",
        ),
        (
            "/api/v1/runs/x",
            400,
            "path parameter run_id: Input should be a valid integer, unable to parse string "
            "as an integer (got 'x')",
        ),
        (
            "/api/v1/runs?limit=0",
            400,
            "query parameter limit: Input should be greater than or equal to 1 (got '0')",
        ),
        (
            "/api/v1/errors/xml",
            400,
            "path parameter format: Input should be 'csv', 'json', 'ndjson', 'parquet' or "
            "'xlsx' (got 'xml')",
        ),
        (
            "/api/v1/report/CSV",
            400,
            "path parameter format: Input should be 'csv', 'json', 'ndjson', 'parquet' or "
            "'xlsx' (got 'CSV')",
        ),
        ("/api/v1/errors/csv?run_id=7", 404, "run 7: no such run (runs are 1 to 2)"),
        ("/api/v1/report/parquet?run_id=9", 404, "run 9: no such run (runs are 1 to 2)"),
        (
            "/api/v1/report/csv?run_id=-1",
            400,
            "query parameter run_id: Input should be greater than or equal to 1 (got '-1')",
        ),
    ],
)
def test_refusals(client: httpx.Client, url: str, status: int, detail: str) -> None:
    response = client.get(url)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def read_export(fmt: str, content: bytes) -> list[dict[str, Any]]:
    """An exported file read back by an independent reader, as a list of rows."""
    if fmt == "csv":
        return pl.read_csv(io.BytesIO(content), infer_schema=False).to_dicts()
    if fmt == "json":
        rows: list[dict[str, Any]] = json.loads(content)
        return rows
    if fmt == "ndjson":
        return [json.loads(line) for line in content.decode().splitlines()]
    if fmt == "parquet":
        return pl.read_parquet(io.BytesIO(content)).to_dicts()
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    header, *body = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in body]


MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@pytest.mark.parametrize("fmt", list(MEDIA))
def test_errors_export(client: httpx.Client, fmt: str) -> None:
    response = client.get(f"/api/v1/errors/{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA[fmt]
    assert response.headers["content-disposition"] == f'attachment; filename="errors.{fmt}"'
    rows = read_export(fmt, response.content)
    assert list(rows[0]) == ERROR_COLUMNS
    found = [
        (int(r["run_id"]), int(r["row_number"]), int(r["line_number"]), r["message"]) for r in rows
    ]
    assert found == ERRORS
    first_errors = rows[0]["errors"]
    if isinstance(first_errors, str):
        first_errors = json.loads(first_errors)
    assert first_errors == [
        {
            "type": "greater_than",
            "loc": ["amount"],
            "msg": "Input should be greater than 0",
            "input": "-50.0",
        }
    ]
    assert rows[0]["raw"] == "TXN-3,-50.0,GBP,CHANNEL3,2024-03-01T09:17:00"
    one_run = client.get(f"/api/v1/errors/{fmt}", params={"run_id": 2})
    assert one_run.headers["content-disposition"] == f'attachment; filename="errors_run_2.{fmt}"'
    assert [int(r["row_number"]) for r in read_export(fmt, one_run.content)] == [
        row for run_id, row, _, _ in ERRORS if run_id == 2
    ]


def amount_of(value: Any, fmt: str) -> float:
    if value is None:  # JSON has no infinity: the JSON formats write null
        assert fmt in ("json", "ndjson")
        return math.inf
    return float(value)


def timestamp_of(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)  # XLSX: UTC wall time
    return datetime.fromisoformat(str(value).replace(" ", "T"))


@pytest.mark.parametrize("fmt", list(MEDIA))
def test_report_export(client: httpx.Client, known: Known, fmt: str) -> None:
    response = client.get(f"/api/v1/report/{fmt}")
    assert response.status_code == 200
    assert response.headers["content-type"] == MEDIA[fmt]
    assert response.headers["content-disposition"] == f'attachment; filename="report.{fmt}"'
    rows = read_export(fmt, response.content)
    assert list(rows[0]) == REPORT_COLUMNS
    found = [
        (
            int(r["run_id"]),
            int(r["row_number"]),
            r["external_id"],
            amount_of(r["amount"], fmt),
            r["currency"],
            r["source_channel"],
        )
        for r in rows
    ]
    assert found == VALID
    for r in rows:
        key = (int(r["run_id"]), int(r["row_number"]))
        stamp = timestamp_of(r["timestamp"])
        if key in TIMESTAMPS:
            assert stamp == datetime.fromisoformat(TIMESTAMPS[key]).replace(tzinfo=UTC)
        else:  # the model's default: the time of ingestion (XLSX keeps milliseconds)
            assert known.started.replace(microsecond=0) <= stamp <= datetime.now(UTC)
    one_run = client.get(f"/api/v1/report/{fmt}", params={"run_id": 1})
    assert one_run.headers["content-disposition"] == f'attachment; filename="report_run_1.{fmt}"'
    assert [r["external_id"] for r in read_export(fmt, one_run.content)] == [
        v[2] for v in VALID if v[0] == 1
    ]


def staged(known: Known) -> list[str]:
    """The server's staging directory's files, once no export is left in it (or after 5 s)."""
    (spool,) = known.server.workdir.glob(".serve-spool-*")
    deadline = time.monotonic() + 5
    while (names := sorted(p.name for p in spool.iterdir())) != [".lock"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return names


def test_an_export_is_removed_whatever_its_range(client: httpx.Client, known: Known) -> None:
    """Starlette answers a bad Range (416, 400) without running a response's background
    task: each such request used to leave its staged export in the spool."""
    whole = client.get("/api/v1/errors/csv")
    assert whole.status_code == 200
    size = len(whole.content)
    bodies = {
        "bytes=99999999999-": b"",
        "bytes=5-2": b"Range header: start must be less than end",
        "bytes=0-9": whole.content[:10],
        "lines=1-2": b"Only support bytes range",
    }
    answers = []
    for url in ("/api/v1/errors/csv", "/api/v1/errors/xlsx", "/api/v1/report/json"):
        for asked, body in bodies.items():
            response = client.get(url, headers={"Range": asked})
            answers.append((response.status_code, response.headers.get("content-range")))
            if url.endswith("csv"):
                assert response.content == body
    assert [status for status, _ in answers] == [416, 400, 206, 400] * 3
    assert answers[:4] == [
        (416, f"bytes */{size}"),
        (400, None),
        (206, f"bytes 0-9/{size}"),
        (400, None),
    ]
    assert staged(known) == [".lock"]
    assert client.get("/api/v1/errors/csv").content == whole.content  # still served
    assert staged(known) == [".lock"]


def test_health(client: httpx.Client, known: Known) -> None:
    assert client.get("/api/v1/health").json() == {
        "status": "ok",
        "database": str(known.server.db),
        "database_error": None,
        "database_reopened": None,
        "schema_name": "Transaction",
        "data_dir": str(known.data),
        "writer": None,
        "consumer": None,
    }


def test_metrics(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if not s.name.endswith("_created")
    }
    path, upload = (("source", "path"),), (("source", "upload"),)
    expected = {
        ("ingest_rows_total", path): 21.0,
        ("ingest_rows_total", upload): 15.0,
        ("ingest_rows_valid_total", path): 7.0,
        ("ingest_rows_valid_total", upload): 5.0,
        ("ingest_rows_invalid_total", path): 14.0,
        ("ingest_rows_invalid_total", upload): 10.0,
        ("ingest_run_duration_seconds_count", path): 1.0,
        ("ingest_run_duration_seconds_count", upload): 1.0,
        ("ingest_runs_in_progress", ()): 0.0,
    }
    for source in ("path", "upload"):
        for status in ("completed", "skipped", "failed"):
            labels = (("source", source), ("status", status))
            expected["ingest_runs_total", labels] = 1.0 if status == "completed" else 0.0
    assert {key: samples[key] for key in expected} == expected
    assert not any(name.startswith("ingest_kafka") for name, _ in samples)  # not consuming


def test_openapi_describes_every_endpoint(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert sorted(operations) == [
        ("GET", "/api/v1/errors/{format}"),
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/report/{format}"),
        ("GET", "/api/v1/runs"),
        ("GET", "/api/v1/runs/{run_id}"),
        ("GET", "/api/v1/summary"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/ingest"),
    ]
    for key, operation in operations.items():
        assert operation.get("description"), key
        assert "200" in operation["responses"] and "422" not in operation["responses"], key
        for parameter in operation.get("parameters", []):
            assert parameter["schema"] and parameter["description"], (key, parameter["name"])
    ingest = operations["POST", "/api/v1/ingest"]
    assert sorted(ingest["responses"]) == ["200", "400", "403", "404", "409", "413"]
    assert [p["name"] for p in ingest["parameters"]] == [
        "file_path",
        "source_type",
        "force",
        "delimiter",
        "quote_char",
        "encoding",
        "mode",
    ]
    body = ingest["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": "CSV, NDJSON, a JSON array, Parquet or Arrow IPC, compressed or not "
        "(gzip, zstd, bz2, xz); the format comes from source_type, else the file name's "
        "extension, else the first bytes where they show it (JSON, Parquet, Arrow).",
    }
    assert schema["components"]["schemas"]["ErrorBody"]["required"] == ["detail"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
