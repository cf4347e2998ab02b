"""The API's CSV downloads neutralise spreadsheet formulas; ``?sanitize=false`` does not.

Formula payloads in a text column of valid rows, and in the raw text of invalid rows, come
back from ``/report/csv`` and ``/errors/csv`` with a leading ``'``, read with Python's csv
module; numbers (a negative amount in an invalid row's errors) stay as they are; JSON has
no formulas and is untouched.
"""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from engine.reports.selections import FORMULA_STARTS
from tests.api.conftest import Server, ServerFactory

PAYLOADS = ['=HYPERLINK("http://evil.example/","x")', "=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)"]
HEADER = "external_id,amount,currency,source_channel,timestamp\n"


def neutral(text: str) -> str:
    return "'" + text if text[:1] in FORMULA_STARTS else text


@pytest.fixture(scope="module")
def server(servers: ServerFactory) -> Server:
    server = servers()
    lines = [
        f'T{i},10.5,USD,"{p.replace(chr(34), chr(34) * 2)}",2024-01-01T00:00:00Z'
        for i, p in enumerate(PAYLOADS)
    ]
    lines.append("=1+2,-5,USD,c,2024-01-01T00:00:00Z")  # invalid: amount not > 0
    body = (HEADER + "\n".join(lines) + "\n").encode()
    with server.client() as client:
        answer = client.post("/api/v1/ingest", files={"file": ("payloads.csv", body)})
        assert answer.json()["rows_invalid"] == 1, answer.text
    return server


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_report_and_errors_csv(server: Server) -> None:
    with server.client() as client:
        valid = rows(client.get("/api/v1/report/csv"))
        exact = rows(client.get("/api/v1/report/csv", params={"sanitize": "false"}))
        errors = rows(client.get("/api/v1/errors/csv"))
        raw_errors = rows(client.get("/api/v1/errors/csv", params={"sanitize": "false"}))
        as_json = client.get("/api/v1/report/json").json()
    assert [r["source_channel"] for r in valid] == [neutral(p) for p in PAYLOADS]
    assert [r["source_channel"] for r in exact] == PAYLOADS
    assert [r["amount"] for r in valid] == ["10.5"] * len(PAYLOADS)
    assert [row["source_channel"] for row in as_json] == PAYLOADS
    assert [(r["raw"], r["message"]) for r in errors] == [
        ("'=1+2,-5,USD,c,2024-01-01T00:00:00Z", "amount: Input should be greater than 0 (got '-5')")
    ]
    assert raw_errors[0]["raw"] == "=1+2,-5,USD,c,2024-01-01T00:00:00Z"
