"""The ``small_disk`` fixture (a tmpfs to fill up) where no tmpfs can be mounted: the
full-disk tests skip, with the reason, unless INGEST_REQUIRE_TMPFS=1: then they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REQUIRE_TMPFS_ENV, ROOT

FULL_DISK_TEST = "tests/store/test_disk_full.py"
REASON = "cannot mount a tmpfs here (needs root): mount: only root can do that"


def run_without_mount(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """The full-disk test in a pytest of its own, with a ``mount`` that always fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "mount"
    fake.write_text('#!/bin/sh\necho "mount: only root can do that" >&2\nexit 32\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_TMPFS_ENV}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", **extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", FULL_DISK_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_tmpfs_the_full_disk_tests_skip_unless_required(tmp_path: Path) -> None:
    tests = (ROOT / FULL_DISK_TEST).read_text().count("\ndef test_")
    assert tests >= 1
    skipped = run_without_mount(tmp_path)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    [line] = [x for x in skipped.stdout.splitlines() if x.startswith("SKIPPED")]
    assert line.startswith(f"SKIPPED [{tests}] tests/conftest.py:")
    assert line.endswith(f": {REASON}")
    assert skipped.stdout.splitlines()[-1].startswith(f"{tests} skipped")

    required = run_without_mount(tmp_path, **{REQUIRE_TMPFS_ENV: "1"})
    assert required.returncode == 1, required.stdout + required.stderr
    message = f"{REASON} ({REQUIRE_TMPFS_ENV}=1: the full-disk tests must run)"
    assert message in required.stdout.splitlines()
    assert required.stdout.splitlines()[-1].startswith(f"{tests} failed")
