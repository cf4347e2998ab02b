"""Where ``export -o`` and ``report -o`` write: never through a planted symlink, never over the
database they read.

The temporary file was named from the process id alone (``.o.csv.<pid>.partial``) and opened
without ``O_EXCL``: a symlink planted at that name (for the next process ids) made the export
overwrite the symlink's target, and left ``o.csv`` a symlink to it. ``-o`` naming the
database (or its WAL, or either through a link) replaced the database with the export.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from click.testing import Result

RunCli = Callable[..., Result]
VICTIM = b"precious: must not be overwritten\n"
FORMATS = ["csv", "json", "ndjson", "parquet", "xlsx"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    saved = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(saved)


def plant(directory: Path, name: str, victim: Path) -> list[Path]:
    """Symlinks to ``victim`` at the old temporary names of this process and the next ones."""
    planted = []
    for pid in range(os.getpid(), os.getpid() + 20):
        link = directory / f".{name}.{pid}.partial"
        link.symlink_to(victim)
        planted.append(link)
    return planted


def read_back(path: Path, fmt: str) -> object:
    if fmt == "parquet":
        return pl.read_parquet(path).to_dicts()
    if fmt == "xlsx":
        assert zipfile.is_zipfile(path)
        sheet = openpyxl.load_workbook(path, read_only=True).active
        assert sheet is not None
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    return path.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_never_writes_through_a_planted_symlink(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, fmt: str, umask_022: None
) -> None:
    clean, shared = tmp_path / "clean", tmp_path / "shared"
    clean.mkdir()
    shared.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    name = f"o.{fmt}"
    plant(shared, name, victim)
    expected = run_cli("export", "processed", "--db", str(sample_db), "-o", str(clean / name))
    assert expected.exit_code == 0, expected.output

    result = run_cli("export", "processed", "--db", str(sample_db), "-o", str(shared / name), "-q")
    assert (result.exit_code, result.stdout) == (0, "")
    assert victim.read_bytes() == VICTIM
    out = shared / name
    assert not out.is_symlink()
    assert stat.S_ISREG(out.lstat().st_mode)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # a new file's, under umask 022
    assert read_back(out, fmt) == read_back(clean / name, fmt)
    # No temporary file of this export is left (the planted symlinks are not its files).
    assert [p for p in shared.iterdir() if not p.is_symlink()] == [out]


def test_a_report_never_writes_through_a_planted_symlink(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, umask_022: None
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    shared = tmp_path / "shared"
    shared.mkdir()
    planted = plant(shared, "r.html", victim)
    out = shared / "r.html"
    result = run_cli("report", "--db", str(sample_db), "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, f"wrote {out}\n")
    assert victim.read_bytes() == VICTIM
    assert not out.is_symlink()
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>\n")
    assert sorted(shared.iterdir()) == sorted([out, *planted])


def same_as_db(tmp_path: Path, db: Path, how: str) -> Path:
    """A name for the database file (or its WAL): itself, a symlink, a hard link, ./ ..."""
    if how == "itself":
        return db
    if how == "dotted":
        return tmp_path / "." / ".." / tmp_path.name / db.name
    if how == "symlink":
        link = tmp_path / "link.csv"
        link.symlink_to(db)
        return link
    if how == "hardlink":
        link = tmp_path / "hard.csv"
        os.link(db, link)
        return link
    assert how == "wal"
    return db.with_name(db.name + ".wal")


@pytest.mark.parametrize("how", ["itself", "dotted", "symlink", "hardlink", "wal"])
@pytest.mark.parametrize("command", ["export", "report"])
def test_the_output_cannot_be_the_database(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, how: str, command: str
) -> None:
    before = sample_db.read_bytes()
    output = same_as_db(tmp_path, sample_db, how)
    args = ["export", "processed", "--format", "csv"] if command == "export" else ["report"]
    result = run_cli(*args, "--db", str(sample_db), "-o", str(output))
    what = "the database's WAL" if how == "wal" else "the database itself"
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {output}: is {what} ({sample_db}) (-o takes another file)\n",
    )
    assert sample_db.read_bytes() == before
    assert not sample_db.is_symlink()
    assert not sample_db.with_name(sample_db.name + ".wal").exists()


@pytest.mark.parametrize("command", ["export", "report"])
def test_the_real_files_wal_is_refused_when_the_database_is_named_by_a_link(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, command: str
) -> None:
    """``--db`` a hard link or a symlink: ``-o <the real name>.wal`` is that database's WAL."""
    hard = tmp_path / "other.duckdb"
    os.link(sample_db, hard)
    soft = tmp_path / "link.duckdb"
    soft.symlink_to(sample_db)
    output = sample_db.with_name(sample_db.name + ".wal")
    args = ["export", "processed", "--format", "csv"] if command == "export" else ["report"]
    for db in (hard, soft):
        result = run_cli(*args, "--db", str(db), "-o", str(output))
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: {output}: is the database's WAL ({db}) (-o takes another file)\n",
        )
    assert not output.exists()


@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_that_is_no_regular_file_is_refused(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, command: str
) -> None:
    """Renamed over, a FIFO or a device (``/dev/null`` when run as root) would become a
    regular file holding the export: refused, and left as it is."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "to-null"
    link.symlink_to("/dev/null")
    args = ["export", "processed", "--format", "csv"] if command == "export" else ["report"]
    for output in (fifo, link, Path("/dev/null")):
        result = run_cli(*args, "--db", str(sample_db), "-o", str(output))
        assert (result.exit_code, result.stderr) == (
            2,
            f"error: {output}: is not a regular file (an export is written beside it, then "
            "renamed over it) (name a file, or use -o - for standard output)\n",
        )
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    assert stat.S_ISCHR(Path("/dev/null").stat().st_mode)


@pytest.mark.parametrize("command", ["export", "report"])
def test_an_output_that_is_a_users_symlink_is_written_through(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, command: str
) -> None:
    """``-o link`` where the link leads to a file in another directory: the file it leads to
    gets the export (as a shell's ``>`` writes it, keeping its mode) and the link stays; the
    export used to replace the link with a regular file and leave the target as it was."""
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir()
    here.mkdir()
    target = elsewhere / "real.csv"
    target.write_bytes(VICTIM)
    target.chmod(0o600)
    link = here / "link.csv"
    link.symlink_to("../elsewhere/real.csv")
    args = ["export", "processed"] if command == "export" else ["report"]
    result = run_cli(*args, "--db", str(sample_db), "-o", str(link))
    assert result.exit_code == 0, result.output
    assert os.readlink(link) == "../elsewhere/real.csv"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in here.iterdir()) == ["link.csv"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["real.csv"]
    if command == "report":
        assert result.stdout == f"wrote {target}\n"
        assert target.read_text(encoding="utf-8").startswith("<!doctype html>\n")
    else:
        direct = tmp_path / "direct.csv"
        assert run_cli(*args, "--db", str(sample_db), "-o", str(direct)).exit_code == 0
        assert target.read_bytes() == direct.read_bytes()
        assert result.stdout.startswith("exported ") and f" to {target} (csv) " in result.stdout


@pytest.mark.parametrize("command", ["export", "report", "generate"])
def test_an_output_that_is_a_symlink_loop_is_refused(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, command: str
) -> None:
    """A loop has no file to write through to: the export replaced the link with a file, and
    generate said "Too many levels of symbolic links" with a hint about disk space."""
    links = tmp_path / "links"
    links.mkdir()
    loop, other = links / "loop.csv", links / "other.csv"
    loop.symlink_to(other.name)
    other.symlink_to(loop.name)
    args = {
        "export": ["export", "processed", "--db", str(sample_db)],
        "report": ["report", "--db", str(sample_db)],
        "generate": ["generate", "--rows", "5"],
    }[command]
    result = run_cli(*args, "-o", str(loop))
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {loop}: is a symlink loop (-o takes a file name)\n",
    )
    assert (os.readlink(loop), os.readlink(other)) == (other.name, loop.name)
    assert sorted(p.name for p in links.iterdir()) == ["loop.csv", "other.csv"]


def test_a_report_to_standard_output(
    run_cli: RunCli, sample_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report -o -`` wrote a file named "-" (independent review); as ``export -o -``, it is
    standard output now: the same page as ``-o FILE`` writes, byte for byte."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    page = work / "page.html"
    assert run_cli("report", "--db", str(sample_db), "-o", str(page)).exit_code == 0
    result = run_cli("report", "--db", str(sample_db), "-o", "-")
    assert (result.exit_code, result.stderr) == (0, "")
    generated = re.compile(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC")  # the minute may turn
    assert generated.sub("", result.stdout) == generated.sub("", page.read_text("utf-8"))
    assert generated.search(result.stdout)
    assert sorted(p.name for p in work.iterdir()) == ["page.html"]
