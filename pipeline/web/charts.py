"""Server-rendered SVG charts for the dashboard. Pure: data in, markup out; no I/O, no chart library.

Every function returns :class:`markupsafe.Markup` that a Jinja2 template embeds as is, so every text that
reaches the markup here (station names, movie titles, labels) passes through :func:`markupsafe.escape`
first — in ``<text>``, in ``<title>`` and in attribute values alike. The CSP forbids inline style, so the
markup carries classes (``static/dashboard.css``) and SVG presentation attributes (``fill``, ``stroke``),
never a ``style`` attribute or a ``<style>`` element.

Honest lines: a value that is missing is a *gap* — the path is broken there (a new ``M`` subpath), never
drawn through zero, and an isolated value between two gaps is a dot. A flagged value (통신장애 and the like)
gets its own marker: on the line when the value is there anyway (unreliable, airkorea.md §5), in a strip
below the plot when it is not. A missing value without a flag gets a grey tick in that strip.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from markupsafe import Markup, escape

WIDTH: Final = 640
HEIGHT: Final = 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 24, 44
STRIP: Final = 10  # the strip of flag and missing marks below the plot
GRID: Final = "#d0d7de"
AXIS_TEXT: Final = "#333333"
MISSING_MARK: Final = "#8c959f"
FLAG_MARK: Final = "#000000"
NO_DATA: Final = "#eaeef2"


@dataclass(frozen=True, slots=True)
class Point:
    """One x of a line: ``y`` ``None`` is a missing value (a gap)."""

    x: datetime
    y: float | None
    label: str  # what the axis and the tooltip say of x, e.g. "11-28 09:00"
    flag: str | None = None  # a status flag: marked, whatever y is
    key: str = ""  # data-key, to tie the mark to its table row (dashboard.js)


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # shown in the legend and tooltips
    key: str  # a short machine name: data-series
    points: Sequence[Point]
    colour: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Band:
    """A horizontal band behind a line chart (a grade's range of values)."""

    low: float
    high: float | None  # None: up to the top of the plot
    colour: str
    label: str


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # the short label under (or beside) the bar
    value: float | None  # None: no bar, a "no data" mark
    title: str  # the tooltip
    colour: str
    key: str = ""  # data-key, to tie the bar to its table row
    partial: bool = False  # drawn lighter: a daily mean of too few valid hours


@dataclass(frozen=True, slots=True)
class Cell:
    value: float | None  # percent; None: nothing expected that day
    title: str


def _markup(parts: list[str]) -> Markup:
    """The chart, trusted: every text in ``parts`` went through :func:`escape` where it was written."""
    return Markup("".join(parts))  # noqa: S704 (see the docstring: the variable parts are escaped)


def _num(value: float) -> str:
    """A coordinate: one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _value_text(value: float, unit: str = "") -> str:
    shown = f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return f"{shown} {unit}".rstrip()


def _open(title: str, width: int, height: int, chart_id: str, kind: str) -> list[str]:
    safe_title = escape(title)
    return [
        f'<svg class="chart chart-{kind}" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-label="{safe_title}" data-chart="{escape(chart_id)}">',
        f"<title>{safe_title}</title>",
    ]


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (an axis top)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    step = (high - low) / count
    return [low + step * i for i in range(count + 1)]


def segments(points: Sequence[Point], step: timedelta | None = None) -> list[list[Point]]:
    """The runs of consecutive points that have a value: a missing value, or (with ``step``) a jump in x
    wider than ``step``, starts a new run."""
    runs: list[list[Point]] = []
    current: list[Point] = []
    previous: Point | None = None
    for point in points:
        if point.y is None or not math.isfinite(point.y):
            if current:
                runs.append(current)
            current, previous = [], point
            continue
        if current and step is not None and previous is not None and point.x - previous.x > step:
            runs.append(current)
            current = []
        current.append(point)
        previous = point
    if current:
        runs.append(current)
    return runs


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    chart_id: str,
    step: timedelta | None = None,
    invert: bool = False,
    bands: Sequence[Band] = (),
    x_ticks: int = 6,
    missing_word: str = "missing",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Markup:
    """Lines over time, broken at every missing value (see the module docstring).

    ``invert``: the smallest value on top, whole-number ticks (a rank). ``step``: the expected spacing of x
    (an hour); a wider jump between two values is a gap too, whether or not the caller listed the missing x.
    ``missing_word``: what a point without a value is called in its tooltip and the legend.
    """
    out = _open(title, width, height, chart_id, "line")
    xs = [p.x for s in series for p in s.points]
    values = [p.y for s in series for p in s.points if p.y is not None and math.isfinite(p.y)]
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM - STRIP
    bottom = PAD_TOP + plot_h
    if not xs:
        out.append(f'<text class="no-data" x="{width // 2}" y="{height // 2}" text-anchor="middle" '
                   f'fill="{AXIS_TEXT}">no data</text>')  # fmt: skip
        out.append("</svg>")
        return _markup(out)
    first, last = min(xs), max(xs)
    span = (last - first).total_seconds()
    if invert:
        low = 1.0
        high = float(max(math.ceil(max(values, default=1.0)), 2))
        ticks: list[float] = sorted({float(round(low + (high - low) * i / 4)) for i in range(5)})
    else:
        low = 0.0
        high = nice_ceiling(max(values, default=1.0))
        ticks = _ticks(low, high)

    def sx(at: datetime) -> float:
        if span == 0:
            return PAD_LEFT + plot_w / 2
        return PAD_LEFT + plot_w * (at - first).total_seconds() / span

    def sy(value: float) -> float:
        share = (value - low) / (high - low)
        return PAD_TOP + plot_h * share if invert else bottom - plot_h * share

    for band in bands:
        if invert or band.low >= high:
            continue
        top = high if band.high is None else min(band.high, high)
        y0, y1 = sy(top), sy(band.low)
        out.append(
            f'<rect class="band" x="{PAD_LEFT}" y="{_num(y0)}" width="{plot_w}" height="{_num(y1 - y0)}" '
            f'fill="{escape(band.colour)}" fill-opacity="0.12"><title>{escape(band.label)}</title></rect>'
        )
    for tick in ticks:
        y = sy(tick)
        out.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{_num(y)}" y2="{_num(y)}" '
                   f'stroke="{GRID}" stroke-width="1"/>')  # fmt: skip
        out.append(f'<text class="tick" x="{PAD_LEFT - 4}" y="{_num(y + 4)}" text-anchor="end" '
                   f'fill="{AXIS_TEXT}">{escape(_value_text(tick))}</text>')  # fmt: skip
    labels = sorted({p.x: p.label for s in series for p in s.points}.items())
    every = max(1, math.ceil(len(labels) / max(1, x_ticks)))
    for at, label in labels[::every]:
        x = sx(at)  # the labels at the plot's ends stay inside the chart
        anchor = "start" if x - PAD_LEFT < 30 else "end" if PAD_LEFT + plot_w - x < 30 else "middle"
        out.append(f'<text class="tick" x="{_num(x)}" y="{height - 6}" text-anchor="{anchor}" '
                   f'fill="{AXIS_TEXT}">{escape(label)}</text>')  # fmt: skip
    strip_y = bottom + STRIP / 2 + 2
    marks = {"flag": False, "missing": False}
    for item in series:
        colour = escape(item.colour)
        commands: list[str] = []
        dots: list[str] = []
        for run in segments(item.points, step):
            commands.append("M" + " L".join(f"{_num(sx(p.x))},{_num(sy(p.y))}" for p in run if p.y is not None))
            if len(run) == 1:  # a value between two gaps: a path of one point draws nothing
                p = run[0]
                dots.append(f'<circle class="lone" cx="{_num(sx(p.x))}" cy="{_num(sy(p.y or 0))}" r="2.5" '
                            f'fill="{colour}"/>')  # fmt: skip
        out.append(
            f'<g class="series" data-series="{escape(item.key)}">'
            f'<path class="line" d="{" ".join(commands)}" fill="none" stroke="{colour}" stroke-width="2"/>'
        )
        out.extend(dots)
        for p in item.points:
            described = f"{item.name}, {p.label}: "
            if p.y is not None and math.isfinite(p.y):
                shown = _value_text(p.y, item.unit)
                if p.flag:
                    marks["flag"] = True
                    out.append(_cross(sx(p.x), sy(p.y), f"{described}{shown} (flag: {p.flag})", p, p.flag))
                else:
                    out.append(f'<circle class="point" cx="{_num(sx(p.x))}" cy="{_num(sy(p.y))}" r="2.5" '
                               f'fill="{colour}" data-key="{escape(p.key)}" data-y="{escape(str(p.y))}">'
                               f"<title>{escape(described + shown)}</title></circle>")  # fmt: skip
            elif p.flag:
                marks["flag"] = True
                out.append(_cross(sx(p.x), strip_y, f"{described}no value (flag: {p.flag})", p, p.flag))
            else:
                marks["missing"] = True
                tx = _num(sx(p.x))
                out.append(
                    f'<line class="missing" x1="{tx}" x2="{tx}" y1="{_num(strip_y - 3)}" y2="{_num(strip_y + 3)}" '
                    f'stroke="{MISSING_MARK}" stroke-width="1.5" data-key="{escape(p.key)}">'
                    f"<title>{escape(described + missing_word)}</title></line>"
                )
        out.append("</g>")
    legend = [word for word, kind in (("flagged", "flag"), (missing_word, "missing")) if marks[kind]]
    out.append(_legend([(s.name, s.colour) for s in series], legend, width))
    out.append("</svg>")
    return _markup(out)


def _cross(x: float, y: float, text: str, point: Point, flag: str) -> str:
    """The flag marker: an ×, unlike any point of a line."""
    a, b, c, d = _num(x - 3.5), _num(x + 3.5), _num(y - 3.5), _num(y + 3.5)
    return (
        f'<path class="flag" d="M{a},{c} L{b},{d} M{a},{d} L{b},{c}" stroke="{FLAG_MARK}" stroke-width="2" '
        f'fill="none" data-key="{escape(point.key)}" data-flag="{escape(flag)}"><title>{escape(text)}</title></path>'
    )


def _legend(entries: Sequence[tuple[str, str]], marks: Sequence[str], width: int) -> str:
    """The series' colours, and the marks the chart holds (flagged, missing), from the right."""
    parts = ['<g class="legend">']
    x = PAD_LEFT
    for name, colour in entries:
        parts.append(f'<rect x="{x}" y="6" width="12" height="4" fill="{escape(colour)}"/>')
        parts.append(f'<text x="{x + 16}" y="12" fill="{AXIS_TEXT}">{escape(name)}</text>')
        x += 24 + 8 * len(name)
    right = width - PAD_RIGHT
    for word in reversed(marks):
        right -= 14 + 7 * len(word)
        if right < x:
            break
        if word == "flagged":
            parts.append(f'<path d="M{right},5 l6,6 m-6,0 l6,-6" stroke="{FLAG_MARK}" stroke-width="2"/>')
        else:
            parts.append(f'<line x1="{right + 3}" x2="{right + 3}" y1="4" y2="12" stroke="{MISSING_MARK}" '
                         f'stroke-width="1.5"/>')  # fmt: skip
        parts.append(f'<text x="{right + 10}" y="12" fill="{AXIS_TEXT}">{escape(word)}</text>')
    parts.append("</g>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    chart_id: str,
    unit: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
    x_ticks: int = 10,
) -> Markup:
    """Vertical bars (daily means); a bar without a value is a grey "no data" mark at the base."""
    out = _open(title, width, height, chart_id, "bars")
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    bottom = PAD_TOP + plot_h
    high = nice_ceiling(max((b.value for b in bars if b.value is not None), default=1.0))
    for tick in _ticks(0.0, high):
        y = bottom - plot_h * tick / high
        out.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{PAD_LEFT + plot_w}" y1="{_num(y)}" y2="{_num(y)}" '
                   f'stroke="{GRID}" stroke-width="1"/>')  # fmt: skip
        out.append(f'<text class="tick" x="{PAD_LEFT - 4}" y="{_num(y + 4)}" text-anchor="end" '
                   f'fill="{AXIS_TEXT}">{escape(_value_text(tick))}</text>')  # fmt: skip
    if not bars:
        out.append(f'<text class="no-data" x="{width // 2}" y="{height // 2}" text-anchor="middle" '
                   f'fill="{AXIS_TEXT}">no data</text>')  # fmt: skip
    slot = plot_w / max(1, len(bars))
    every = max(1, math.ceil(len(bars) / max(1, x_ticks)))
    for index, bar in enumerate(bars):
        x = PAD_LEFT + slot * index + slot * 0.1
        w = slot * 0.8
        key = f' data-key="{escape(bar.key)}"' if bar.key else ""
        if bar.value is None:
            out.append(f'<rect class="bar no-value" x="{_num(x)}" y="{bottom - 3}" width="{_num(w)}" height="3" '
                       f'fill="{MISSING_MARK}"{key}><title>{escape(bar.title)}</title></rect>')  # fmt: skip
        else:
            h = plot_h * max(0.0, bar.value) / high
            opacity = ' fill-opacity="0.45"' if bar.partial else ""
            kind = "bar partial" if bar.partial else "bar"
            out.append(
                f'<rect class="{kind}" x="{_num(x)}" y="{_num(bottom - h)}" width="{_num(w)}" height="{_num(h)}" '
                f'fill="{escape(bar.colour)}"{opacity} data-y="{escape(str(bar.value))}"{key}>'
                f"<title>{escape(bar.title)}</title></rect>"
            )
        if index % every == 0:
            out.append(f'<text class="tick" x="{_num(x + w / 2)}" y="{height - 6}" text-anchor="middle" '
                       f'fill="{AXIS_TEXT}">{escape(bar.label)}</text>')  # fmt: skip
    if unit:
        out.append(f'<text class="unit" x="{PAD_LEFT}" y="14" fill="{AXIS_TEXT}">{escape(unit)}</text>')
    out.append("</svg>")
    return _markup(out)


def hbar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    chart_id: str,
    unit: str = "",
    width: int = WIDTH,
    label_width: int = 200,
    row: int = 18,
) -> Markup:
    """Horizontal bars with their labels (provinces, movie titles) in ``<text>``, long labels cut."""
    height = PAD_TOP + row * max(1, len(bars)) + 8
    out = _open(title, width, height, chart_id, "hbars")
    plot_w = width - label_width - 60
    high = nice_ceiling(max((b.value for b in bars if b.value is not None), default=1.0))
    if unit:
        out.append(f'<text class="unit" x="{label_width}" y="14" fill="{AXIS_TEXT}">{escape(unit)}</text>')
    for index, bar in enumerate(bars):
        y = PAD_TOP + row * index
        label = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        key = f' data-key="{escape(bar.key)}"' if bar.key else ""
        out.append(f'<text class="label" x="{label_width - 6}" y="{y + row - 5}" text-anchor="end" '
                   f'fill="{AXIS_TEXT}">{escape(label)}</text>')  # fmt: skip
        if bar.value is None:
            out.append(f'<text class="no-value" x="{label_width + 4}" y="{y + row - 5}" fill="{MISSING_MARK}"'
                       f"{key}>no value<title>{escape(bar.title)}</title></text>")  # fmt: skip
            continue
        w = plot_w * max(0.0, bar.value) / high
        out.append(
            f'<rect class="bar" x="{label_width}" y="{y + 2}" width="{_num(w)}" height="{row - 4}" '
            f'fill="{escape(bar.colour)}" data-y="{escape(str(bar.value))}"{key}>'
            f"<title>{escape(bar.title)}</title></rect>"
        )
        out.append(f'<text class="value" x="{_num(label_width + w + 4)}" y="{y + row - 5}" '
                   f'fill="{AXIS_TEXT}">{escape(_value_text(bar.value))}</text>')  # fmt: skip
    out.append("</svg>")
    return _markup(out)


#: completeness (percent) → colour: a sequential scale, light to dark; the number is printed in the cell
COMPLETENESS_STEPS: Final = ((100.0, "#1a7f37", "#ffffff"), (99.0, "#4ac26b", "#000000"),
                             (95.0, "#aceebb", "#000000"), (80.0, "#ffd8a8", "#000000"),
                             (0.0, "#ff8182", "#000000"))  # fmt: skip


def completeness_colours(percent: float | None) -> tuple[str, str]:
    """The fill and the text colour of a completeness cell."""
    if percent is None:
        return NO_DATA, AXIS_TEXT
    for floor, fill, text in COMPLETENESS_STEPS:
        if percent >= floor:
            return fill, text
    return COMPLETENESS_STEPS[-1][1], COMPLETENESS_STEPS[-1][2]


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Mapping[tuple[int, int], Cell],
    *,
    title: str,
    chart_id: str,
    cell_w: int = 42,
    cell_h: int = 20,
    label_width: int = 56,
) -> Markup:
    """A grid of percentages (rows × columns), each cell coloured and numbered."""
    width = label_width + cell_w * max(1, len(columns)) + 4
    height = 28 + cell_h * max(1, len(rows)) + 4
    out = _open(title, width, height, chart_id, "heatmap")
    for j, column in enumerate(columns):
        out.append(f'<text class="tick" x="{label_width + cell_w * j + cell_w // 2}" y="18" text-anchor="middle" '
                   f'fill="{AXIS_TEXT}">{escape(column)}</text>')  # fmt: skip
    for i, name in enumerate(rows):
        y = 24 + cell_h * i
        out.append(f'<text class="label" x="{label_width - 6}" y="{y + cell_h - 6}" text-anchor="end" '
                   f'fill="{AXIS_TEXT}">{escape(name)}</text>')  # fmt: skip
        for j in range(len(columns)):
            cell = cells.get((i, j))
            value = cell.value if cell else None
            fill, ink = completeness_colours(value)
            x = label_width + cell_w * j
            tip = escape(cell.title if cell else f"{name} {columns[j]}: nothing expected")
            data = f' data-value="{value:.2f}"' if value is not None else ""
            out.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                       f'fill="{fill}"{data}><title>{tip}</title></rect>')  # fmt: skip
            shown = "–" if value is None else (f"{value:.0f}" if value >= 99.95 or value < 10 else f"{value:.1f}")
            out.append(f'<text class="cell-text" x="{x + (cell_w - 2) / 2:.1f}" y="{y + cell_h - 6}" '
                       f'text-anchor="middle" fill="{ink}">{escape(shown)}</text>')  # fmt: skip
    out.append("</svg>")
    return _markup(out)


def gauge(used: int, limit: int, *, title: str, chart_id: str, exhausted: bool = False, width: int = 260) -> Markup:
    """A quota gauge: the share of ``limit`` used, green below 80 %, orange below 100 %, red when spent."""
    height = 22
    out = _open(title, width, height, chart_id, "gauge")
    share = 1.0 if exhausted else (min(1.0, used / limit) if limit > 0 else 1.0)
    colour = "#cf222e" if exhausted or share >= 1 else "#bf8700" if share >= 0.8 else "#1a7f37"
    inner = width - 2
    out.append(f'<rect x="1" y="1" width="{inner}" height="{height - 2}" fill="{NO_DATA}" stroke="{GRID}"/>')
    out.append(f'<rect class="used" x="1" y="1" width="{_num(inner * share)}" height="{height - 2}" '
               f'fill="{colour}" data-used="{used}" data-limit="{limit}"/>')  # fmt: skip
    text = f"{used} / {limit}" + (" (exhausted)" if exhausted else "")
    out.append(f'<text x="{width // 2}" y="15" text-anchor="middle" fill="#000000">{escape(text)}</text>')
    out.append("</svg>")
    return _markup(out)
