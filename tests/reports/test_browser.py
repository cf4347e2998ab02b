"""Finding the browser the tests render pages in, and what happens without one: a skip that
says how to install one, or a failure where a browser is required (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.reports.chromium import (
    BROWSER_ENV,
    REQUIRE_ENV,
    BrowserNotFound,
    find_browser,
    missing_browser_reason,
)

HARNESS_TEST = (
    "tests/reports/test_report.py::test_the_harness_sees_console_errors_and_failed_requests"
)


def executable(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_a_browser_is_found_on_path_under_any_of_its_usual_names(tmp_path: Path) -> None:
    ubuntu = executable(tmp_path / "ubuntu", "chromium-browser")
    chrome = executable(tmp_path / "chrome", "google-chrome")
    debian = executable(tmp_path / "debian", "chromium")
    assert find_browser({"PATH": str(ubuntu.parent)}) == ubuntu
    assert find_browser({"PATH": str(chrome.parent)}) == chrome
    # Chromium before Chrome, whatever the order of PATH.
    assert find_browser({"PATH": f"{chrome.parent}:{debian.parent}"}) == debian
    assert find_browser({"PATH": str(tmp_path / "nothing")}) is None
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "chromium").write_text("not executable")
    assert find_browser({"PATH": str(tmp_path / "plain")}) is None


def test_the_environment_variable_names_the_browser(tmp_path: Path) -> None:
    debian = executable(tmp_path / "debian", "chromium")
    mine = executable(tmp_path / "apps", "my-chrome")
    path = str(debian.parent)
    assert find_browser({"PATH": path, BROWSER_ENV: str(mine)}) == mine
    assert find_browser({"PATH": f"{path}:{mine.parent}", BROWSER_ENV: "my-chrome"}) == mine
    with pytest.raises(BrowserNotFound) as raised:
        find_browser({"PATH": path, BROWSER_ENV: str(tmp_path / "missing")})
    assert (
        str(raised.value)
        == f"{BROWSER_ENV}={str(tmp_path / 'missing')!r} is not an executable file"
    )


def run_browser_test(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """One browser test in a pytest of its own, on a PATH without any browser."""
    env = {k: v for k, v in os.environ.items() if k not in (BROWSER_ENV, REQUIRE_ENV)}
    env.update(PATH=str(tmp_path / "no-browser-here"), **extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", HARNESS_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_a_browser_the_browser_tests_skip_with_how_to_install_one(
    tmp_path: Path,
) -> None:
    reason = missing_browser_reason()
    assert reason == (
        "no Chromium or Chrome found ($INGEST_BROWSER unset; none of chromium, "
        "chromium-browser, google-chrome, google-chrome-stable on PATH): install one "
        "(Debian/Ubuntu: apt-get install chromium; macOS: Google Chrome) or set "
        "INGEST_BROWSER=/path/to/chrome"
    )
    skipped = run_browser_test(tmp_path)
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    [line] = [x for x in skipped.stdout.splitlines() if x.startswith("SKIPPED")]
    assert line.startswith("SKIPPED [1] tests/reports/test_report.py:")
    assert line.endswith(f": {reason}")
    assert skipped.stdout.splitlines()[-1].startswith("1 skipped")

    required = run_browser_test(tmp_path, **{REQUIRE_ENV: "1"})
    assert required.returncode == 1, required.stdout + required.stderr
    assert f"{reason} ({REQUIRE_ENV}=1: the browser tests must run)" in required.stdout
    assert required.stdout.splitlines()[-1].startswith("1 error")
