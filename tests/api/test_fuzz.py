"""Property-based fuzzing of the OpenAPI schema with schemathesis against a real server.

Each operation gets requests generated from the schema, valid and invalid ones; every answer
must not be a 5xx, must have a documented status and content type, match the documented
response schema, and invalid requests must be refused. Small on purpose (tens of seconds):
the other tests pin exact behaviour. (Schemathesis' lazy pytest fixture does not run under
pytest 9, so each operation's strategy drives a Hypothesis test here.)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import ServerFactory
from tests.conftest import DATA

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = [
    ("POST", "/api/v1/ingest"),
    ("GET", "/api/v1/summary"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/{run_id}"),
    ("GET", "/api/v1/errors/{format}"),
    ("GET", "/api/v1/report/{format}"),
    ("GET", "/api/v1/health"),
    ("GET", "/metrics"),
]
EXAMPLES = 25
# Operations that take no path parameter, query or body: no request of theirs can be made
# invalid, so they are fuzzed with valid requests only.
WITHOUT_INPUT = {("GET", "/api/v1/summary"), ("GET", "/api/v1/health"), ("GET", "/metrics")}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and (method, path) in WITHOUT_INPUT)
]


@pytest.fixture(scope="module")
def api_schema(
    servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> schemathesis.BaseSchema:
    data: Path = tmp_path_factory.mktemp("data")
    shutil.copy(DATA / "transactions_sample.csv", data)
    shutil.copy(DATA / "transactions_sample.ndjson", data)
    server = servers("--data-dir", str(data), "--max-upload-mb", "1", "--busy-timeout", "5")
    with server.client() as client:
        ingested = client.post("/api/v1/ingest", params={"file_path": "transactions_sample.csv"})
        assert ingested.status_code == 200
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_no_server_errors(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    takes_input = bool(operation.path_parameters or operation.query or operation.body)
    assert takes_input is ((method, path) not in WITHOUT_INPUT), (method, path)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    fuzz()
