"""A ``file_path`` whose name is swapped for a symlink to a file outside the data directory
while the request is served: the server refuses it or reads the file it checked, never the
file outside.

The swap is made at a chosen moment by wrapping a function the request calls (in-process
server, so that the moment is exact and the test needs no timing): right after the name is
resolved, and right before the rows are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.api.settings import ApiSettings
from engine.sources import columnar, feeds
from tests.conftest import DATA

ROWS_CSV = (
    b"external_id,amount,currency,source_channel,timestamp\n"
    b"TXN-1,120.50,USD,web,2024-03-01T09:15:00Z\n"
    b"TXN-2,89.99,EUR,pos,2024-03-01T09:16:30Z\n"
    b"TXN-3,5,USD,web,2024-03-02T10:00:00Z\n"
)
SECRET_CSV = b"external_id,amount,currency,source_channel,timestamp\nSECRET-1,1,USD,x,2024-01-01\n"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "race.csv").write_bytes((DATA / "transactions_sample.csv").read_bytes())
    (outside / "race.csv").write_bytes(SECRET_CSV)
    (data / "sub").mkdir()
    (data / "sub" / "race.csv").write_bytes((DATA / "transactions_sample.csv").read_bytes())
    pl.read_csv(ROWS_CSV, infer_schema=False).write_parquet(data / "race.parquet")
    pl.read_csv(SECRET_CSV, infer_schema=False).write_parquet(outside / "race.parquet")
    return data, outside


@pytest.fixture
def client(tmp_path: Path, dirs: tuple[Path, Path]) -> Iterator[TestClient]:
    settings = ApiSettings(db=tmp_path / "api.duckdb", data_dir=dirs[0])
    with TestClient(create_app(settings)) as client:
        yield client


def swap(name: Path, target: Path) -> None:
    """Replace ``name`` by a symlink to ``target`` (a file in one step, as an attacker would;
    a directory is moved aside first)."""
    if name.is_dir():
        name.rename(name.with_name(".moved"))
    staged = name.with_name(".swap")
    staged.symlink_to(target)
    os.replace(staged, name)


def stored(client: TestClient) -> tuple[list[tuple[str, int, str]], bytes]:
    runs = client.get("/api/v1/runs").json()["runs"]
    found = [(run["status"], run["rows_total"], run["source_path"]) for run in runs]
    return found, client.get("/api/v1/report/csv").content


@pytest.mark.parametrize(
    ("requested", "replaced", "target"),
    [
        ("race.csv", "race.csv", "race.csv"),  # the file itself
        ("sub/race.csv", "sub", "."),  # a directory on the way
    ],
)
def test_a_symlink_swapped_in_after_resolving_is_refused(
    client: TestClient,
    dirs: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    requested: str,
    replaced: str,
    target: str,
) -> None:
    data, outside = dirs
    resolve = Path.resolve
    swapped: list[Path] = []

    def resolve_then_swap(self: Path, strict: bool = False) -> Path:
        resolved = resolve(self, strict=strict)
        if self.name == "race.csv" and not swapped:
            swap(data / replaced, outside / target)
            swapped.append(self)
        return resolved

    monkeypatch.setattr(Path, "resolve", resolve_then_swap)
    response = client.post("/api/v1/ingest", params={"file_path": requested, "force": "true"})
    monkeypatch.undo()
    assert swapped == [data.resolve() / requested]
    assert (response.status_code, response.json()) == (
        403,
        {"detail": f"file_path {requested!r} leads outside the data directory (through a symlink)"},
    )
    runs, report = stored(client)
    assert runs == []
    assert b"SECRET" not in report


def test_a_symlink_swapped_in_after_opening_is_never_read(
    client: TestClient, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parquet is read with seeks: the run reads the file opened and checked, not its name
    opened again (which now leads outside)."""
    data, outside = dirs
    chunks = columnar.parquet_chunks

    def swap_then_read(*args: Any, **kwargs: Any) -> Any:
        swap(data / "race.parquet", outside / "race.parquet")
        return chunks(*args, **kwargs)

    reads: Callable[..., Any] = swap_then_read
    monkeypatch.setattr(feeds, "parquet_chunks", reads)
    response = client.post("/api/v1/ingest", params={"file_path": "race.parquet"})
    monkeypatch.undo()
    assert (data / "race.parquet").is_symlink()
    body = response.json()
    assert (response.status_code, body["source"], body["status"], body["rows_valid"]) == (
        200,
        "race.parquet",
        "completed",
        3,
    )
    runs, report = stored(client)
    assert runs == [("completed", 3, str(data.resolve() / "race.parquet"))]
    assert b"SECRET" not in report
    assert re.findall(rb"TXN-\d+|SECRET-\d+", report) == [b"TXN-1", b"TXN-2", b"TXN-3"]
