"""Path safety for ``file_path``: a regular file inside the data directory, or a refusal.

The string is checked first (malformed: 400), then resolved, symlinks included, and the
result must lie inside the resolved data directory (403 otherwise); then the file itself is
looked at (404, or 400 for a directory or a device). Decoding happens once, in the HTTP
layer: ``%2e%2e`` arrives here as ``..``, and a literal ``%`` is just a character of a file
name.

The file is then opened once, its last component without following a symlink, and the
checks are made again on the open descriptor (a regular file, whose real path, as the
kernel names it in ``/proc/self/fd``, lies inside the data directory). The run reads that
descriptor and nothing opens the name again: a symlink swapped in after the checks is either
refused or never seen, never read through.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from engine.api.errors import BadRequestError, NotFoundError, PathRefusedError

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
ATTEMPTS = 3  # resolving and opening again when the name changed in between
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
FDS = Path("/proc/self/fd")


def check_syntax(requested: str) -> PurePosixPath:
    """Refuse what no file inside the data directory can be named (400)."""
    if not requested.strip():
        raise BadRequestError("file_path is empty")
    if "\x00" in requested:
        raise BadRequestError("file_path contains a NUL character")
    if any(ord(char) < 32 or ord(char) == 127 for char in requested):
        raise BadRequestError("file_path contains a control character")
    if len(requested) > MAX_PATH_CHARS:
        raise BadRequestError(f"file_path is longer than {MAX_PATH_CHARS} characters")
    if "\\" in requested:
        raise BadRequestError("file_path contains a backslash; separate directories with /")
    if requested.startswith("~"):
        raise BadRequestError(
            "file_path starts with ~ (no home directory is expanded); "
            "give a path relative to the data directory"
        )
    path = PurePosixPath(requested)
    for part in path.parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise BadRequestError(f"file_path has a name longer than {MAX_NAME_BYTES} bytes")
    return path


@dataclass
class DataFile:
    """A regular file inside the data directory, open for reading (the caller closes it)."""

    file: BinaryIO
    path: Path  # the real path of the open file, inside the resolved data directory
    source: str  # that path relative to the data directory, as answers name it


class _Changed(Exception):
    """The name no longer leads where it led when it was resolved."""


def open_data_file(data_dir: Path | None, requested: str) -> DataFile:
    """The regular file ``requested`` names inside ``data_dir``, opened once for the run."""
    if data_dir is None:
        raise PathRefusedError(
            "ingest by file_path is disabled on this server",
            hint="start it with --data-dir DIR, or upload the file",
        )
    path = check_syntax(requested)
    root = data_dir.resolve(strict=True)
    if ".." in path.parts:
        raise PathRefusedError(
            f"file_path {requested!r} contains '..'",
            hint="give a path inside the data directory without '..'",
        )
    if path.is_absolute() and not any(
        Path(path).is_relative_to(base) for base in (root, data_dir.absolute())
    ):
        # Refused on the string alone: not even looked up.
        raise PathRefusedError(f"file_path {requested!r} is outside the data directory")
    for _ in range(ATTEMPTS):
        try:
            return _open(root, _resolve(root, path, requested), requested)
        except _Changed:
            continue
    raise BadRequestError(f"file_path {requested!r} kept changing while it was opened; try again")


def _resolve(root: Path, path: PurePosixPath, requested: str) -> Path:
    """The resolved path, checked by name: inside ``root``, a regular file."""
    try:
        resolved = (root / path).resolve(strict=False)
    except RuntimeError:  # Python 3.11's report of a symlink loop
        raise BadRequestError(
            f"file_path {requested!r} cannot be resolved (a symlink loop)"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a symlink when looked at, a file when read
            raise _Changed from None
        raise BadRequestError(
            f"file_path {requested!r} cannot be resolved ({exc.strerror})"
        ) from exc
    if not resolved.is_relative_to(root):
        raise PathRefusedError(
            f"file_path {requested!r} leads outside the data directory (through a symlink)"
        )
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise NotFoundError(
            f"file_path {requested!r}: no such file in the data directory"
        ) from None
    except OSError as exc:
        raise BadRequestError(f"file_path {requested!r} cannot be read ({exc.strerror})") from exc
    _check_mode(mode, requested)
    return resolved


def _names(path: Path, status: os.stat_result) -> bool:
    """Whether ``path`` names the file ``status`` describes."""
    try:
        found = path.lstat()
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (status.st_dev, status.st_ino)


def _check_mode(mode: int, requested: str) -> None:
    if stat.S_ISDIR(mode):
        raise BadRequestError(f"file_path {requested!r} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise BadRequestError(f"file_path {requested!r} is not a regular file")


def _open(root: Path, resolved: Path, requested: str) -> DataFile:
    """Open ``resolved`` without following a symlink, and check what was opened."""
    try:
        fd = os.open(resolved, OPEN_FLAGS)
    except FileNotFoundError:
        raise _Changed from None  # removed or renamed since it was resolved
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink now, where a file was
            raise _Changed from None
        raise BadRequestError(f"file_path {requested!r} cannot be read ({exc.strerror})") from exc
    try:
        real = Path(os.readlink(FDS / str(fd)))
        if not real.is_relative_to(root):  # a directory on the way became a symlink
            raise PathRefusedError(
                f"file_path {requested!r} leads outside the data directory (through a symlink)"
            )
        status = os.fstat(fd)
        _check_mode(status.st_mode, requested)
        if not _names(real, status):  # renamed or removed since ("race.csv (deleted)")
            raise _Changed
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return DataFile(os.fdopen(fd, "rb"), real, real.relative_to(root).as_posix())
    except BaseException:
        os.close(fd)
        raise
