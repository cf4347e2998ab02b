"""Shared fixtures: real files on disk, a real DuckDB file, the real CLI, a Kafka broker,
a browser."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

import cli
from engine.streaming.local_broker import LocalBroker
from tests.reports.chromium import (
    REQUIRE_ENV,
    BrowserNotFound,
    find_browser,
    missing_browser_reason,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write a file under tmp_path and return its path."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return _write


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    runner = CliRunner()

    def _run(*args: str) -> Result:
        return runner.invoke(cli.main, list(args), catch_exceptions=False)

    return _run


def query(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read-only query against a DuckDB file (as a separate reader would)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


REQUIRE_TMPFS_ENV = "INGEST_REQUIRE_TMPFS"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs file systems (``small_disk("8m")``) under tmp_path, to fill up.
    Mounting needs root: skipped, with the reason, where it is not permitted; unless
    INGEST_REQUIRE_TMPFS=1: then they fail, so that CI never passes without having run them."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}"
            if os.environ.get(REQUIRE_TMPFS_ENV) == "1":
                pytest.fail(
                    f"{reason} ({REQUIRE_TMPFS_ENV}=1: the full-disk tests must run)",
                    pytrace=False,
                )
            pytest.skip(reason)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=True)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A Kafka-protocol broker (Tansu, in memory) on 127.0.0.1 for the whole session."""
    log: Path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with LocalBroker(log) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Path:
    """Chromium or Chrome for the tests that render a page. Without one they are skipped
    (saying how to install one), unless INGEST_REQUIRE_BROWSER=1: then they fail, so that
    CI, which installs Chromium, never passes without having run them."""
    try:
        found = find_browser(os.environ)
    except BrowserNotFound as exc:  # named explicitly, so a mistake to report, not to skip
        pytest.fail(str(exc), pytrace=False)
    if found is None:
        reason = missing_browser_reason()
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1: the browser tests must run)", pytrace=False)
        pytest.skip(reason)
    return found
