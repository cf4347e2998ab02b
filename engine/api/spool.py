"""The server's staging directory (uploads, exports), and the removal of dead servers' ones.

Each server makes ``.serve-spool-XXXX`` under the spool root and holds an exclusive
``flock`` on a ``.lock`` file inside it for its whole life. A server killed mid-upload
(``kill -9``, a crash) cannot remove its directory; the next server to start under the same
root finds it unlocked and removes it. A directory whose lock is held belongs to a running
server (of another database, say) and is left alone; one without a lock file is removed
once it is older than ``UNLOCKED_GRACE_S`` (a server that is just creating it).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

LOG = logging.getLogger("engine.api")
PREFIX = ".serve-spool-"
LOCK_NAME = ".lock"
UNLOCKED_GRACE_S = 60.0


class Spool:
    """A staging directory, locked as in use until ``close``."""

    def __init__(self, root: Path) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=root))
        self._lock = os.open(self.path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self._lock)


def remove_stale(root: Path) -> list[Path]:
    """Remove the staging directories under ``root`` that no running server holds."""
    removed = []
    for path in sorted(root.glob(f"{PREFIX}*")):
        if path.is_dir() and not path.is_symlink() and _stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        LOG.warning(
            "removed %d staging director%s left by servers that died: %s",
            len(removed),
            "y" if len(removed) == 1 else "ies",
            ", ".join(p.name for p in removed),
        )
    return removed


def _stale(path: Path) -> bool:
    try:
        handle = os.open(path / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return time.time() - path.stat().st_mtime > UNLOCKED_GRACE_S
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a running server holds it
    finally:
        os.close(handle)  # also drops the lock taken just now
    return True
