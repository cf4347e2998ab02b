"""Bar charts for the HTML report: plain numbers the template turns into HTML and CSS.

No charting library and no script: the page must open anywhere, offline, and print. A chart
is a list of horizontal bars, each a label, a track holding one or more coloured segments
(their widths are shares of the track), and the value. The stylesheet lays the three out on
a grid whose label column fits the longest label up to a share of the width, wrapping longer
ones, so that nothing is cut and text keeps its size on a phone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LABEL_CHARS = 60  # longer labels end in an ellipsis; the tooltip and data-label hold them whole


@dataclass(frozen=True)
class Segment:
    percent: float  # of the track's width
    css: str  # class name: the stylesheet holds the colours
    title: str  # tooltip
    value: float


@dataclass(frozen=True)
class Bar:
    label: str
    full_label: str
    segments: list[Segment]
    value_text: str


@dataclass(frozen=True)
class Chart:
    name: str
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (css class, label)


@dataclass(frozen=True)
class Donut:
    """A ring: the share ``fraction`` drawn along a circle of radius ``radius``."""

    fraction: float
    radius: float = 42.0

    @property
    def circumference(self) -> float:
        return 2 * math.pi * self.radius

    @property
    def dash(self) -> str:
        filled = self.circumference * max(0.0, min(1.0, self.fraction))
        return f"{filled:.2f} {self.circumference:.2f}"


def bar_chart(
    name: str,
    items: Sequence[tuple[str, float]],
    *,
    css: str = "bar",
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Chart:
    """One bar per item, scaled to the largest."""
    top = max((value for _, value in items), default=0.0)
    bars = []
    for label, value in items:
        segment = Segment(_percent(value, top), css, f"{label}: {fmt(value)}", value)
        bars.append(_bar(label, [segment], fmt(value)))
    return Chart(name, bars, [])


def stacked_chart(
    name: str,
    items: Sequence[tuple[str, Sequence[float]]],
    parts: Sequence[tuple[str, str]],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Chart:
    """One bar per item made of segments (``parts`` gives each one's class and name),
    scaled so that the largest total fills the track."""
    top = max((sum(values) for _, values in items), default=0.0)
    bars = []
    for label, values in items:
        segments = [
            Segment(_percent(value, top), css, f"{label}: {fmt(value)} {part}", value)
            for (css, part), value in zip(parts, values, strict=True)
        ]
        bars.append(_bar(label, segments, " / ".join(fmt(v) for v in values)))
    return Chart(name, bars, list(parts))


def heat(value: float | None, top: float) -> float:
    """Cell shading for a cross table: 0.06 (empty) to 0.85 (largest)."""
    if value is None or top <= 0:
        return 0.0
    return round(0.06 + 0.79 * value / top, 3)


def _percent(value: float, top: float) -> float:
    return round(100 * value / top, 3) if top > 0 else 0.0


def _bar(label: str, segments: list[Segment], value_text: str) -> Bar:
    short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
    return Bar(short, label, segments, value_text)
