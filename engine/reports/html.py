"""The HTML report: one self-contained page (inline CSS, no script, no network).

Its figures are the ``summary`` command's, from the same function, so the page and the
terminal always agree; the breakdown of the valid data comes from ``breakdown``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.errors import ConfigError
from engine.reports import charts
from engine.reports.breakdown import Breakdown, breakdown
from engine.reports.reader import typed_tables
from engine.reports.staging import stage
from engine.reports.summary import OffendingValue, Summary, ValueTotal, summary, value_totals
from engine.store.store import Store
from engine.wording import count


def thousands(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def amount(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:,.2f}"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} s"


MAX_RUN_BARS = 30
MAX_ERROR_BARS = 15
MAX_VALUE_FIELDS = 15  # beside the errors chart, about as tall
RUN_PARTS = (("valid", "valid"), ("invalid", "invalid"))


@dataclass(frozen=True)
class FieldValues:
    """One field's most frequent failing inputs, and how many errors and values in all."""

    field: str
    errors: int
    values: int
    top: list[OffendingValue]

    @property
    def more(self) -> int:
        """Values not among the top ones."""
        return self.values - len(self.top)


@dataclass(frozen=True)
class Section:
    """One typed table's breakdown, its charts, and how its measure's totals read."""

    data: Breakdown
    charts: list[tuple[str, charts.Chart]] = field(default_factory=list)  # (title, chart)
    number: Callable[[float | None], str] = thousands


@dataclass(frozen=True)
class Report:
    database: str
    generated_at: datetime
    summary: Summary
    runs_chart: charts.Chart
    runs_shown: int
    errors_chart: charts.Chart
    values: list[FieldValues]  # the fields with most errors
    value_fields: int  # fields with failing values, shown or not
    donut: charts.Donut
    sections: list[Section]


def build_report(store: Store, *, now: datetime | None = None) -> Report:
    data = summary(store)
    completed = [run for run in data.runs if run.status == "completed"][-MAX_RUN_BARS:]
    runs_chart = charts.stacked_chart(
        "runs",
        [
            (
                f"#{run.run_id} {os.path.basename(run.source_path)}",
                (run.rows_valid, run.rows_invalid),
            )
            for run in completed
        ],
        RUN_PARTS,
    )
    errors_chart = charts.bar_chart(
        "errors",
        [
            (f"{item.field or '(row)'} · {item.type}", item.count)
            for item in data.errors_by_field[:MAX_ERROR_BARS]
        ],
        css="invalid",
    )
    sections = [_section(breakdown(store, table)) for table in typed_tables(store)]
    values = field_values(data.top_values, value_totals(store))
    return Report(
        database=str(store.path),
        generated_at=now or datetime.now(UTC),
        summary=data,
        runs_chart=runs_chart,
        runs_shown=len(completed),
        errors_chart=errors_chart,
        values=values[:MAX_VALUE_FIELDS],
        value_fields=len(values),
        donut=charts.Donut(data.success_rate or 0.0),
        sections=sections,
    )


def field_values(top: list[OffendingValue], totals: dict[str, ValueTotal]) -> list[FieldValues]:
    """``top`` (fields with most errors first) grouped by field, with each field's totals."""
    grouped: dict[str, list[OffendingValue]] = {}
    for value in top:
        grouped.setdefault(value.field, []).append(value)
    return [
        FieldValues(name, totals[name].errors, totals[name].values, values)
        for name, values in grouped.items()
    ]


def _section(data: Breakdown) -> Section:
    number = thousands if data.integral or data.measure is None else amount
    made = []
    for dimension in data.dimensions:
        if data.measure is not None:
            title = f"{data.measure} by {dimension.column}"
            items = [(g.label, g.total or 0.0) for g in dimension.groups]
        else:
            title = f"rows by {dimension.column}"
            items = [(g.label, float(g.rows)) for g in dimension.groups]
        made.append((title, charts.bar_chart(f"{data.table}:{title}", items, fmt=number)))
    return Section(data, made, number)


def render_report(report: Report) -> str:
    env = Environment(
        loader=PackageLoader("engine.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        thousands=thousands, percent=percent, amount=amount, seconds=seconds, counted=count
    )
    env.globals["heat"] = charts.heat
    return env.get_template("report.html.j2").render(r=report, s=report.summary)


def write_report(store: Store, output: Path, *, now: datetime | None = None) -> Report:
    """Build and write the page; it appears under its name only when complete."""
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: directory {output.parent} does not exist")
    report = build_report(store, now=now)
    page = render_report(report)
    # A new file of our own, under a name drawn at random: never a symlink planted beside it.
    partial = stage(output)
    try:
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_NOFOLLOW), "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return report
