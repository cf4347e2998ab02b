"""`lake compact` and `lake vacuum` while writers append: nothing lost, nothing counted twice."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from deltalake import DeltaTable

from engine.generate import generate
from engine.lake.location import Lake
from tests.lake.conftest import CLI, ROOT, lake_rows

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_compaction_and_vacuum_beside_writers_keep_every_row_once(
    tmp_path: Path, cli: Cli, cli_env: dict[str, str]
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    files = []
    for n in range(6):
        path = tmp_path / f"f{n}.csv"
        generate(path, 500 + n, seed=10 + n, bad_fraction=0.3)
        files.append(path)
    for path in files[:4]:
        assert cli("run", str(path), "--lake", lake.uri, "-q").returncode == 0
    before = len(DeltaTable(lake.table_uri("raw_data")).file_uris())
    assert before == 4
    writers = [
        subprocess.Popen([*CLI, "run", str(path), "--lake", lake.uri, "-q"], env=cli_env, cwd=ROOT)
        for path in files[4:]
    ]
    compacted = cli("lake", "compact", lake.uri)
    assert [w.wait(300) for w in writers] == [0, 0]
    assert compacted.returncode == 0, compacted.stderr
    # The writers race the compaction: it finds the 4 files of the runs before, or those and
    # 1 or 2 appended beside it, and rewrites them into one (schema_versions has one file).
    lines = compacted.stdout.splitlines()
    tables = ["ingestion_batches", "raw_data", "ingestion_errors", "schema_versions"]
    assert [line.split(":")[0] for line in lines] == [*tables, "processed_data"]
    for line in lines:
        if line.startswith("schema_versions: "):
            assert line == "schema_versions: 0 files rewritten into 0 files"
        else:
            assert re.fullmatch(r"[a-z_]+: [456] files rewritten into 1 file", line), line
    vacuumed = cli("lake", "vacuum", lake.uri, "--older-than", "0s")
    assert vacuumed.returncode == 0, vacuumed.stderr
    assert lake_rows(
        lake,
        "SELECT count(*), count(DISTINCT (run_id, row_number)) FROM raw_data",
    ) == [(sum(500 + n for n in range(6)), sum(500 + n for n in range(6)))]
    assert lake_rows(
        lake, "SELECT sum(rows_valid), sum(rows_invalid) FROM ingestion_runs"
    ) == lake_rows(
        lake,
        "SELECT (SELECT count(*) FROM processed_data), (SELECT count(*) FROM ingestion_errors)",
    )
    # The 4 files became one; the 2 appends made beside it are 1 or 2 more files.
    assert len(DeltaTable(lake.table_uri("raw_data")).file_uris()) <= 3
    again = cli("lake", "compact", lake.uri)
    assert again.returncode == 0
    assert len(DeltaTable(lake.table_uri("raw_data")).file_uris()) == 1
    assert lake_rows(lake, "SELECT count(*) FROM raw_data") == [(sum(500 + n for n in range(6)),)]


def test_a_bad_retention_is_one_line(tmp_path: Path, cli: Cli) -> None:
    done = cli("lake", "vacuum", str(tmp_path), "--older-than", "a week")
    assert (done.returncode, done.stderr) == (
        2,
        "error: --older-than expects a number and a unit (s, m, h, d or w), e.g. 7d or 24h; "
        "got 'a week'\n",
    )


def test_a_retention_under_an_hour_is_rounded_up_not_down(tmp_path: Path, cli: Cli) -> None:
    """Delta's retention is in whole hours: 59m (or 90m) must not become 0h (or 1h), which
    would delete the files compaction replaced a second ago, under a reader still on them."""
    lake = Lake(str(tmp_path / "lake"))
    for n in range(3):
        path = tmp_path / f"f{n}.csv"
        generate(path, 50, seed=n)
        assert cli("run", str(path), "--lake", lake.uri, "-q").returncode == 0
    assert cli("lake", "compact", lake.uri).returncode == 0
    for retention in ("59m", "90m", "1s"):
        kept = cli("lake", "vacuum", lake.uri, "--older-than", retention)
        assert (kept.returncode, kept.stdout.splitlines()[1]) == (0, "raw_data: deleted 0 files")
    assert len(list((tmp_path / "lake" / "raw_data").glob("*.parquet"))) == 4
    gone = cli("lake", "vacuum", lake.uri, "--older-than", "0s")
    assert (gone.returncode, gone.stdout.splitlines()[1]) == (0, "raw_data: deleted 3 files")
    assert len(list((tmp_path / "lake" / "raw_data").glob("*.parquet"))) == 1
    assert lake_rows(lake, "SELECT count(*) FROM raw_data") == [(150,)]


def test_a_retention_too_long_for_a_date_is_one_line(tmp_path: Path, cli: Cli) -> None:
    done = cli("lake", "vacuum", str(tmp_path), "--older-than", "99999999999d")
    assert (done.returncode, done.stderr) == (
        2,
        "error: --older-than 99999999999d is too long (at most 999,999,999 days)\n",
    )


@pytest.mark.parametrize("command", [["compact"], ["vacuum", "--older-than", "7d"]])
@pytest.mark.parametrize("uri", ["", "  "])
def test_an_empty_uri_is_one_line_not_a_traceback(command: list[str], uri: str, cli: Cli) -> None:
    # (``lake compact "$LAKE"`` with $LAKE unset)
    done = cli("lake", command[0], uri, *command[1:])
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: URI is empty: give the lake's directory or s3://bucket/prefix\n",
    )


@pytest.mark.parametrize("command", ["compact", "vacuum"])
def test_housekeeping_of_a_lake_that_is_not_there_is_one_line(
    command: str, tmp_path: Path, cli: Cli
) -> None:
    # A typo: as `summary --lake` says, not an exit 0 that did nothing.
    typo = tmp_path / "lkae"
    done = cli("lake", command, str(typo))
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        f"error: {typo}: no lake here (it has no ingestion_batches table) (run an ingestion "
        "into it first, or give another URI)\n",
    )
    assert not typo.exists()


def test_housekeeping_of_an_s3_lake_that_is_not_there_is_one_line(
    cli: Cli, s3_lake: tuple[Lake, dict[str, str]]
) -> None:
    lake, env = s3_lake
    for command in ("compact", "vacuum"):
        done = cli("lake", command, lake.uri, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: {lake.uri}: no lake here (it has no ingestion_batches table) (run an "
            "ingestion into it first, or give another URI)\n",
        )
