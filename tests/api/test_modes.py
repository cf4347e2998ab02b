"""``mode=`` on POST /api/v1/ingest, through a real server: replace and merge as ``run`` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import ServerFactory
from tests.conftest import query
from tests.store.lifecycle import models


def test_the_api_ingests_in_each_mode(
    servers: ServerFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("modes")
    server = servers("--schema", f"{models(workdir)}:V1", workdir=workdir)
    with server.client() as client:

        def post(text: str, mode: str | None) -> dict[str, object]:
            params = {"mode": mode} if mode else {}
            answer = client.post(
                "/api/v1/ingest", params=params, files={"file": ("r.csv", text.encode())}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert isinstance(body, dict)
            return body

        assert post("rid,value\na,1\nb,2\n", None)["rows_valid"] == 2
        assert post("rid,value\nb,5\nc,3\n", "merge")["rows_valid"] == 2
        assert post("rid,value\nd,9\n", "replace")["rows_valid"] == 1
        wrong = client.post(
            "/api/v1/ingest", params={"mode": "upsert"}, files={"file": ("r.csv", b"rid\n")}
        )
        assert (wrong.status_code, wrong.json()) == (
            400,
            {
                "detail": "query parameter mode: Input should be 'append', 'replace' or "
                "'merge' (got 'upsert')"
            },
        )
    server.stop()
    db: Path = server.db
    assert query(db, "SELECT run_id, load_mode FROM ingestion_runs ORDER BY 1") == [
        (1, "append"),
        (2, "merge"),
        (3, "replace"),
    ]
    assert query(db, "SELECT run_id, rid, value FROM readings") == [(3, "d", 9)]
    assert query(
        db,
        "SELECT run_id, row_number, by_run_id, by_row_number, how FROM replaced_rows ORDER BY ALL",
    ) == [
        (1, 1, 3, None, "replace"),
        (1, 2, 2, 1, "merge"),
        (2, 1, 3, None, "replace"),
        (2, 2, 3, None, "replace"),
    ]
