"""An export killed with ``kill -9`` leaves its unfinished file behind; the next one removes it.

The unfinished file (``.raw.csv.<random>.<pid>.partial``) used to stay beside the target forever, at
hundreds of MB. A real export process is killed while DuckDB writes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from engine.store.store import Store
from tests.conftest import ROOT

ROWS = 3_000_000


def export(db: Path, output: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "export", "raw", "--db", str(db), "-o", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def test_a_killed_exports_file_is_removed_by_the_next_export(tmp_path: Path) -> None:
    db = tmp_path / "big.duckdb"
    Store(db).close()  # the engine's tables
    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO source_rows SELECT 1, range + 1, 1, repeat('x', 80) || range "
        f"FROM range({ROWS})"
    )
    con.close()
    out = tmp_path / "out"
    out.mkdir()
    live = out / f".mine.csv.{os.getpid()}.partial"  # a running process's: kept
    live.write_bytes(b"still being written")
    unrelated = out / ".notes.partial"  # not an export's name: kept
    unrelated.write_bytes(b"x")

    writer = export(db, out / "raw.csv")
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 1 << 20 for p in out.glob(f".raw.csv.*.{writer.pid}.partial")):
        assert writer.poll() is None, writer.communicate()
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.001)
    # .raw.csv.<random>.<pid>.partial: the one file of this export's
    [partial] = out.glob(f".raw.csv.*.{writer.pid}.partial")
    writer.send_signal(signal.SIGKILL)
    writer.communicate()
    assert writer.returncode == -signal.SIGKILL
    assert partial.exists() and not (out / "raw.csv").exists()
    left = partial.stat().st_size

    done = export(db, out / "again.csv")
    stdout, stderr = done.communicate(timeout=300)
    assert (done.returncode, stderr) == (
        0,
        f"warning: removed 1 unfinished export(s) of a process that ended ({partial.name}: "
        f"{left / (1 << 20):,.1f} MiB)\n",
    )
    assert stdout.startswith(f"exported {ROWS:,} rows of raw_data to {out / 'again.csv'} ")
    assert not partial.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(["again.csv", live.name, unrelated.name])
    with (out / "again.csv").open() as fh:
        assert sum(1 for _ in fh) == ROWS + 1


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_an_export_to_a_full_disk_is_one_line_and_exit_1(
    small_disk: Callable[[str], Path], tmp_path: Path, fmt: str
) -> None:
    """DuckDB's COPY and xlsxwriter both fail on a full disk: one line, exit code 1 (a
    runtime failure), the old file untouched, nothing half-written left. (xlsxwriter's
    half-written archive once printed an "Exception ignored" traceback as it was collected.)"""
    disk = small_disk("64k")
    out = disk / f"out.{fmt}"
    out.write_bytes(b"old")
    db = tmp_path / "rows.duckdb"
    with Store(db) as store:
        store.execute(
            "INSERT INTO source_rows SELECT 1, range + 1, 1, md5(range::VARCHAR) FROM range(20000)"
        )
    done = export(db, out)
    stdout, stderr = done.communicate(timeout=300)
    assert (done.returncode, stdout, stderr) == (
        1,
        "",
        f"error: {out}: cannot write the export: the disk is full (free some space on its "
        "disk and run again; nothing was written under this name)\n",
    )
    assert sorted(p.name for p in disk.iterdir()) == [out.name]
    assert out.read_bytes() == b"old"
