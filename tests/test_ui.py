"""The progress line of `run` on a terminal: counts whole at 80 columns, all of them wider."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from engine import ui
from engine.pipeline import Progress, Tally


def rendered(monkeypatch: pytest.MonkeyPatch, width: int) -> list[str]:
    out = io.StringIO()
    screen = Console(file=out, width=width, force_terminal=True, color_system=None)
    monkeypatch.setattr(ui, "console", screen)
    tally = Tally(rows=1_234_567, valid=888_889, invalid=345_678)
    with ui.run_progress("transactions_2024_full_export.csv", 1000, enabled=True) as update:
        update(Progress(500, 1000, tally))
    text = out.getvalue().replace("\x1b[2K", "").replace("\r", "\n")  # erase-line codes
    return [line for line in text.splitlines() if "rows" in line]


def test_an_80_column_terminal_shows_the_counts_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    last = rendered(monkeypatch, 80)[-1].rstrip()
    assert len(last) <= 80
    # The rate depends on the elapsed time, and the name gets what room is left (cut with
    # Rich's ellipsis); the bar is 10 characters of Rich's drawing.
    shape = r"transact\S* \S{10} 1,234,567 rows, 345,678 invalid, [0-9,]+/s [0-9:-]+"
    assert re.fullmatch(shape, last), last


def test_a_wide_terminal_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    last = rendered(monkeypatch, 240)[-1].rstrip()
    # Only the rate and the two clocks depend on the elapsed time; the bar is 40 characters.
    shape = (
        r"transactions_2024_full_export\.csv \S{40} 100% 1,000/1,000 bytes +1,234,567 rows +"
        r"[0-9,]+ rows/s  888,889 valid  345,678 invalid [0-9:]+ [0-9:-]+"
    )
    assert re.fullmatch(shape, last), last
