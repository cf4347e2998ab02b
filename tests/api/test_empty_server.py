"""A fresh database and no --data-dir: empty bodies, valid empty files, ingest by path off."""

from __future__ import annotations

import io
import json

import httpx
import openpyxl
import polars as pl
import pytest

from tests.api.conftest import Server, ServerFactory
from tests.api.test_reports import ERROR_COLUMNS, REPORT_COLUMNS


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    return servers()


@pytest.fixture
def client(server: Server) -> httpx.Client:
    return server.client()


def test_empty_bodies(client: httpx.Client, server: Server) -> None:
    assert client.get("/api/v1/summary").json() == {
        "runs_completed": 0,
        "runs_failed": 0,
        "rows_total": 0,
        "rows_valid": 0,
        "rows_invalid": 0,
        "success_rate": None,
        "rows_per_s": None,
        "runs": [],
        "errors_by_field": [],
        "top_values": [],
    }
    assert client.get("/api/v1/runs").json() == {"total": 0, "limit": 100, "offset": 0, "runs": []}
    missing = client.get("/api/v1/runs/1")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "run 1: no such run (no runs yet)"},
    )
    assert client.get("/api/v1/health").json() == {
        "status": "ok",
        "database": str(server.db),
        "database_error": None,
        "database_reopened": None,
        "schema_name": "Transaction",
        "data_dir": None,
        "writer": None,
        "consumer": None,
    }


def test_ingest_by_path_is_off(client: httpx.Client) -> None:
    response = client.post("/api/v1/ingest", params={"file_path": "transactions.csv"})
    assert (response.status_code, response.json()) == (
        403,
        {
            "detail": "ingest by file_path is disabled on this server "
            "(start it with --data-dir DIR, or upload the file)"
        },
    )


@pytest.mark.parametrize("codec", ["rot13", "base64", "zlib_codec"])
def test_a_codec_that_is_no_text_encoding_is_a_400(client: httpx.Client, codec: str) -> None:
    response = client.post(
        "/api/v1/ingest",
        params={"encoding": codec},
        files={"file": ("t.csv", b"external_id,amount\nT1,5\n")},
    )
    assert (response.status_code, response.json()) == (
        400,
        {
            "detail": f"{codec!r} is not a text encoding (it transforms bytes or text, as "
            "codecs' rot13 and base64 do)"
        },
    )


@pytest.mark.parametrize("kind", ["errors", "report"])
@pytest.mark.parametrize("fmt", ["csv", "json", "ndjson", "parquet", "xlsx"])
def test_empty_tables_give_valid_empty_files(client: httpx.Client, kind: str, fmt: str) -> None:
    response = client.get(f"/api/v1/{kind}/{fmt}")
    assert response.status_code == 200
    columns = ERROR_COLUMNS if kind == "errors" else REPORT_COLUMNS
    content = response.content
    if fmt == "csv":
        assert content.decode() == ",".join(columns) + "\n"
        assert pl.read_csv(io.BytesIO(content)).columns == columns
    elif fmt == "json":
        assert json.loads(content) == []
    elif fmt == "ndjson":
        assert content == b""
    elif fmt == "parquet":
        frame = pl.read_parquet(io.BytesIO(content))
        assert (frame.columns, frame.height) == (columns, 0)
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
        assert list(sheet.iter_rows(values_only=True)) == [tuple(columns)]
