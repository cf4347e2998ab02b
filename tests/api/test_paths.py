"""Path safety of ``file_path``: tricks that try to leave the data directory are refused.

Each refusal is checked for its exact status and message, and afterwards no run, row or
export holds anything of the files outside (they were never read).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, ServerFactory
from tests.conftest import DATA

SECRET = b"external_id,amount,currency,source_channel,timestamp\nSECRET-1,1,USD,x,2024-01-01\n"


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """data/ (served) beside outside/ (not): symlinks out, a loop, a FIFO, a directory."""
    base = tmp_path_factory.mktemp("paths")
    data, outside = base / "data", base / "outside"
    data.mkdir()
    outside.mkdir()
    (outside / "secret.csv").write_bytes(SECRET)
    (data / "ok.csv").write_bytes((DATA / "transactions_sample.csv").read_bytes())
    (data / "sub").mkdir()
    (data / "sub" / "other.ndjson").write_bytes((DATA / "transactions_sample.ndjson").read_bytes())
    (data / "link_out.csv").symlink_to(outside / "secret.csv")
    (data / "linkdir").symlink_to(outside)
    (data / "relative_out.csv").symlink_to("../outside/secret.csv")
    (data / "link_in.csv").symlink_to("ok.csv")
    (data / "loop.csv").symlink_to("loop.csv")
    os.mkfifo(data / "pipe.csv")
    return data, outside


@pytest.fixture(scope="module")
def server(servers: ServerFactory, layout: tuple[Path, Path]) -> Server:
    return servers("--data-dir", str(layout[0]))


@pytest.fixture
def client(server: Server) -> httpx.Client:
    return server.client()


def dotdot(path: str) -> tuple[int, str]:
    return 403, (
        f"file_path {path!r} contains '..' (give a path inside the data directory without '..')"
    )


def outside(path: str) -> tuple[int, str]:
    return 403, f"file_path {path!r} is outside the data directory"


def through_link(path: str) -> tuple[int, str]:
    return 403, f"file_path {path!r} leads outside the data directory (through a symlink)"


def missing(path: str) -> tuple[int, str]:
    return 404, f"file_path {path!r}: no such file in the data directory"


TRICKS: list[tuple[str, tuple[int, str]]] = [
    ("/etc/passwd", outside("/etc/passwd")),
    ("/proc/self/environ", outside("/proc/self/environ")),
    ("//etc/passwd", outside("//etc/passwd")),
    ("../outside/secret.csv", dotdot("../outside/secret.csv")),
    ("sub/../../outside/secret.csv", dotdot("sub/../../outside/secret.csv")),
    ("sub/../ok.csv", dotdot("sub/../ok.csv")),
    ("./../outside/secret.csv", dotdot("./../outside/secret.csv")),
    ("link_out.csv", through_link("link_out.csv")),
    ("relative_out.csv", through_link("relative_out.csv")),
    ("linkdir/secret.csv", through_link("linkdir/secret.csv")),
    (
        "..\\outside\\secret.csv",
        (400, "file_path contains a backslash; separate directories with /"),
    ),
    ("sub\\other.ndjson", (400, "file_path contains a backslash; separate directories with /")),
    ("ok.csv\x00../../etc/passwd", (400, "file_path contains a NUL character")),
    ("ok.csv\n", (400, "file_path contains a control character")),
    (
        "~/.bashrc",
        (
            400,
            "file_path starts with ~ (no home directory is expanded); "
            "give a path relative to the data directory",
        ),
    ),
    (
        "~root/.ssh/id_rsa",
        (
            400,
            "file_path starts with ~ (no home directory is expanded); "
            "give a path relative to the data directory",
        ),
    ),
    ("a" * 300 + ".csv", (400, "file_path has a name longer than 255 bytes")),
    ("x/" * 600 + "ok.csv", (400, "file_path is longer than 1024 characters")),
    ("", (400, "file_path is empty")),
    ("   ", (400, "file_path is empty")),
    ("sub", (400, "file_path 'sub' is a directory, not a file")),
    (".", (400, "file_path '.' is a directory, not a file")),
    ("linkdir", through_link("linkdir")),
    ("pipe.csv", (400, "file_path 'pipe.csv' is not a regular file")),
    ("loop.csv", (400, "file_path 'loop.csv' cannot be resolved (a symlink loop)")),
    ("%2e%2e/outside/secret.csv", missing("%2e%2e/outside/secret.csv")),  # never decoded twice
    ("\uff0e\uff0e/outside/secret.csv", missing("\uff0e\uff0e/outside/secret.csv")),
    ("file:///etc/passwd", missing("file:///etc/passwd")),
    ("missing.csv", missing("missing.csv")),
]


@pytest.mark.parametrize(("requested", "expected"), TRICKS)
def test_tricks_are_refused(
    client: httpx.Client, requested: str, expected: tuple[int, str]
) -> None:
    response = client.post("/api/v1/ingest", params={"file_path": requested})
    assert (response.status_code, response.json()) == (expected[0], {"detail": expected[1]})


@pytest.mark.parametrize(
    ("raw_query", "expected"),
    [
        # Percent-encoded once: the server decodes it once, to '..'.
        ("file_path=%2e%2e%2foutside%2fsecret.csv", dotdot("../outside/secret.csv")),
        ("file_path=%2E%2E/outside/secret.csv", dotdot("../outside/secret.csv")),
        ("file_path=ok.csv%00.txt", (400, "file_path contains a NUL character")),
        ("file_path=%2fetc%2fpasswd", outside("/etc/passwd")),
        (
            "file_path=..%5coutside",
            (400, "file_path contains a backslash; separate directories with /"),
        ),
    ],
)
def test_encoded_tricks_are_refused(
    client: httpx.Client, raw_query: str, expected: tuple[int, str]
) -> None:
    response = client.post(f"/api/v1/ingest?{raw_query}")
    assert (response.status_code, response.json()) == (expected[0], {"detail": expected[1]})


@pytest.fixture(scope="module")
def accepted(server: Server, layout: tuple[Path, Path]) -> list[httpx.Response]:
    """The paths inside, ingested once for the module (whichever test asks first)."""
    requests = [
        str(layout[0] / "ok.csv"),  # absolute, inside
        "sub//other.ndjson",
        "./sub/./other.ndjson",  # the same file: skipped
        "link_in.csv",  # a symlink that stays inside, read as its target: skipped
    ]
    with server.client() as client:
        return [client.post("/api/v1/ingest", params={"file_path": r}) for r in requests]


def test_paths_inside_are_accepted(accepted: list[httpx.Response]) -> None:
    got = [
        (r.status_code, r.json()["source"], r.json()["status"], r.json()["rows_total"])
        for r in accepted
    ]
    assert got == [
        (200, "ok.csv", "completed", 21),
        (200, "sub/other.ndjson", "completed", 15),
        (200, "sub/other.ndjson", "skipped", 0),
        (200, "ok.csv", "skipped", 0),
    ]


def test_nothing_outside_was_read(client: httpx.Client, accepted: list[httpx.Response]) -> None:
    """Only the two files inside were ingested, whichever tests ran before (the refused
    paths never start a run), and no export holds anything of the files outside."""
    runs = client.get("/api/v1/runs").json()["runs"]
    assert [(run["status"], run["rows_total"]) for run in runs] == [
        ("completed", 21),
        ("completed", 15),
    ]
    assert [Path(run["source_path"]).name for run in runs] == ["ok.csv", "other.ndjson"]
    assert all("outside" not in run["source_path"] for run in runs)
    for kind in ("errors", "report"):
        export = client.get(f"/api/v1/{kind}/csv")
        assert export.status_code == 200
        assert b"SECRET" not in export.content
        assert export.content.count(b"\n") > 1  # a header and rows: the runs are in it
