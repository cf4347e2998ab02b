"""A quality gate: the most invalid rows a run may have and still pass.

A run over the gate is still stored whole (its valid rows, its invalid rows with their
errors, its lineage: the data to look at); it is marked in ``ingestion_runs.message``
(``quality gate failed: ...``) and its summary says so, for a pipeline to stop on.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigError

PREFIX = "quality gate failed: "


@dataclass(frozen=True)
class QualityGate:
    """``max_invalid``: at most this many invalid rows; ``max_invalid_rate``: at most this
    fraction of the rows (0 to 1). Either, both or neither."""

    max_invalid: int | None = None
    max_invalid_rate: float | None = None

    def __post_init__(self) -> None:
        if self.max_invalid is not None and self.max_invalid < 0:
            raise ConfigError(f"the most invalid rows allowed must be >= 0, got {self.max_invalid}")
        rate = self.max_invalid_rate
        if rate is not None and not 0 <= rate <= 1:
            raise ConfigError(f"the invalid-row rate allowed must be between 0 and 1, got {rate:g}")

    def check(self, rows: int, invalid: int) -> str | None:
        """None when the run passes; else why not, in words that name no front end's setting."""
        problems = []
        if self.max_invalid is not None and invalid > self.max_invalid:
            problems.append(f"{invalid:,} invalid rows, more than the {self.max_invalid:,} allowed")
        rate = invalid / rows if rows else 0.0
        if self.max_invalid_rate is not None and rate > self.max_invalid_rate:
            problems.append(
                f"{rate:.2%} of rows invalid, more than the {self.max_invalid_rate:.2%} allowed"
            )
        return PREFIX + "; ".join(problems) if problems else None
