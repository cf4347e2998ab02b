"""The README's Python API examples: they run as written, and they type-check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA, ROOT

README = (ROOT / "README.md").read_text()


def python_api_blocks() -> list[str]:
    section = README.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_python_api_section_has_examples() -> None:
    assert len(python_api_blocks()) == 3


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In order, in one namespace, in a directory holding a copy of data/."""
    shutil.copytree(DATA, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in python_api_blocks():
        exec(compile(block, "README.md", "exec", dont_inherit=True), namespace)
    assert (tmp_path / "reporting.duckdb").exists()


def test_the_examples_type_check(tmp_path: Path) -> None:
    program = tmp_path / "readme_examples.py"
    program.write_text("\n".join(python_api_blocks()))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(program),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
