"""The HTML report, rendered by headless Chromium: no console errors, no request beyond the
file itself, every figure present and equal to `summary`, every chart drawn."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from engine.generate import generate
from engine.reports.breakdown import breakdown
from engine.reports.reader import open_reader
from tests.conftest import DATA
from tests.reports.chromium import visit
from tests.reports.conftest import ingest

RunCli = Callable[..., Result]

# Everything a reader looks at, gathered from the rendered page.
PROBE = """JSON.stringify({
  title: document.title,
  figures: Object.fromEntries([...document.querySelectorAll('[data-figure]')]
    .map(e => [e.dataset.figure, e.dataset.value === undefined ? e.textContent : e.dataset.value])),
  charts: Object.fromEntries([...document.querySelectorAll('figure[data-chart]')].map(f => [
    f.dataset.chart,
    {
      drawn: f.querySelector('svg') ? f.querySelector('svg').getBoundingClientRect().width : 0,
      bars: [...f.querySelectorAll('g.row')].map(g => [
        g.dataset.label,
        [...g.querySelectorAll('rect.seg')].map(r => Number(r.dataset.value)),
      ]),
    },
  ])),
  crosses: Object.fromEntries([...document.querySelectorAll('table.heat')].map(t => [
    t.dataset.chart, [...t.querySelectorAll('tr')].map(r => [...r.children].map(c => c.textContent.trim())),
  ])),
  runs: [...document.querySelectorAll('table[data-table=runs] tbody tr')]
    .map(r => [...r.children].map(c => c.textContent.trim())),
  values: [...document.querySelectorAll('table[data-table=top_values] tbody tr')]
    .map(r => [...r.children].map(c => c.textContent.trim())),
  sections: [...document.querySelectorAll('[data-breakdown]')].map(s => s.dataset.breakdown),
  notes: [...document.querySelectorAll('.note')].map(n => n.textContent.trim()),
  overflow: document.documentElement.scrollWidth > window.innerWidth,
})"""


@pytest.fixture
def report_db(tmp_path: Path) -> Path:
    """The sample, 300 generated transactions, a run of a model with a numeric and a text
    field, and one of a model with nothing to group by."""
    db = tmp_path / "report.duckdb"
    generated = tmp_path / "generated.csv"
    generate(generated, 300, seed=7, bad_fraction=0.1, fmt="csv")
    ingest(db, DATA / "transactions_sample.csv", generated)
    readings = tmp_path / "readings.py"
    readings.write_text(
        "from pydantic import BaseModel\n"
        "class Reading(BaseModel):\n    sensor: str\n    value: float\n"
        "class Counter(BaseModel):\n    n: int\n"
    )
    (tmp_path / "readings.csv").write_text("sensor,value\nA,1.5\nA,2.5\nB,4\nB,x\n")
    (tmp_path / "counts.csv").write_text("n\n1\n2\n")
    ingest(db, tmp_path / "readings.csv", schema=f"{readings}:Reading")
    ingest(db, tmp_path / "counts.csv", schema=f"{readings}:Counter")
    return db


def render(
    run_cli: RunCli, browser: Path, db: Path, tmp_path: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    page = tmp_path / "report.html"
    result = run_cli("report", "--db", str(db), "-o", str(page))
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {page}\n"
    summary = json.loads(run_cli("summary", "--db", str(db), "--json").output)
    seen = visit(browser, page.as_uri(), PROBE, tmp_path / "report.png")
    assert seen.console_errors == []
    assert seen.requests == [page.as_uri()]  # self-contained: nothing else is fetched
    assert seen.failed == []
    assert seen.screenshot.startswith(b"\x89PNG") and len(seen.screenshot) > 50_000
    return json.loads(seen.result), summary


def test_the_report_shows_the_summary_figures_and_charts(
    run_cli: RunCli, browser: Path, report_db: Path, tmp_path: Path
) -> None:
    page, summary = render(run_cli, browser, report_db, tmp_path)
    assert page["title"] == f"Ingestion report · {report_db}"
    assert page["overflow"] is False
    figures = page["figures"]
    assert figures["database"] == str(report_db)
    for name in ("rows_total", "rows_valid", "rows_invalid", "runs_completed", "runs_failed"):
        assert int(figures[name]) == summary[name], name
    assert (summary["rows_total"], summary["rows_valid"], summary["rows_invalid"]) == (
        327,
        192,
        135,
    )
    assert float(figures["success_rate"]) == summary["success_rate"]
    assert float(figures["rows_per_s"]) == summary["rows_per_s"]

    charts = page["charts"]
    assert all(chart["drawn"] > 300 for chart in charts.values())
    completed = [r for r in summary["runs"] if r["status"] == "completed"]
    # A segment per non-zero part: valid (green), then invalid (red).
    assert [bar[1] for bar in charts["runs"]["bars"]] == [
        [n for n in (r["rows_valid"], r["rows_invalid"]) if n] for r in completed
    ]
    assert [bar[0] for bar in charts["runs"]["bars"]] == [
        "#1 transactions_sample.csv",
        "#2 generated.csv",
        "#3 readings.csv",
        "#4 counts.csv",
    ]
    assert charts["errors"]["bars"] == [
        [f"{e['field'] or '(row)'} · {e['type']}", [e["count"]]]
        for e in summary["errors_by_field"][:15]
    ]
    assert page["values"] == [
        [
            v["field"],
            repr(v["value"]) if isinstance(v["value"], str) else str(v["value"]),
            str(v["count"]),
        ]
        for v in summary["top_values"]
    ]
    assert [row[0] for row in page["runs"]] == ["1", "2", "3", "4"]
    assert page["runs"][0][4:8] == ["21", "7", "14", "33.3%"]

    # The valid data: the reference table by currency and channel, the other by its text field.
    assert page["sections"] == ["processed_data", "reading", "counter"]
    with open_reader(report_db) as store:
        reference = breakdown(store, "processed_data")
    by_currency = {g.label: g.total for g in reference.dimensions[0].groups}
    assert [bar[0] for bar in charts["processed_data:amount by currency"]["bars"]] == list(
        by_currency
    )
    assert [
        bar[1][0] for bar in charts["processed_data:amount by currency"]["bars"]
    ] == pytest.approx(list(by_currency.values()))
    assert [d.column for d in reference.dimensions] == ["currency", "source_channel"]
    assert reference.non_finite == 1  # the sample's `inf`
    cross = page["crosses"]["processed_data:cross"]
    assert cross[0][0] == "currency \\ source_channel"
    assert [row[0] for row in cross[1:]] == list(by_currency)
    assert charts["reading:value by sensor"]["bars"] == [
        ["A", [4.0]],
        ["B", [4.0]],
    ]  # ties: more rows first
    assert page["notes"] == ["no text column with at most 12 distinct values to group counter by."]


def test_an_empty_database_still_renders(run_cli: RunCli, browser: Path, tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    empty = tmp_path / "empty.csv"
    empty.write_text("external_id,amount,currency,source_channel,timestamp\n")
    run_cli("run", str(empty), "--db", str(db), "-q")
    page, summary = render(run_cli, browser, db, tmp_path)
    assert summary["rows_total"] == 0
    assert page["figures"]["success_rate"] == ""
    assert page["charts"]["runs"]["bars"] == [["#1 empty.csv", []]]
    assert page["charts"]["errors"]["bars"] == []


def test_the_harness_sees_console_errors_and_failed_requests(browser: Path, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><title>x</title><img src='missing.png'>"
        "<script>console.error('boom'); undefinedFunction();</script>"
    )
    seen = visit(browser, page.as_uri(), "document.title", tmp_path / "broken.png")
    assert seen.result == "x"
    assert "boom" in seen.console_errors
    assert any("undefinedFunction" in e or "Uncaught" in e for e in seen.console_errors)
    assert seen.requests == [page.as_uri(), (tmp_path / "missing.png").as_uri()]
    assert seen.failed == [f"{(tmp_path / 'missing.png').as_uri()} net::ERR_FILE_NOT_FOUND"]
