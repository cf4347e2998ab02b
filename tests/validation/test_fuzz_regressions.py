"""Every failure the model fuzzer ever found, replayed through the CLI against Pydantic.

Each folder of ``tests/validation/regressions/`` holds a shrunk case saved by
``python -m tests.fuzz_models``: ``model.py``, ``data.csv`` or ``data.ndjson``, and
``divergence.txt`` (what diverged when it was found, and the command that found it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.modelfuzz.cases import REGRESSIONS, load_case
from tests.modelfuzz.fuzz import check

CASES = sorted(p.parent for p in REGRESSIONS.glob("*/model.py"))


@pytest.mark.parametrize("folder", CASES, ids=[p.name for p in CASES])
def test_saved_case_agrees_with_pydantic(folder: Path, tmp_path: Path) -> None:
    divergences = check(load_case(folder), tmp_path)
    assert not divergences, "\n".join(d.render() for d in divergences)
