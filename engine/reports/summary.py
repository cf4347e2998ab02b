"""Totals and per-run figures from ``ingestion_runs`` (and error breakdowns)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from engine.store.ddl import RUNS
from engine.store.store import Store


@dataclass(frozen=True)
class RunRow:
    run_id: int
    source_kind: str
    source_path: str
    format: str
    schema_name: str
    status: str
    started_at: datetime
    duration_s: float | None
    rows_total: int
    rows_valid: int
    rows_invalid: int
    rows_per_s: float | None
    message: str | None


@dataclass(frozen=True)
class Summary:
    runs_completed: int
    runs_failed: int
    rows_total: int
    rows_valid: int
    rows_invalid: int
    success_rate: float | None
    runs: list[RunRow]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for run in data["runs"]:
            run["started_at"] = run["started_at"].isoformat()
        return data


def summary(store: Store) -> Summary:
    completed, failed, total, valid, invalid = store.rows(
        f"SELECT count(*) FILTER (status = 'completed'), count(*) FILTER (status = 'failed'), "
        f"coalesce(sum(rows_total) FILTER (status = 'completed'), 0), "
        f"coalesce(sum(rows_valid) FILTER (status = 'completed'), 0), "
        f"coalesce(sum(rows_invalid) FILTER (status = 'completed'), 0) FROM {RUNS}"
    )[0]
    runs = [
        RunRow(*row)
        for row in store.rows(
            "SELECT run_id, source_kind, source_path, format, schema_name, status, started_at, "
            "duration_s, rows_total, rows_valid, rows_invalid, "
            "CASE WHEN duration_s > 0 THEN rows_total / duration_s END, message "
            f"FROM {RUNS} ORDER BY run_id"
        )
    ]
    rate = valid / total if total else None
    return Summary(int(completed), int(failed), int(total), int(valid), int(invalid), rate, runs)
