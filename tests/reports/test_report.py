"""The HTML report, rendered by headless Chromium: no console errors, no request beyond the
file itself, every figure present and equal to `summary`, every chart drawn."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from engine.generate import generate
from engine.reports.breakdown import breakdown
from engine.reports.html import build_report, render_report
from engine.reports.reader import open_reader
from engine.wording import count
from tests.conftest import DATA, query
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
      drawn: f.querySelector('.bars') ? f.querySelector('.bars').getBoundingClientRect().width : 0,
      bars: [...f.querySelectorAll('.row')].map(row => [
        row.dataset.label,
        [...row.querySelectorAll('.seg')].map(s => Number(s.dataset.value)),
        row.querySelector('.value').textContent,
      ]),
    },
  ])),
  crosses: Object.fromEntries([...document.querySelectorAll('table.heat')].map(t => [
    t.dataset.chart, [...t.querySelectorAll('tr')].map(r => [...r.children].map(c => c.textContent.trim())),
  ])),
  runs: [...document.querySelectorAll('table[data-table=runs] tbody tr')]
    .map(r => [...r.children].map(c => c.textContent.trim())),
  values: [...document.querySelectorAll('table[data-table=top_values] tbody tr')].map(r => [
    r.dataset.field,
    Number(r.children[1].textContent.replace(/,/g, '')),
    [...r.querySelectorAll('.chip')].map(c => [c.querySelector('code').textContent, Number(c.dataset.count)]),
    r.querySelector('.more') ? r.querySelector('.more').textContent : null,
  ]),
  sections: [...document.querySelectorAll('[data-breakdown]')].map(s => s.dataset.breakdown),
  notes: [...document.querySelectorAll('.note')].map(n => n.textContent.trim()),
  captions: [...document.querySelectorAll('[data-breakdown] .caption')].map(c => c.textContent.trim()),
})"""

# What a person would see wrong at a given width: a page wider than the screen, text cut
# by a box that hides overflow or lying off screen (the cross table scrolls in a box of its
# own), a bar label running into its bar or a value touching it, and empty space beside the
# shorter of two cards side by side.
LAYOUT = """((width) => {
  const name = e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.')
    + ' "' + e.textContent.trim().slice(0, 40) + '"';
  const clipped = [...document.querySelectorAll('body *')].filter(e => {
    const overflow = getComputedStyle(e).overflowX;
    return (overflow === 'hidden' || overflow === 'clip') && e.scrollWidth > e.clientWidth + 1;
  }).map(name);
  const offscreen = [];
  const texts = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (texts.nextNode()) {
    const node = texts.currentNode;
    if (!node.textContent.trim() || node.parentElement.closest('.scroll')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    if ([...range.getClientRects()].some(r => r.left < -0.5 || r.right > width + 0.5)) {
      offscreen.push(name(node.parentElement));
    }
  }
  const crowded = [...document.querySelectorAll('.bars .row')].filter(row => {
    const [label, track, value] = ['.label', '.track', '.value']
      .map(s => row.querySelector(s).getBoundingClientRect());
    return label.right > track.left - 4 || value.left < track.right + 8;
  }).map(row => row.dataset.label);
  const gaps = [...document.querySelectorAll('.grid.two > .card')].map(card => {
    const style = getComputedStyle(card);
    const inner = card.getBoundingClientRect().bottom - parseFloat(style.paddingBottom)
      - parseFloat(style.borderBottomWidth);
    return Math.round(inner - card.lastElementChild.getBoundingClientRect().bottom);
  });
  return JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    clipped, offscreen, crowded, largestGap: Math.max(...gaps),
  });
})"""


@pytest.fixture
def report_db(tmp_path: Path) -> Path:
    """The sample, 300 generated transactions, a run of a model with a numeric and a text
    field, one with a whole-number measure, and one of a model with nothing to group by."""
    db = tmp_path / "report.duckdb"
    generated = tmp_path / "generated.csv"
    generate(generated, 300, seed=7, bad_fraction=0.1, fmt="csv")
    ingest(db, DATA / "transactions_sample.csv", generated)
    readings = tmp_path / "readings.py"
    readings.write_text(
        "from pydantic import BaseModel\n"
        "class Reading(BaseModel):\n    sensor: str\n    value: float\n"
        "class Stock(BaseModel):\n    shop: str\n    items: int\n"
        "class Counter(BaseModel):\n    n: int\n"
    )
    (tmp_path / "readings.csv").write_text("sensor,value\nA,1.5\nA,2.5\nB,4\nB,x\n")
    (tmp_path / "stock.csv").write_text(
        "shop,items\nnorth,1\nnorth,2\nsouth,1200\n"
        + "".join(f"south,{bad}\n" for bad in ["x", "x", "y", "1.5", "z", "-", "?"])
    )
    (tmp_path / "counts.csv").write_text("n\n1\n2\n")
    ingest(db, tmp_path / "readings.csv", schema=f"{readings}:Reading")
    ingest(db, tmp_path / "stock.csv", schema=f"{readings}:Stock")
    ingest(db, tmp_path / "counts.csv", schema=f"{readings}:Counter")
    return db


def render(
    run_cli: RunCli, browser: Path, db: Path, tmp_path: Path, probe: str = PROBE, width: int = 1280
) -> tuple[Any, dict[str, Any]]:
    page = tmp_path / "report.html"
    result = run_cli("report", "--db", str(db), "-o", str(page))
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {page}\n"
    summary = json.loads(run_cli("summary", "--db", str(db), "--json").output)
    seen = visit(browser, page.as_uri(), probe, tmp_path / f"report-{width}.png", width=width)
    assert seen.console_errors == []
    assert seen.requests == [page.as_uri()]  # self-contained: nothing else is fetched
    assert seen.failed == []
    assert seen.screenshot.startswith(b"\x89PNG") and len(seen.screenshot) > 50_000
    return json.loads(seen.result), summary


def failing_values(db: Path) -> dict[str, Counter[str]]:
    """Per field, each failing input (as JSON text) and its errors, counted in Python from
    the error lists as stored: what the report's table of values summarises."""
    found: dict[str, Counter[str]] = {}
    rows = query(
        db,
        "SELECT e.errors FROM ingestion_errors e JOIN ingestion_runs r USING (run_id) "
        "WHERE r.status = 'completed'",
    )
    for (errors,) in rows:
        for error in errors:  # type: ignore[attr-defined]
            if error["loc"] and not isinstance(json.loads(error["input"]), dict | list):
                field = ".".join(str(part) for part in error["loc"])
                found.setdefault(field, Counter())[error["input"]] += 1
    return found


def test_the_report_shows_the_summary_figures_and_charts(
    run_cli: RunCli, browser: Path, report_db: Path, tmp_path: Path
) -> None:
    page, summary = render(run_cli, browser, report_db, tmp_path)
    assert page["title"] == f"Ingestion report · {report_db}"
    figures = page["figures"]
    assert figures["database"] == str(report_db)
    for name in ("rows_total", "rows_valid", "rows_invalid", "runs_completed", "runs_failed"):
        assert int(figures[name]) == summary[name], name
    assert (summary["rows_total"], summary["rows_valid"], summary["rows_invalid"]) == (
        337,
        195,
        142,
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
    assert [(bar[0], bar[2]) for bar in charts["runs"]["bars"]] == [
        ("#1 transactions_sample.csv", "7 / 14"),
        ("#2 generated.csv", "180 / 120"),
        ("#3 readings.csv", "3 / 1"),
        ("#4 stock.csv", "3 / 7"),
        ("#5 counts.csv", "2 / 0"),
    ]
    # Labels whole, however long ("(row) · csv_unterminated_quote" was cut before).
    assert charts["errors"]["bars"] == [
        [f"{e['field'] or '(row)'} · {e['type']}", [e["count"]], f"{e['count']:,}"]
        for e in summary["errors_by_field"][:15]
    ]
    # One row per field (most errors first): its errors that carry a value, its five most
    # frequent values, and how many others there are.
    values = failing_values(report_db)
    chips: dict[str, list[list[Any]]] = {}  # in summary's order: fields with most errors first
    for top in summary["top_values"]:
        shown = repr(top["value"]) if isinstance(top["value"], str) else json.dumps(top["value"])
        chips.setdefault(top["field"], []).append([shown, top["count"]])
    others = {field: len(values[field]) - len(chips[field]) for field in chips}
    assert page["values"] == [
        [
            field,
            sum(values[field].values()),
            chips[field],
            f"and {count(others[field], 'other value')}" if others[field] else None,
        ]
        for field in chips
    ]
    assert [row[0] for row in page["values"]] == [
        "currency",
        "amount",
        "items",
        "timestamp",
        "value",
    ]
    assert page["values"][2][1:] == [
        7,
        [["'x'", 2], ["'-'", 1], ["'1.5'", 1], ["'?'", 1], ["'y'", 1]],
        "and 1 other value",
    ]
    assert [row[0] for row in page["runs"]] == ["1", "2", "3", "4", "5"]
    assert page["runs"][0][4:8] == ["21", "7", "14", "33.3%"]

    # The valid data: the reference table by currency and channel, the others by their text field.
    assert page["sections"] == ["processed_data", "reading", "stock", "counter"]
    with open_reader(report_db) as store:
        reference = breakdown(store, "processed_data")
    by_currency = {g.label: g.total for g in reference.dimensions[0].groups}
    assert [bar[0] for bar in charts["processed_data:amount by currency"]["bars"]] == list(
        by_currency
    )
    assert [
        bar[1][0] for bar in charts["processed_data:amount by currency"]["bars"]
    ] == pytest.approx(list(by_currency.values()))
    assert [bar[2] for bar in charts["processed_data:amount by currency"]["bars"]] == [
        f"{total:,.2f}" for total in by_currency.values()
    ]
    assert [d.column for d in reference.dimensions] == ["currency", "source_channel"]
    assert reference.non_finite == 1  # the sample's `inf`
    cross = page["crosses"]["processed_data:cross"]
    assert cross[0][0] == "currency \\ source_channel"
    assert [row[0] for row in cross[1:]] == list(by_currency)
    assert charts["reading:value by sensor"]["bars"] == [
        ["A", [4.0], "4.00"],
        ["B", [4.0], "4.00"],
    ]  # ties: more rows first
    # A whole-number measure has whole-number totals.
    assert charts["stock:items by shop"]["bars"] == [
        ["south", [1200.0], "1,200"],
        ["north", [3.0], "3"],
    ]
    assert page["notes"] == ["no text column with at most 12 distinct values to group counter by."]
    assert page["captions"] == [
        "187 rows; totals of amount (1 non-finite value left out of the totals).",
        "3 rows; totals of value.",
        "3 rows; totals of items.",
        "2 rows.",
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_the_report_fits_a_desktop_and_a_phone(
    run_cli: RunCli, browser: Path, report_db: Path, tmp_path: Path, width: int
) -> None:
    layout, _ = render(run_cli, browser, report_db, tmp_path, f"{LAYOUT}({width})", width)
    assert layout["scrollWidth"] == width
    assert layout["clipped"] == []
    assert layout["offscreen"] == []
    assert layout["crowded"] == []
    # Side by side (1280 px), the errors chart and the values table end within 200 px of
    # each other (the values list used to leave 1,300 px empty); stacked, neither has room
    # left over.
    assert layout["largestGap"] < 200 if width == 1280 else layout["largestGap"] == 0


def test_an_empty_database_still_renders(run_cli: RunCli, browser: Path, tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    empty = tmp_path / "empty.csv"
    empty.write_text("external_id,amount,currency,source_channel,timestamp\n")
    run_cli("run", str(empty), "--db", str(db), "-q")
    page, summary = render(run_cli, browser, db, tmp_path)
    assert summary["rows_total"] == 0
    assert page["figures"]["success_rate"] == ""
    assert page["charts"]["runs"]["bars"] == [["#1 empty.csv", [], "0 / 0"]]
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


def test_the_values_table_keeps_the_fields_with_most_errors(tmp_path: Path) -> None:
    """Beside a chart of at most 15 bars, at most 15 fields: those with most errors."""
    fields = [f"f{i:02d}" for i in range(17)]
    module = tmp_path / "wide.py"
    module.write_text(
        "from pydantic import BaseModel\nclass Wide(BaseModel):\n"
        + "".join(f"    {name}: int\n" for name in fields)
    )
    # Field f{i} fails in i + 1 rows (as 'x'), so f16 has most errors, f00 fewest.
    rows = [",".join("x" if i >= row else "1" for i in range(17)) for row in range(17)]
    data = tmp_path / "wide.csv"
    data.write_text(",".join(fields) + "\n" + "\n".join(rows) + "\n")
    db = tmp_path / "wide.duckdb"
    ingest(db, data, schema=f"{module}:Wide")
    with open_reader(db) as store:
        report = build_report(store)
        html = render_report(report)
    assert report.value_fields == 17
    assert [(f.field, f.errors, f.values, f.more) for f in report.values] == [
        (f"f{i:02d}", i + 1, 1, 0) for i in range(16, 1, -1)
    ]
    assert "The 15 fields of 17 with most errors: the errors that carry its value" in html
