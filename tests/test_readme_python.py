"""The README's Python API examples: they run as written, and they type-check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.transactions import Transaction
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


def test_the_api_takes_a_schema_by_name_and_edits_by_a_string_path(tmp_path: Path) -> None:
    """``schema_diff(path, "transactions")`` was an AttributeError, and ``read_edits`` of a
    string path too (independent README audit): both take what ``validate`` and the CLI take."""
    import engine.replay_edits

    db = tmp_path / "n.duckdb"
    engine.ingest(str(DATA / "transactions_sample.csv"), db=db, schema="transactions")
    by_name = engine.schema_diff(db, "transactions")
    by_model = engine.schema_diff(db, Transaction)
    assert by_name.lines == by_model.lines
    assert by_name.lines[0] == ("same", "external_id", "VARCHAR")
    edits = tmp_path / "fix.csv"
    edits.write_text('run_id,row_number,raw\n1,2,"T2,5.0,USD,web,"\n')
    assert engine.replay_edits.read_edits(str(edits)) == {(1, 2): "T2,5.0,USD,web,"}


def test_the_vectorized_twin_example_runs_and_agrees_with_its_python(tmp_path: Path) -> None:
    """The Schemas section's twin example failed as written (no imports, and a body of
    ``...`` returning None where the twin upper-cases; independent README audit)."""
    import contextlib

    from pydantic import ValidationError

    import engine

    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Schemas\n", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)]
    namespace: dict[str, object] = {}
    exec(compile(block, "README.md", "exec", dont_inherit=True), namespace)
    payment = namespace["Payment"]
    rows = [{"currency": c} for c in ("usd", "gbp", "Eur", "EUR ", "")]
    result = engine.validate(rows, schema=payment)  # type: ignore[arg-type]
    expected_valid = []
    for number, row in enumerate(rows, start=1):
        with contextlib.suppress(ValidationError):
            model = payment.model_validate(row)  # type: ignore[attr-defined]
            expected_valid.append((number, model.currency))
    assert result.valid["currency"].to_list() == [c for _, c in expected_valid]
    assert result.invalid["row_number"].to_list() == [2, 4, 5]
    assert expected_valid == [(1, "USD"), (3, "EUR")]
    assert result.python_rows == 0
