"""Path safety for ``file_path``: a regular file inside the data directory, or a refusal.

Nothing outside the data directory is ever opened. The string is checked first (malformed:
400), then resolved, symlinks included, and the result must lie inside the resolved data
directory (403 otherwise); only then is the file itself looked at (404, or 400 for a
directory or a device). Decoding happens once, in the HTTP layer: ``%2e%2e`` arrives here
as ``..``, and a literal ``%`` is just a character of a file name.
"""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

from engine.api.errors import BadRequestError, NotFoundError, PathRefusedError

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255


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


def resolve_data_path(data_dir: Path | None, requested: str) -> Path:
    """The resolved path of the regular file ``requested`` names inside ``data_dir``."""
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
    try:
        resolved = (root / path).resolve(strict=False)
    except RuntimeError:  # Python 3.11's report of a symlink loop
        raise BadRequestError(
            f"file_path {requested!r} cannot be resolved (a symlink loop)"
        ) from None
    except OSError as exc:
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
    if stat.S_ISDIR(mode):
        raise BadRequestError(f"file_path {requested!r} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise BadRequestError(f"file_path {requested!r} is not a regular file")
    return resolved
