"""What a run reports: its running totals (``Tally``), progress as it reads, and its outcome
(``RunSummary``), as data; each front end words them (a skipped run's fix, ``run --json``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import Remedy, Spelling, python_spelling
from engine.store.runs import RunCounts


@dataclass
class Tally:
    """Running totals for a run or a consumer session."""

    rows: int = 0
    valid: int = 0
    invalid: int = 0
    python_rows: int = 0
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.rows += other.rows
        self.valid += other.valid
        self.invalid += other.invalid
        self.python_rows += other.python_rows
        self.errors.update(other.errors)

    def counts(self, blank_lines: int = 0) -> RunCounts:
        return RunCounts(self.rows, self.valid, self.invalid, self.python_rows, blank_lines)


@dataclass(frozen=True)
class Progress:
    bytes_read: int
    total_bytes: int | None  # None for a stream
    tally: Tally


SKIP_REMEDY = Remedy("pass {} to ingest it again", "force")


@dataclass(frozen=True)
class RunSummary:
    """A run's outcome: ``completed`` (stored; ``gate`` says why it failed the quality gate,
    if it did) or ``skipped`` (its content and schema were ingested before, as
    ``previous_run``)."""

    run_id: int | None
    path: str
    status: Literal["completed", "skipped"]
    tally: Tally
    duration_s: float
    message: str = ""
    previous_run: int | None = None
    format: str = ""
    gate: str | None = None

    @property
    def passed(self) -> bool:
        """Completed, and within the quality gate."""
        return self.status == "completed" and self.gate is None

    def explain(self, spell: Spelling = python_spelling) -> str:
        """The message with what to do, in a front end's words (a skipped run: how to force)."""
        if self.status == "skipped":
            return f"{self.message}; {SKIP_REMEDY.words(spell)}"
        return self.message

    @property
    def rows_per_s(self) -> float:
        return self.tally.rows / self.duration_s if self.duration_s > 0 else 0.0

    def top_errors(self, limit: int = 10) -> list[tuple[str, str, int]]:
        """The most frequent errors as (loc, type, count), most frequent first (then by name)."""
        ranked = sorted(self.tally.errors.items(), key=lambda item: (-item[1], item[0]))
        return [(loc, kind, n) for (loc, kind), n in ranked[:limit]]

    def as_json(self, spell: Spelling = python_spelling, top: int = 10) -> dict[str, Any]:
        """The run as JSON data (``run --json`` prints it): figures, top errors, the gate."""
        tally = self.tally
        return {
            "run_id": self.run_id,
            "status": self.status,
            "source": self.path,
            "format": self.format,
            "rows_total": tally.rows,
            "rows_valid": tally.valid,
            "rows_invalid": tally.invalid,
            "rows_python": tally.python_rows,
            "duration_s": round(self.duration_s, 6),
            "rows_per_s": round(self.rows_per_s, 1),
            "top_errors": [
                {"field": loc, "type": kind, "count": n} for loc, kind, n in self.top_errors(top)
            ],
            "quality_gate": "failed" if self.gate else "passed",
            "previous_run": self.previous_run,
            "message": self.explain(spell),
        }


ProgressCallback = Callable[[Progress], None]
