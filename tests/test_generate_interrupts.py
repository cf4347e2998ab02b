"""SIGINT and SIGTERM sent to a real `cli.py generate` writing over an existing file.

generate used to write the target in place: interrupted, it left a partial file that looked
complete (whole rows, a fraction of those asked) where the old file had been. It now writes a
temporary file beside the target and renames it over the target once complete.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.generate import generate
from tests.conftest import ROOT

ROWS = 5_000_000  # seconds of writing: the signal lands mid-way


def leftovers(directory: Path, name: str) -> list[Path]:
    return sorted(directory.glob(f".{name}.*.partial"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("name", ["g.csv", "g.ndjson"])
def test_an_interrupted_generate_leaves_the_old_file_and_no_temporary_one(
    tmp_path: Path, sig: signal.Signals, name: str
) -> None:
    target = tmp_path / name
    generate(target, 10, seed=9)
    old = target.read_bytes()
    command = ["generate", "--rows", str(ROWS), "-o", str(target), "--seed", "3"]
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # The signal lands once the new file is being written: the temporary one has bytes (or,
    # as the code before did, the target itself changed).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if any(path.stat().st_size > 0 for path in leftovers(tmp_path, name)):
            break
        if target.read_bytes()[: len(old)] != old:
            break
        time.sleep(0.01)
    assert process.poll() is None, "generate ended before the signal"
    process.send_signal(sig)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + sig
    assert err == (
        f"error: interrupted by {sig.name} (anything not yet committed was rolled back)\n"
    )
    assert out == ""
    assert target.read_bytes() == old
    assert leftovers(tmp_path, name) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == [name]


def test_generate_writes_through_a_symlink_and_keeps_the_files_permissions(
    tmp_path: Path,
) -> None:
    """The rename replaced a symlink given as -o with a regular file (the file it led to kept
    its old rows), and made a file of mode 600 one of the umask's (644): a sixth attack."""
    (tmp_path / "real").mkdir()
    real, link = tmp_path / "real" / "r.csv", tmp_path / "link.csv"
    generate(real, 3, seed=1)
    real.chmod(0o600)
    link.symlink_to(real)

    assert generate(link, 20, seed=2) == 20

    assert link.is_symlink() and os.readlink(link) == str(real)
    assert len(real.read_text().splitlines()) == 21  # the header and 20 rows
    assert oct(real.stat().st_mode & 0o777) == "0o600"
    assert leftovers(real.parent, "r.csv") == [] and leftovers(tmp_path, "link.csv") == []


def test_a_generate_that_cannot_write_is_one_line() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "generate", "--rows", "1000", "-o", "/dev/full"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "error: /dev/full: cannot write the generated rows: No space left on device (os error "
        "28) (free some space on its disk, or name another file; the old file is as it was)\n"
    )
