"""The temporary file a report or an export is written to, then renamed over its target.

Created by the writer itself, exclusively and without following a symlink (``mkstemp``:
``O_CREAT | O_EXCL``), beside the target, under a name drawn at random that ends with the
writer's process id (``.report.csv.k3x9_a2q.4242.partial``, which ``remove_dead_partials``
recognises). A name that could be guessed (the process id alone) let a symlink planted there
turn the export into a write to the symlink's target.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from engine.errors import ConfigError


def stage(output: Path) -> Path:
    """Create the empty file an export is written to before it is renamed to ``output`` (the
    only file a locked down reader may write: see ``open_reader``).

    Created here, exclusively and without following a symlink, under a name drawn at random:
    a symlink or file planted beside ``output`` is never written through. Its permissions are
    ``output``'s when it exists (a file of mode 600 renamed over by one of the umask's became
    readable by everyone), else those of a new file (the umask's).
    """
    try:
        mode = stat.S_IMODE(output.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, name = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=f".{os.getpid()}.partial", dir=output.parent
    )
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    return Path(name).absolute()


def _umask() -> int:
    """The process's umask, read without changing it (other threads may be creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def through_link(output: Path) -> Path:
    """The file ``-o`` names: through a symlink, the file it leads to (the link stays, as a
    shell's ``>`` leaves it; renamed over, the link itself became the export), else ``output``
    as given. Resolved before anything is staged: the staged file is made beside the file
    it is renamed over (on the same file system)."""
    return Path(os.path.realpath(output)) if output.is_symlink() else output


def check_output(output: Path, db: Path | None = None) -> None:
    """Refuse an ``-o`` the export cannot be renamed over: one outside an existing directory,
    a directory, one that exists and is no regular file (a device such as ``/dev/null``, a
    FIFO: renamed over, it would be replaced by a regular file), and, for a DuckDB file
    ``db``, the database or its write-ahead log by any name (a symlink, a hard link, ``./``):
    the export would replace the data it reads."""
    parent = output.parent
    if not parent.is_dir():
        raise ConfigError(f"{output}: directory {parent} does not exist")
    if output.is_dir():
        raise ConfigError(f"{output}: is a directory", hint="-o takes a file name")
    if is_loop(output):
        raise ConfigError(f"{output}: is a symlink loop", hint="-o takes a file name")
    if not regular_or_absent(output):
        raise ConfigError(
            f"{output}: is not a regular file (an export is written beside it, then renamed "
            "over it)",
            hint="name a file, or use -o - for standard output",
        )
    if db is None:
        return
    wal = output.with_name(output.name.removesuffix(".wal"))
    for same, what in (
        (_same_file(output, db), "the database itself"),
        (_same_file(output, wal_of(db)), "the database's WAL"),
        (output.name.endswith(".wal") and _same_file(wal, db), "the database's WAL"),
    ):
        if same:
            raise ConfigError(f"{output}: is {what} ({db})", hint="-o takes another file")


def wal_of(db: Path) -> Path:
    """DuckDB's write-ahead log beside ``db``: written on checkpoint, replayed on open."""
    return db.with_name(db.name + ".wal")


def _same_file(one: Path, other: Path) -> bool:
    try:
        if os.path.samefile(one, other):
            return True
    except OSError:  # one of them does not exist (yet): compare where they lead
        pass
    return os.path.realpath(one) == os.path.realpath(other)


def is_loop(path: Path) -> bool:
    """Whether ``path`` is a symlink that leads back to itself (resolving stops at a link)."""
    return path.is_symlink() and Path(os.path.realpath(path)).is_symlink()


def regular_or_absent(path: Path) -> bool:
    """Whether ``path`` (through a symlink: what it leads to) is a regular file or nothing:
    what a staged file may be renamed over (a device or a FIFO would be replaced)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:  # nothing there (or a symlink to nothing): made by the rename
        return True
    except OSError:  # a symlink loop: no file to write through to, nor to replace
        return False
    return stat.S_ISREG(mode)
