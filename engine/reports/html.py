"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network).

Its figures are the ``summary`` command's, from the same function, so the page and the
terminal always agree; the breakdown of the valid data comes from ``breakdown``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.errors import ConfigError
from engine.reports import charts
from engine.reports.breakdown import Breakdown, breakdown
from engine.reports.reader import typed_tables
from engine.reports.summary import Summary, summary
from engine.store.store import Store

MAX_RUN_BARS = 30
MAX_ERROR_BARS = 15
RUN_PARTS = (("valid", "valid"), ("invalid", "invalid"))


@dataclass(frozen=True)
class Section:
    """One typed table's breakdown and its charts."""

    data: Breakdown
    charts: list[tuple[str, charts.Chart]] = field(default_factory=list)  # (title, chart)


@dataclass(frozen=True)
class Report:
    database: str
    generated_at: datetime
    summary: Summary
    runs_chart: charts.Chart
    runs_shown: int
    errors_chart: charts.Chart
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
        layout=charts.Layout(charts.FULL_WIDTH, value_width=170),
    )
    errors_chart = charts.bar_chart(
        "errors",
        [
            (f"{item.field or '(row)'} · {item.type}", item.count)
            for item in data.errors_by_field[:MAX_ERROR_BARS]
        ],
        css="invalid",
        layout=charts.Layout(charts.HALF_WIDTH, value_width=60),
    )
    sections = [_section(breakdown(store, table)) for table in typed_tables(store)]
    return Report(
        database=str(store.path),
        generated_at=now or datetime.now(UTC),
        summary=data,
        runs_chart=runs_chart,
        runs_shown=len(completed),
        errors_chart=errors_chart,
        donut=charts.Donut(data.success_rate or 0.0),
        sections=sections,
    )


def _section(data: Breakdown) -> Section:
    made = []
    for dimension in data.dimensions:
        if data.measure is not None:
            title = f"{data.measure} by {dimension.column}"
            items = [(g.label, g.total or 0.0) for g in dimension.groups]
            chart = charts.bar_chart(f"{data.table}:{title}", items, fmt=amount)
        else:
            title = f"rows by {dimension.column}"
            items = [(g.label, float(g.rows)) for g in dimension.groups]
            chart = charts.bar_chart(f"{data.table}:{title}", items)
        made.append((title, chart))
    return Section(data, made)


def render_report(report: Report) -> str:
    env = Environment(
        loader=PackageLoader("engine.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(thousands=thousands, percent=percent, amount=amount, seconds=seconds)
    env.globals["heat"] = charts.heat
    return env.get_template("report.html.j2").render(r=report, s=report.summary)


def write_report(store: Store, output: Path, *, now: datetime | None = None) -> Report:
    """Build and write the page; it appears under its name only when complete."""
    if not output.parent.is_dir():
        raise ConfigError(f"{output}: directory {output.parent} does not exist")
    report = build_report(store, now=now)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        partial.write_text(render_report(report), encoding="utf-8")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return report


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
