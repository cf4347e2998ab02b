"""POST /api/v1/ingest through a real server: by path, by upload, skips, refusals, limits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import polars as pl
import pytest

from tests.api.conftest import Server, ServerFactory, stable
from tests.conftest import DATA

LIMIT = 52_428  # --max-upload-mb 0.05
CSV_TOP_ERRORS = [
    {"field": "amount", "type": "float_parsing", "count": 2},
    {"field": "amount", "type": "greater_than", "count": 2},
    {"field": "currency", "type": "value_error", "count": 2},
    {"field": "", "type": "csv_too_few_fields", "count": 1},
    {"field": "", "type": "csv_too_many_fields", "count": 1},
    {"field": "", "type": "csv_unterminated_quote", "count": 1},
    {"field": "", "type": "invalid_utf8", "count": 1},
    {"field": "external_id", "type": "missing", "count": 1},
    {"field": "source_channel", "type": "missing", "count": 1},
    {"field": "timestamp", "type": "datetime_from_date_parsing", "count": 1},
]
NDJSON_TOP_ERRORS = [
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
CSV_TEXT = (DATA / "transactions_sample.csv").read_bytes()
NDJSON_TEXT = (DATA / "transactions_sample.ndjson").read_bytes()


def completed(
    run_id: int,
    source: str,
    fmt: str,
    rows: tuple[int, int, int],
    top: list[dict[str, object]],
    *,
    uploaded: bool,
) -> dict[str, object]:
    return {
        "run_id": run_id,
        "status": "completed",
        "source": source,
        "uploaded": uploaded,
        "format": fmt,
        "rows_total": rows[0],
        "rows_valid": rows[1],
        "rows_invalid": rows[2],
        "duration_s": "<seconds>",
        "rows_per_s": "<rate>",
        "top_errors": top,
        "message": None,
        "previous_run": None,
    }


def skipped(source: str, fmt: str, previous: int, *, uploaded: bool) -> dict[str, object]:
    return {
        "run_id": None,
        "status": "skipped",
        "source": source,
        "uploaded": uploaded,
        "format": fmt,
        "rows_total": 0,
        "rows_valid": 0,
        "rows_invalid": 0,
        "duration_s": "<seconds>",
        "rows_per_s": "<rate>",
        "top_errors": [],
        "message": f"already ingested as run {previous} with the same schema; "
        "pass force=true to ingest it again",
        "previous_run": previous,
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    shutil.copy(DATA / "transactions_sample.csv", root)
    (root / "nested").mkdir()
    (root / "nested" / "sample.ndjson").write_bytes(NDJSON_TEXT)
    (root / "sample.txt").write_bytes(CSV_TEXT)
    (root / "empty.csv").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def spool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def server(servers: ServerFactory, data_dir: Path, spool: Path) -> Server:
    return servers(
        "--data-dir", str(data_dir), "--spool-dir", str(spool), "--max-upload-mb", "0.05"
    )


@pytest.fixture
def client(server: Server) -> httpx.Client:
    return server.client()


def next_run(client: httpx.Client) -> int:
    return int(client.get("/api/v1/runs").json()["total"]) + 1


def test_by_path_then_skipped_then_forced(client: httpx.Client, data_dir: Path) -> None:
    first = next_run(client)
    response = client.post("/api/v1/ingest", params={"file_path": "transactions_sample.csv"})
    assert response.status_code == 200
    assert stable(response.json()) == completed(
        first, "transactions_sample.csv", "csv", (21, 7, 14), CSV_TOP_ERRORS, uploaded=False
    )
    again = client.post("/api/v1/ingest", params={"file_path": "transactions_sample.csv"})
    assert again.status_code == 200
    assert stable(again.json()) == skipped("transactions_sample.csv", "csv", first, uploaded=False)
    # Same bytes under another name and format declared: still the same content, skipped.
    renamed = client.post(
        "/api/v1/ingest", params={"file_path": "sample.txt", "source_type": "csv"}
    )
    assert stable(renamed.json()) == skipped("sample.txt", "csv", first, uploaded=False)
    forced = client.post(
        "/api/v1/ingest", params={"file_path": "transactions_sample.csv", "force": "true"}
    )
    assert stable(forced.json()) == completed(
        first + 1, "transactions_sample.csv", "csv", (21, 7, 14), CSV_TOP_ERRORS, uploaded=False
    )
    run = client.get(f"/api/v1/runs/{first}").json()
    assert (run["status"], run["rows_total"], run["source_path"]) == (
        "completed",
        21,
        str(data_dir.resolve() / "transactions_sample.csv"),
    )


def test_nested_path_and_upload(client: httpx.Client) -> None:
    first = next_run(client)
    by_path = client.post("/api/v1/ingest", params={"file_path": "nested/sample.ndjson"})
    assert stable(by_path.json()) == completed(
        first, "nested/sample.ndjson", "ndjson", (15, 5, 10), NDJSON_TOP_ERRORS, uploaded=False
    )
    upload = client.post(
        "/api/v1/ingest",
        files={"file": ("sample.ndjson", NDJSON_TEXT, "application/x-ndjson")},
        data={"force": "true"},
    )
    assert upload.status_code == 200
    assert stable(upload.json()) == completed(
        first + 1, "sample.ndjson", "ndjson", (15, 5, 10), NDJSON_TOP_ERRORS, uploaded=True
    )
    same = client.post("/api/v1/ingest", files={"file": ("again.ndjson", NDJSON_TEXT)})
    assert stable(same.json()) == skipped("again.ndjson", "ndjson", first, uploaded=True)


def test_upload_format_from_form_or_query(client: httpx.Client) -> None:
    first = next_run(client)
    body = CSV_TEXT.replace(b"TXN-1,", b"TXN-1-form,")
    by_form = client.post(
        "/api/v1/ingest",
        files={"file": ("export.txt", body, "text/plain")},
        data={"source_type": "csv"},
    )
    assert stable(by_form.json()) == completed(
        first, "export.txt", "csv", (21, 7, 14), CSV_TOP_ERRORS, uploaded=True
    )
    by_query = client.post(
        "/api/v1/ingest",
        params={"source_type": "csv", "force": "true"},
        files={"file": ("export.txt", body)},
    )
    assert by_query.json()["run_id"] == first + 1
    # A client's directories and odd characters never reach the staging file's name.
    odd = client.post(
        "/api/v1/ingest",
        headers=FORM,
        content=multipart(
            "XyZ", ("file", "../../etc/x\\ev\x07il.csv", CSV_TEXT.replace(b"TXN-1,", b"TXN-1-o,"))
        ),
    )
    assert (odd.status_code, odd.json()["source"]) == (200, "evil.csv")


def multipart(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content
        out += b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


FORM = {"content-type": "multipart/form-data; boundary=XyZ"}
NOTHING = (
    "nothing to ingest: upload a file as multipart/form-data (field 'file') "
    "or name one with file_path"
)


@pytest.mark.parametrize(
    ("params", "headers", "body", "detail"),
    [
        ({}, {}, b"", NOTHING),
        ({}, {"content-type": "application/json"}, b'{"file_path": "x.csv"}', NOTHING),
        (
            {"file_path": "transactions_sample.csv"},
            FORM,
            multipart("XyZ", ("file", "a.csv", CSV_TEXT)),
            "give either an upload or file_path, not both",
        ),
        (
            {"source_type": "xml", "file_path": "transactions_sample.csv"},
            {},
            b"",
            "query parameter source_type: Input should be 'csv', 'json', 'ndjson', 'parquet' or "
            "'arrow' (got 'xml')",
        ),
        (
            {"force": "perhaps", "file_path": "transactions_sample.csv"},
            {},
            b"",
            "query parameter force: Input should be a valid boolean, unable to interpret "
            "input (got 'perhaps')",
        ),
        (
            {"file_path": "sample.txt"},
            {},
            b"",
            "{data}/sample.txt: cannot tell the format from the extension '.txt' "
            "(pass source_type=csv|ndjson|json|parquet|arrow)",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.txt", CSV_TEXT)),
            "upload:a.txt: cannot tell the format from the extension '.txt' "
            "(pass source_type=csv|ndjson|json|parquet|arrow)",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.csv", CSV_TEXT), ("other", None, b"1")),
            "unexpected form field 'other' (expected file, source_type, force)",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("source_type", None, b"csv")),
            "the form has no 'file' part with the file to ingest",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.csv", CSV_TEXT), ("file", "b.csv", CSV_TEXT)),
            "send one file per request",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.txt", CSV_TEXT), ("source_type", None, b"xml")),
            "form field source_type: 'xml' is not one of csv, json, ndjson, parquet, arrow",
        ),
        (
            {"source_type": "ndjson"},
            FORM,
            multipart("XyZ", ("file", "a.txt", CSV_TEXT), ("source_type", None, b"csv")),
            "source_type is 'ndjson' in the query but 'csv' in the form",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.csv", CSV_TEXT), ("force", None, b"maybe")),
            "form field force: 'maybe' is not true or false",
        ),
        (
            {},
            {"content-type": "multipart/form-data"},
            multipart("XyZ", ("file", "a.csv", CSV_TEXT)),
            "multipart/form-data without a boundary",
        ),
        (
            {},
            FORM,
            multipart("XyZ", ("file", "a.csv", CSV_TEXT))[:-12],
            "the multipart body ended before its closing boundary",
        ),
        (
            {},
            FORM,
            b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--XyZ--\r\n",
            "a form part has no name (Content-Disposition: form-data; name=...)",
        ),
        (
            {},
            FORM,
            b"--XyZ\r\nno colon in this header\r\n\r\nabc\r\n--XyZ--\r\n",
            "malformed multipart body (Found invalid character 32 in header at 9)",
        ),
    ],
)
def test_bad_requests(
    client: httpx.Client,
    params: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    detail: str,
    data_dir: Path,
) -> None:
    before = next_run(client)
    response = client.post("/api/v1/ingest", params=params, headers=headers, content=body)
    detail = detail.replace("{data}", str(data_dir.resolve()))
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert next_run(client) == before  # nothing was ingested


def test_unreadable_files_are_400(client: httpx.Client, data_dir: Path, spool: Path) -> None:
    by_path = client.post("/api/v1/ingest", params={"file_path": "empty.csv"})
    assert (by_path.status_code, by_path.json()) == (
        400,
        {"detail": f"{data_dir.resolve() / 'empty.csv'}: file is empty"},
    )
    # An upload is named by the client's file name, never by its staging copy on the server.
    upload = client.post("/api/v1/ingest", files={"file": ("empty.csv", b"")})
    assert (upload.status_code, upload.json()) == (
        400,
        {"detail": "upload:empty.csv: file is empty"},
    )
    not_array = client.post(
        "/api/v1/ingest", files={"file": ("one.json", b'{"a": 1}')}, data={"source_type": "json"}
    )
    assert (not_array.status_code, not_array.json()) == (
        400,
        {
            "detail": "upload:one.json, line 1: not a JSON array: the file does not start "
            "with '[' (use source_type=ndjson for one object per line)"
        },
    )
    # Found once the run has started: the failed run is recorded under the client's name too.
    array = client.post("/api/v1/ingest", files={"file": ("array.ndjson", b'[{"a": 1}]\n')})
    problem = (
        "upload:array.ndjson, line 1: looks like a JSON array, not NDJSON (one object per "
        "line) (use source_type=json)"
    )
    assert (array.status_code, array.json()) == (400, {"detail": problem})
    failed = client.get("/api/v1/runs", params={"limit": 1000}).json()["runs"][-1]
    assert (failed["source_path"], failed["status"], failed["message"]) == (
        "upload:array.ndjson",
        "failed",
        f"SourceError: {problem.replace('source_type=json', 'format json')}",
    )
    assert str(spool) not in upload.text + not_array.text + array.text


def test_uploads_over_the_limit_are_413(client: httpx.Client, spool: Path) -> None:
    big = b"external_id,amount\n" + b"X,1\n" * 50_000  # 200 kB, over the 52,428 bytes allowed
    request = client.build_request("POST", "/api/v1/ingest", files={"file": ("big.csv", big)})
    declared = int(request.headers["content-length"])
    response = client.send(request)
    assert (response.status_code, response.json()) == (
        413,
        {
            "detail": f"the upload ({declared:,} bytes) is larger than the server's limit of "
            f"{LIMIT:,} bytes"
        },
    )
    # Within the framing slack of Content-Length, and sent chunked: caught while streaming.
    near = b"external_id,amount\n" + b"X,1\n" * 15_000  # 60 kB
    for content in (
        multipart("XyZ", ("file", "near.csv", near)),
        iter([multipart("XyZ", ("file", "near.csv", near))]),
    ):
        streamed = client.post("/api/v1/ingest", headers=FORM, content=content)
        assert (streamed.status_code, streamed.json()) == (
            413,
            {"detail": f"the upload is larger than the server's limit of {LIMIT:,} bytes"},
        )


def test_staging_is_cleaned(client: httpx.Client, spool: Path) -> None:
    client.post("/api/v1/ingest", files={"file": ("x.csv", CSV_TEXT)}, params={"force": "true"})
    (staging,) = spool.glob(".serve-spool-*")
    assert list(staging.iterdir()) == [staging / ".lock"]  # held while the server runs


def test_a_name_without_an_extension_is_told_by_its_first_bytes(
    client: httpx.Client, tmp_path: Path
) -> None:
    """As `cli.py run` does: JSON, Parquet and Arrow show their format in their first bytes
    (the API asked for source_type; independent README audit)."""
    frame = pl.DataFrame(
        {"external_id": ["T1", "T2"], "amount": [1.5, -2.0], "source_channel": ["web", "pos"]}
    )
    parquet, arrow = tmp_path / "p", tmp_path / "a"
    frame.write_parquet(parquet)
    frame.write_ipc(arrow)
    ndjson = b"".join(json.dumps(row).encode() + b"\n" for row in frame.to_dicts())
    for name, body, fmt in (
        ("export", parquet.read_bytes(), "parquet"),
        ("feed", arrow.read_bytes(), "arrow"),
        ("lines", ndjson, "ndjson"),
    ):
        # The same rows in each layout are the same content: forced, not skipped.
        done = client.post("/api/v1/ingest", files={"file": (name, body)}, data={"force": "1"})
        assert done.status_code == 200, done.text
        result = done.json()
        assert (result["format"], result["rows_total"], result["rows_valid"]) == (fmt, 2, 1)
