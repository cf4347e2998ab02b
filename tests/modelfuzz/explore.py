"""One fuzz example end to end: a model and its rows, checked, each new kind of divergence
shrunk. Shared by the CI test (``tests/validation/test_model_fuzz.py``) and the long-running
command (``python -m tests.fuzz_models``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.modelfuzz.cases import shrink
from tests.modelfuzz.compare import Divergence
from tests.modelfuzz.fuzz import Case, check, make_case
from tests.modelfuzz.rows import TRAPS
from tests.modelfuzz.spec import ModelSpec


@dataclass
class Settings:
    text_rows: int = 150  # CSV records (and half as many NDJSON lines of text values)
    typed_rows: int = 80  # NDJSON lines of typed JSON values
    shrink_budget: int = 60  # CLI runs spent shrinking one finding
    findings_per_example: int = 3  # distinct kinds of divergence shrunk per example
    traps: frozenset[str] = TRAPS


@dataclass
class Finding:
    key: str
    case: Case
    divergences: list[Divergence]
    spec: ModelSpec | None

    def render(self) -> str:
        shown = "\n".join(d.render() for d in self.divergences[:3])
        source = self.case.source.split("vectorized\n", 1)[-1].strip()  # past the imports
        return f"{self.key}\n--- model.py (imports left out)\n{source}\n--- divergences\n{shown}"


@dataclass
class Outcome:
    rows: int = 0
    divergences: list[Divergence] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    refused: bool = False  # Pydantic itself refused the model


def examine(
    spec: ModelSpec,
    seed: int,
    workdir: Path,
    settings: Settings,
    known: set[str] | frozenset[str] = frozenset(),
) -> Outcome:
    """Check one model with its rows; shrink each kind of divergence not in ``known``."""
    shutil.rmtree(workdir, ignore_errors=True)
    case = make_case(spec, seed, workdir, settings.text_rows, settings.typed_rows, settings.traps)
    if case is None:
        return Outcome(refused=True)
    outcome = Outcome(rows=len(case.records) + len(case.lines))
    outcome.divergences = check(case, workdir / "run")
    firsts: dict[str, Divergence] = {}
    for d in outcome.divergences:
        for key in d.finding_keys():
            firsts.setdefault(key, d)
    for key, divergence in firsts.items():
        if key in known or len(outcome.findings) >= settings.findings_per_example:
            continue
        small, found, small_spec = shrink(
            case, divergence, key, workdir, spec, settings.shrink_budget
        )
        found = [d for d in found if key in d.finding_keys()] or found
        outcome.findings.append(Finding(key, small, found, small_spec))
    return outcome
