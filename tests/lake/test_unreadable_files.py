"""A file of a table's snapshot that cannot be read (a `lake vacuum --older-than 0s` deleted it
under a reader that had loaded the older version, or it is damaged): every command says so in
one line, exit 2, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.generate import generate
from engine.lake.location import Lake
from tests.wording import assert_wraps

Cli = Callable[..., subprocess.CompletedProcess[str]]


def _lake(tmp_path: Path, cli: Cli) -> Path:
    lake = tmp_path / "lake"
    source = tmp_path / "a.csv"
    generate(source, 40, seed=3, bad_fraction=0.3)
    assert cli("run", str(source), "--lake", str(lake), "-q").returncode == 0
    return lake


def _one_line(done: subprocess.CompletedProcess[str], lake: Path, file: Path, reason: str) -> None:
    """One line: the project's words exactly, the reader's explanation (which names the
    file and the reason) in the parentheses."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert_wraps(
        done.stderr,
        f"error: {lake}: cannot read the lake's files (",
        ")\n",
        mentions=(file.name, reason),
    )


def test_a_manifest_file_gone_is_one_line_for_every_command(tmp_path: Path, cli: Cli) -> None:
    lake = _lake(tmp_path, cli)
    (manifest_file,) = (lake / "ingestion_batches").glob("*.parquet")
    manifest_file.unlink()
    other = tmp_path / "b.csv"
    generate(other, 10, seed=4)
    for args in (
        ("summary",),
        ("sql", "SELECT 1"),
        ("export", "raw", "-o", str(tmp_path / "raw.csv")),
        ("report", "-o", str(tmp_path / "r.html")),
        ("run", str(other)),
        ("lake", "compact"),
    ):
        where = (str(lake),) if args[0] == "lake" else ("--lake", str(lake))
        done = cli(*args, *where)
        _one_line(done, lake, manifest_file, "No such file or directory")


def test_a_damaged_data_file_is_one_line_for_summary_and_report(tmp_path: Path, cli: Cli) -> None:
    lake = _lake(tmp_path, cli)
    (raw_file,) = (lake / "raw_data").glob("*.parquet")
    raw_file.write_bytes(b"x\n")
    for args in (("summary",), ("report", "-o", str(tmp_path / "r.html"))):
        done = cli(*args, "--lake", str(lake))
        _one_line(done, lake, raw_file, "Parquet file size is 2 bytes")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    "uri", ["s3://lake/../other", "s3://lake/a/./b", "s3://lake//a", "s3a://l/a/.."]
)
def test_an_s3_prefix_that_delta_and_the_readers_resolve_differently_is_refused(uri: str) -> None:
    # delta-rs writes s3://lake/../other into s3://lake/other, the readers' pyarrow file
    # system looks under "lake/../other": a run would store what no read command can read.
    with pytest.raises(ConfigError) as refused:
        Lake(uri)
    assert str(refused.value) == (
        f"lake {uri}: an s3://bucket/prefix URI cannot have an empty, '.' or '..' segment "
        "(delta-rs and the readers would resolve it differently)"
    )


def test_a_refused_s3_prefix_is_one_line_before_anything_is_reached(cli: Cli) -> None:
    done = cli("summary", "--lake", "s3://lake/../other")
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "error: lake s3://lake/../other: an s3://bucket/prefix URI cannot have an empty, '.' or "
        "'..' segment (delta-rs and the readers would resolve it differently)\n",
    )


def test_a_lost_raw_data_table_is_one_line_not_empty_errors(tmp_path: Path, cli: Cli) -> None:
    # Without the check, the errors and the raw lineage read as empty (0 invalid rows
    # shown beside the valid ones): a batch's verdicts without its raw rows.
    lake = _lake(tmp_path, cli)
    shutil.rmtree(lake / "raw_data")
    for args in (("summary",), ("sql", "SELECT count(*) FROM ingestion_errors")):
        done = cli(*args, "--lake", str(lake))
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: {lake}: table raw_data of the lake is missing, though 1 committed batch "
            "stored rows in it (restore it, or pass another --lake)\n",
        )
