"""Chart geometry for the HTML report: plain numbers the template turns into inline SVG.

No charting library and no script: the page must open anywhere, offline, and print. Each
chart is a list of horizontal bars (one or more coloured segments each) on a fixed grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FULL_WIDTH = 1090  # a chart across the page, in CSS pixels at the page's widest
HALF_WIDTH = 514  # a chart in one of two columns
LABEL_WIDTH = 190
VALUE_WIDTH = 90
ROW_HEIGHT = 26
BAR_HEIGHT = 16
TOP = 6
GAP = 10
LABEL_CHARS = 27


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    css: str  # class name: the stylesheet holds the colours
    title: str  # tooltip
    value: float


@dataclass(frozen=True)
class Bar:
    y: float
    label: str
    full_label: str
    segments: list[Segment]
    value_text: str

    @property
    def text_y(self) -> float:
        return self.y + BAR_HEIGHT / 2


@dataclass(frozen=True)
class Layout:
    """Where labels, bars and values go; drawn 1:1 at the page's widest, scaled below."""

    width: int = HALF_WIDTH
    value_width: int = VALUE_WIDTH

    @property
    def track_x(self) -> int:
        return LABEL_WIDTH + GAP

    @property
    def track_width(self) -> int:
        return self.width - self.track_x - self.value_width - GAP


@dataclass(frozen=True)
class Chart:
    name: str
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (css class, label)
    layout: Layout
    bar_height: int = BAR_HEIGHT

    @property
    def width(self) -> int:
        return self.layout.width

    @property
    def height(self) -> int:
        return TOP * 2 + ROW_HEIGHT * len(self.bars)

    @property
    def track_x(self) -> int:
        return self.layout.track_x

    @property
    def track_width(self) -> int:
        return self.layout.track_width

    @property
    def label_x(self) -> int:
        return LABEL_WIDTH

    @property
    def value_x(self) -> int:
        return self.width - 2


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
    layout: Layout = Layout(),
) -> Chart:
    """One bar per item, scaled to the largest."""
    top = max((value for _, value in items), default=0.0)
    bars = []
    for index, (label, value) in enumerate(items):
        width = layout.track_width * value / top if top > 0 else 0.0
        segment = Segment(layout.track_x, width, css, f"{label}: {fmt(value)}", value)
        bars.append(_bar(index, label, [segment], fmt(value)))
    return Chart(name, bars, [], layout)


def stacked_chart(
    name: str,
    items: Sequence[tuple[str, Sequence[float]]],
    parts: Sequence[tuple[str, str]],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
    layout: Layout = Layout(),
) -> Chart:
    """One bar per item made of segments (``parts`` gives each one's class and name),
    scaled so that the largest total fills the track."""
    top = max((sum(values) for _, values in items), default=0.0)
    bars = []
    for index, (label, values) in enumerate(items):
        x = float(layout.track_x)
        segments = []
        for (css, part), value in zip(parts, values, strict=True):
            width = layout.track_width * value / top if top > 0 else 0.0
            segments.append(Segment(x, width, css, f"{label}: {fmt(value)} {part}", value))
            x += width
        text = " / ".join(fmt(v) for v in values)
        bars.append(_bar(index, label, segments, text))
    return Chart(name, bars, list(parts), layout)


def heat(value: float | None, top: float) -> float:
    """Cell shading for a cross table: 0.06 (empty) to 0.85 (largest)."""
    if value is None or top <= 0:
        return 0.0
    return round(0.06 + 0.79 * value / top, 3)


def _bar(index: int, label: str, segments: list[Segment], value_text: str) -> Bar:
    short = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
    y = TOP + index * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2
    return Bar(y, short, label, segments, value_text)
