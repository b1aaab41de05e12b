"""The SVG charts (pipeline/web/charts.py), pure: gaps are breaks, flags are marked, text is escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.web import charts

T0 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOSTILE = "</script><img src=x onerror=alert(1)>\"'&"


def hourly(values: list[float | None], flags: dict[int, str] | None = None) -> list[charts.Point]:
    flags = flags or {}
    return [charts.Point(T0 + i * HOUR, v, f"{i:02d}:00", flags.get(i), key=f"h{i}") for i, v in enumerate(values)]


def parse(svg: str) -> ET.Element:
    """Every chart is well-formed XML: a parse also proves nothing unescaped broke it."""
    return ET.fromstring(svg)


def subpaths(svg: str, series: str) -> list[list[tuple[float, float]]]:
    """The polyline pieces of one series' path: each ``M`` starts a piece."""
    path = parse(svg).find(f".//g[@data-series='{series}']/path[@class='line']")
    assert path is not None
    pieces = []
    for piece in re.findall(r"M([^M]*)", path.get("d", "")):
        pieces.append([tuple(map(float, xy.split(","))) for xy in re.findall(r"-?[\d.]+,-?[\d.]+", piece)])
    return pieces


def line(values: list[float | None], **kwargs: object) -> str:
    flags = kwargs.pop("flags", None)
    series = charts.Series("PM10", "pm10", hourly(values, flags), "#24292f", "µg/m³")  # type: ignore[arg-type]
    return str(charts.line_chart([series], title="t", chart_id="c", **kwargs))  # type: ignore[arg-type]


def baseline_y() -> float:
    """The y of the value 0 (the plot's bottom)."""
    return float(charts.HEIGHT - charts.PAD_BOTTOM - charts.STRIP)


def test_a_missing_hour_breaks_the_line_and_is_never_drawn_as_zero() -> None:
    svg = line([10, 20, None, 40, 50])
    pieces = subpaths(svg, "pm10")
    assert [len(p) for p in pieces] == [2, 2]
    ys = [y for piece in pieces for _x, y in piece]
    assert baseline_y() not in ys  # nothing fell to zero
    # the missing hour is a grey tick below the plot, with its own tooltip, and no point
    root = parse(svg)
    missing = root.findall(".//line[@class='missing']")
    assert [m.get("data-key") for m in missing] == ["h2"]
    assert float(missing[0].get("y1", 0)) > baseline_y()
    assert [p.get("data-key") for p in root.findall(".//circle[@class='point']")] == ["h0", "h1", "h3", "h4"]
    assert "missing" in (missing[0].findtext("title") or "")


def test_a_zero_value_is_drawn_at_zero() -> None:
    pieces = subpaths(line([0, 10, 0]), "pm10")
    assert len(pieces) == 1 and [y for _x, y in pieces[0]][::2] == [baseline_y(), baseline_y()]


def test_a_jump_wider_than_the_step_breaks_the_line_even_without_a_listed_gap() -> None:
    points = [charts.Point(T0 + h * HOUR, 10.0, f"{h}", key=str(h)) for h in (0, 1, 2, 5, 6)]
    series = charts.Series("PM10", "pm10", points, "#000000")
    stepped = str(charts.line_chart([series], title="t", chart_id="c", step=HOUR))
    assert [len(p) for p in subpaths(stepped, "pm10")] == [3, 2]
    free = str(charts.line_chart([series], title="t", chart_id="c"))  # movies: irregular times, no step
    assert [len(p) for p in subpaths(free, "pm10")] == [5]


def test_a_value_between_two_gaps_is_a_dot() -> None:
    svg = line([None, 30, None, 40, 41])
    assert [len(p) for p in subpaths(svg, "pm10")] == [1, 2]
    assert len(parse(svg).findall(".//circle[@class='lone']")) == 1


def test_flagged_hours_are_marked_on_the_line_or_below_it() -> None:
    # hour 1: a value with a flag (unreliable); hour 3: the flag alone (통신장애, no value)
    svg = line([10, 20, 30, None, 50], flags={1: "점검및교정", 3: "통신장애"})
    root = parse(svg)
    flags = root.findall(".//path[@class='flag']")
    assert sorted((f.get("data-key"), f.get("data-flag")) for f in flags) == [("h1", "점검및교정"), ("h3", "통신장애")]
    marks = {f.get("data-key"): f for f in flags}
    first_y = float(re.findall(r"[\d.]+", marks["h3"].get("d", ""))[1]) + 3.5
    assert first_y > baseline_y()  # the flag without a value sits in the strip, not on the value axis
    assert "통신장애" in (marks["h3"].findtext("title") or "")
    assert "20 µg/m³ (flag: 점검및교정)" in (marks["h1"].findtext("title") or "")
    # the flagged-without-value hour is still a gap; the flagged value is part of the line
    assert [len(p) for p in subpaths(svg, "pm10")] == [3, 1]
    assert not root.findall(".//line[@class='missing']")  # a flagged hour is not "missing"


def test_an_inverted_chart_puts_rank_one_on_top() -> None:
    points = [charts.Point(T0 + i * HOUR, float(r), str(i), key=str(i)) for i, r in enumerate([1, 5, 10])]
    svg = str(charts.line_chart([charts.Series("rank", "rank", points, "#000000")], title="t", chart_id="c",
                                invert=True))  # fmt: skip
    ys = [y for piece in subpaths(svg, "rank") for _x, y in piece]
    assert ys == sorted(ys) and ys[0] == charts.PAD_TOP


def test_every_text_is_escaped_in_text_title_and_attributes() -> None:
    points = [charts.Point(T0, 5.0, HOSTILE, HOSTILE, key=HOSTILE), charts.Point(T0 + HOUR, None, HOSTILE)]
    made = [
        charts.line_chart([charts.Series(HOSTILE, HOSTILE, points, "#000000", HOSTILE)], title=HOSTILE,
                          chart_id=HOSTILE, bands=[charts.Band(0, 30, "#2F7FDB", HOSTILE)]),
        charts.bar_chart([charts.Bar(HOSTILE, 3.0, HOSTILE, "#000000", key=HOSTILE),
                          charts.Bar(HOSTILE, None, HOSTILE, "#000000")], title=HOSTILE, chart_id=HOSTILE,
                         unit=HOSTILE),
        charts.hbar_chart([charts.Bar(HOSTILE, 3.0, HOSTILE, "#000000", key=HOSTILE),
                           charts.Bar(HOSTILE, None, HOSTILE, "#000000")], title=HOSTILE, chart_id=HOSTILE,
                          unit=HOSTILE),
        charts.heatmap([HOSTILE], [HOSTILE], {(0, 0): charts.Cell(50.0, HOSTILE)}, title=HOSTILE, chart_id=HOSTILE),
        charts.gauge(3, 10, title=HOSTILE, chart_id=HOSTILE),
    ]  # fmt: skip
    for svg in map(str, made):
        assert "<script" not in svg and "<img" not in svg and 'onerror=alert(1)>"' not in svg
        root = parse(svg)  # well-formed: the quotes did not break an attribute either
        assert all(e.tag not in ("script", "img", "style", "a", "foreignObject") for e in root.iter())
        texts = [e.text for e in root.iter() if e.tag in ("title", "text") and e.text]
        assert any(HOSTILE[:20] in t for t in texts)  # shown, as text
        assert root.get("aria-label") == HOSTILE and root.get("data-chart") == HOSTILE
        for element in root.iter():
            assert not any(name == "style" or name.startswith("on") for name in element.attrib)
        assert "http" not in svg  # no namespace URL, no link: inline SVG in HTML needs neither


def test_hbar_labels_are_cut_and_bars_are_proportional() -> None:
    bars = [charts.Bar("가" * 40, 50.0, "t", "#000000", key="a"), charts.Bar("b", 25.0, "t", "#000000", key="b")]
    root = parse(str(charts.hbar_chart(bars, title="t", chart_id="c")))
    assert [t.text for t in root.findall(".//text[@class='label']")] == ["가" * 27 + "…", "b"]
    widths = [float(r.get("width", 0)) for r in root.findall(".//rect[@class='bar']")]
    assert widths[0] == pytest.approx(2 * widths[1], rel=0.01)


def test_bars_without_a_value_and_partial_days() -> None:
    bars = [charts.Bar("a", 40.0, "t", "#1E9E3E", key="a"), charts.Bar("b", None, "none", "#000000", key="b"),
            charts.Bar("c", 20.0, "t", "#1E9E3E", key="c", partial=True)]  # fmt: skip
    root = parse(str(charts.bar_chart(bars, title="t", chart_id="c")))
    assert [r.get("data-key") for r in root.findall(".//rect[@class='bar no-value']")] == ["b"]
    partial = root.findall(".//rect[@class='bar partial']")
    assert [r.get("data-key") for r in partial] == ["c"] and partial[0].get("fill-opacity") == "0.45"
    full, half = (float(r.get("height", 0)) for r in root.findall(".//rect[@data-y]"))
    assert full == pytest.approx(2 * half)


def test_heatmap_cells_are_coloured_and_numbered() -> None:
    cells = {(0, 0): charts.Cell(100.0, "a"), (0, 1): charts.Cell(97.5, "b"), (1, 0): charts.Cell(50.0, "c")}
    root = parse(str(charts.heatmap(["서울", "부산"], ["11-27", "11-28"], cells, title="t", chart_id="c")))
    rects = root.findall(".//rect[@class='cell']")
    assert [(r.get("fill"), r.get("data-value")) for r in rects] == [
        ("#1a7f37", "100.00"), ("#aceebb", "97.50"), ("#ff8182", "50.00"), (charts.NO_DATA, None)
    ]  # fmt: skip
    assert [t.text for t in root.findall(".//text[@class='cell-text']")] == ["100", "97.5", "50.0", "–"]
    assert charts.completeness_colours(99.0)[0] == "#4ac26b" and charts.completeness_colours(None)[0] == charts.NO_DATA


@pytest.mark.parametrize(
    ("used", "limit", "exhausted", "colour", "share"),
    [(100, 500, False, "#1a7f37", 0.2), (450, 500, False, "#bf8700", 0.9), (500, 500, False, "#cf222e", 1.0),
     (10, 500, True, "#cf222e", 1.0), (900, 500, False, "#cf222e", 1.0)],
)  # fmt: skip
def test_gauge(used: int, limit: int, exhausted: bool, colour: str, share: float) -> None:
    root = parse(str(charts.gauge(used, limit, exhausted=exhausted, title="q", chart_id="g")))
    bar = root.find(".//rect[@class='used']")
    assert bar is not None and bar.get("fill") == colour
    assert float(bar.get("width", 0)) == pytest.approx(share * 258, abs=0.1)
    assert (bar.get("data-used"), bar.get("data-limit")) == (str(used), str(limit))


def test_an_empty_chart_says_so() -> None:
    assert "no data" in str(charts.line_chart([], title="t", chart_id="c"))
    assert "no data" in str(charts.bar_chart([], title="t", chart_id="c"))


@pytest.mark.parametrize(("value", "top"), [(0.3, 0.5), (1, 1), (7, 10), (24, 25), (151, 200), (0, 1)])
def test_nice_ceiling(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == top


def test_rank_ticks_are_whole_numbers() -> None:
    for ranks in ([1, 1], [1, 3], [2, 17, 40]):
        points = [charts.Point(T0 + i * HOUR, float(r), str(i), key=str(i)) for i, r in enumerate(ranks)]
        svg = str(charts.line_chart([charts.Series("rank", "rank", points, "#000000")], title="t", chart_id="c",
                                    invert=True))  # fmt: skip
        ticks = [t.text for t in parse(svg).findall(".//text[@class='tick']") if t.get("text-anchor") == "end"]
        assert ticks and all(t is not None and t.isdigit() for t in ticks), ticks
        assert ticks[0] == "1"


def test_the_legend_names_only_the_marks_a_chart_holds() -> None:
    def legend(svg: str) -> list[str]:
        group = parse(svg).find(".//g[@class='legend']")
        assert group is not None
        return [t.text or "" for t in group.findall("text")]

    assert legend(line([1, 2, 3])) == ["PM10"]
    assert legend(line([1, None, 3])) == ["PM10", "missing"]
    assert legend(line([1, None, 3], flags={0: "통신장애"})) == ["PM10", "missing", "flagged"]
    points = [charts.Point(T0, 1.0, "a"), charts.Point(T0 + HOUR, None, "b", key="b")]
    svg = str(charts.line_chart([charts.Series("rank", "rank", points, "#000000")], title="t", chart_id="c",
                                missing_word="not listed"))  # fmt: skip
    assert legend(svg) == ["rank", "not listed"]
    assert parse(svg).find(".//line[@class='missing']/title").text == "rank, b: not listed"  # type: ignore[union-attr]
