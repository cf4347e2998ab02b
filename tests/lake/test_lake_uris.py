"""Lake URIs delta-rs would read as URL syntax: refused in one line, exit 2, before anything
is written (a ``#`` or ``?`` in an S3 prefix put every table into one Delta table at the
prefix before it, and the read commands then spun; a ``%41`` stored under ``A``, where no
read command looked)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.lake.location import Lake
from tests.lake.conftest import BUCKET, ROOT, _boto

Cli = Callable[..., subprocess.CompletedProcess[str]]
SAMPLE = ROOT / "data" / "transactions_sample.csv"
S3_REASON = (
    "an s3://bucket/prefix URI cannot contain '#', '?' or '%' (delta-rs would read them as URL "
    "syntax and store the tables under another prefix)"
)
LOCAL_REASON = (
    "a lake directory's path cannot contain '%' (delta-rs reads the path as a URL and would "
    "decode '%41' as 'A', storing the tables in another directory)"
)


def _commands(uri: str, tmp_path: Path) -> list[list[str]]:
    """Every command that takes a lake, writers first."""
    return [
        ["run", str(SAMPLE), "--lake", uri, "-q"],
        ["summary", "--lake", uri],
        ["sql", "SELECT count(*) FROM raw_data", "--lake", uri],
        ["export", "raw", "-o", str(tmp_path / "raw.csv"), "--lake", uri],
        ["lake", "compact", uri],
        ["lake", "vacuum", uri],
    ]


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("s3://lake/sales#2026", "an s3://bucket/prefix"),
        ("s3://lake/sales?v=2", "an s3://bucket/prefix"),
        ("s3://lake/new%41", "an s3://bucket/prefix"),
        ("s3://lake#x/a", "an s3://bucket/prefix"),
        ("s3a://la%6Be/a", "an s3://bucket/prefix"),
        ("file:///tmp/lake%41", "a file://"),
    ],
)
def test_url_syntax_in_a_lake_uri_is_refused(uri: str, kind: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Lake(uri)
    assert str(refused.value) == (
        f"lake {uri}: {kind} URI cannot contain '#', '?' or '%' (delta-rs would read them as "
        "URL syntax and store the tables under another prefix)"
    )


@pytest.mark.parametrize("prefix", ["sales#2026", "sales?v=2", "new%41", "team%20a"])
def test_url_syntax_in_an_s3_prefix_is_one_line_and_writes_nothing(
    prefix: str, tmp_path: Path, cli: Cli, s3_lake: tuple[Lake, dict[str, str]]
) -> None:
    import boto3

    _, env = s3_lake
    client = boto3.client("s3", **_boto(env))
    # A lake at the prefix a decoded or cut URI would name: it must not be written either.
    uri = f"s3://{BUCKET}/{prefix}"
    for args in _commands(uri, tmp_path):
        done = cli(*args, env=env)
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: lake {uri}: {S3_REASON}\n",
        ), args
    assert client.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    assert not (tmp_path / "raw.csv").exists()


def test_a_percent_in_a_local_lake_path_is_one_line_and_creates_nothing(
    tmp_path: Path, cli: Cli
) -> None:
    lake = tmp_path / "q%41"
    for args in _commands(str(lake), tmp_path):
        done = cli(*args)
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            "",
            f"error: lake {lake}: {LOCAL_REASON}\n",
        ), args
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_hash_or_question_mark_in_a_local_lake_path_still_works(tmp_path: Path, cli: Cli) -> None:
    for name in ("h#x", "q?x"):
        lake = tmp_path / name
        assert cli("run", str(SAMPLE), "--lake", str(lake), "-q").returncode == 0
        done = cli("sql", "SELECT count(*) FROM raw_data", "--lake", str(lake), "--format", "csv")
        assert (done.returncode, done.stdout, done.stderr) == (0, "count_star()\n21\n", "")
        assert cli("lake", "compact", str(lake)).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h#x", "q?x"]
