"""``/api/v1/summary`` kept up to date run by run instead of recomputed on every request.

The summary's costly part is over the invalid rows of completed runs: errors by field and
type, and the most frequent offending values. A completed run never changes, so each one is
counted once, when a request first sees it completed, and added to running counts; a request
then costs a read of ``ingestion_runs`` (plus the new runs' errors, once). The answer is
built from one snapshot of the database (a read transaction), cached under the run table's
state, and equal to ``engine.reports.summary.summary`` of that snapshot. Given the writer's
count of changes (``engine.store.store.Changes``), it answers without reading DuckDB at all
while nothing has changed since: in particular while a commit is under way, during which
DuckDB may checkpoint and hold up new reads for up to a second or more on a busy machine.

The offending values are counted per distinct (field, value): past ``max_values`` distinct
pairs (values that are all different, say) the counts are dropped and the top values are
read from DuckDB again whenever the runs change.
"""

from __future__ import annotations

import heapq
import json
import threading
from collections import Counter
from collections.abc import Hashable

from engine.reports.summary import (
    DETAILS,
    FIELD_VALUES,
    ErrorCount,
    OffendingValue,
    Summary,
    assemble,
    run_rows,
    top_values,
)
from engine.store.ddl import ERROR_DETAILS
from engine.store.store import Store

MAX_VALUES = 100_000


class SummaryCache:
    def __init__(self, *, values_per_field: int = 5, max_values: int = MAX_VALUES) -> None:
        self.values_per_field = values_per_field
        self.max_values = max_values
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (the database was reopened)."""
        self._folded: set[int] = set()
        self._errors: Counter[tuple[str, str]] = Counter()
        self._values: dict[str, Counter[str]] | None = {}
        self._distinct = 0
        self._key: Hashable = None
        self._summary: Summary | None = None
        self._changes: Hashable = None

    def current(self, changes: Hashable) -> Summary | None:
        """The summary, if nothing changed since it was read (``changes`` as it is now)."""
        with self._lock:
            return self._summary if changes == self._changes else None

    def summary(self, store: Store, changes: Hashable = None) -> Summary:
        """The summary of the committed state; ``changes``: the writer's count of changes,
        taken before this call (what the answer is current for)."""
        if changes is not None:
            found = self.current(changes)
            if found is not None:
                return found
        built = self._build(store)
        if changes is not None:
            with self._lock:
                if built is self._summary:
                    self._changes = changes
        return built

    def _build(self, store: Store) -> Summary:
        with store.transaction():  # one snapshot for the runs, the totals and the errors
            runs = run_rows(store)
            key = tuple(
                (r.run_id, r.status, r.rows_total, r.rows_valid, r.rows_invalid, r.duration_s)
                for r in runs
            )
            completed = {r.run_id for r in runs if r.status == "completed"}
            with self._lock:
                cached = self._summary
                if cached is not None and (key == self._key or completed < self._folded):
                    # the same state, or an older snapshot than the one already counted
                    return cached
                if not completed >= self._folded:  # runs are never un-completed: start over
                    self.reset()
                self._fold(store, sorted(completed - self._folded))
                built = assemble(store, runs, self._error_counts(), self._top_values(store))
                self._key, self._summary = key, built
                return built

    def _fold(self, store: Store, new: list[int]) -> None:
        if not new:
            return
        runs = ", ".join(str(int(run_id)) for run_id in new)
        for loc, kind, n in store.rows(
            f"SELECT loc, type, count(*) FROM {ERROR_DETAILS} WHERE run_id IN ({runs}) "
            "GROUP BY loc, type"
        ):
            self._errors[str(loc), str(kind)] += int(n)
        if self._values is not None:
            for loc, text, n in store.rows(
                f"SELECT loc, input, count(*) FROM {DETAILS} WHERE run_id IN ({runs}) "
                f"AND {FIELD_VALUES} GROUP BY loc, input"
            ):
                counts = self._values.setdefault(str(loc), Counter())
                self._distinct += text not in counts
                counts[str(text)] += int(n)
            if self._distinct > self.max_values:
                self._values = None
        self._folded.update(new)

    def _error_counts(self) -> list[ErrorCount]:
        ranked = sorted(self._errors.items(), key=lambda item: (-item[1], item[0]))
        return [ErrorCount(loc, kind, n) for (loc, kind), n in ranked]

    def _top_values(self, store: Store) -> list[OffendingValue]:
        """As ``engine.reports.summary.top_values``: fields with most such errors first."""
        if self._values is None:
            return top_values(store, self.values_per_field)
        fields = sorted(
            ((sum(counts.values()), loc) for loc, counts in self._values.items()),
            key=lambda item: (-item[0], item[1]),
        )
        found: list[OffendingValue] = []
        for _total, loc in fields:
            best = heapq.nsmallest(
                self.values_per_field,
                self._values[loc].items(),
                key=lambda item: (-item[1], item[0]),
            )
            found += [OffendingValue(loc, json.loads(text), n) for text, n in best]
        return found


class Answers:
    """Other answers (a page of runs, a run) kept while the writer's count of changes has
    not moved, as the summary is: a request then needs no DuckDB read."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._changes: Hashable = None
        self._answers: dict[Hashable, object] = {}

    def get(self, changes: Hashable, key: Hashable) -> object | None:
        with self._lock:
            return self._answers.get(key) if changes == self._changes else None

    def put(self, changes: Hashable, key: Hashable, answer: object) -> None:
        """``answer`` read from a snapshot taken after ``changes`` was read."""
        with self._lock:
            if changes != self._changes:
                self._changes, self._answers = changes, {}
            if len(self._answers) < self.size:
                self._answers[key] = answer
