"""The Korean grade bands of PM10 and PM2.5 (pipeline/web/grades.py): boundaries, words, colours."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from pipeline.web import grades

STATIC = Path(grades.__file__).parent / "static"


@pytest.mark.parametrize(
    ("value", "grade"),
    [(0, 1), (30, 1), (31, 2), (80, 2), (81, 3), (150, 3), (151, 4), (999, 4)],
)
def test_pm10_bands_at_their_boundaries(value: int, grade: int) -> None:
    band = grades.band("pm10", value)
    assert band is not None and band.grade == grade


@pytest.mark.parametrize(
    ("value", "grade"),
    [(0, 1), (15, 1), (16, 2), (35, 2), (36, 3), (75, 3), (76, 4), (500, 4)],
)
def test_pm25_bands_at_their_boundaries(value: int, grade: int) -> None:
    band = grades.band("pm25", value)
    assert band is not None and band.grade == grade


@pytest.mark.parametrize(
    ("pollutant", "value", "grade"),
    [("pm10", 30.49, 1), ("pm10", 30.5, 2), ("pm10", 80.5, 3), ("pm10", 150.5, 4),
     ("pm25", 15.4, 1), ("pm25", 15.5, 2), ("pm25", 35.5, 3), ("pm25", 75.49, 3), ("pm25", 75.5, 4)],
)  # fmt: skip
def test_a_mean_is_graded_in_whole_micrograms_halves_up(pollutant: grades.Pollutant, value: float, grade: int) -> None:
    band = grades.band(pollutant, value)
    assert band is not None and band.grade == grade


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), -1])
def test_no_value_has_no_band(value: float | None) -> None:
    assert grades.band("pm10", value) is None
    assert grades.band("pm25", value) is None


def test_the_words_ranges_and_classes_of_the_bands() -> None:
    assert [(b.grade, b.word, b.range_text, b.css) for b in grades.bands("pm10")] == [
        (1, "좋음", "0–30", "grade-1"), (2, "보통", "31–80", "grade-2"),
        (3, "나쁨", "81–150", "grade-3"), (4, "매우나쁨", "≥ 151", "grade-4"),
    ]  # fmt: skip
    assert [b.range_text for b in grades.bands("pm25")] == ["0–15", "16–35", "36–75", "≥ 76"]
    # the bands tile the axis: each starts one above the last one's end
    for pollutant in ("pm10", "pm25"):
        found = grades.bands(pollutant)
        assert found[0].low == 0 and found[-1].high is None
        assert all(a.high is not None and b.low == a.high + 1 for a, b in itertools.pairwise(found))


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_colours_are_accessible_and_in_airkoreas_hues() -> None:
    blue, green, orange, red = (tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in grades.COLOURS)
    assert blue[2] > max(blue[:2]) and green[1] > max(green[0], green[2])
    assert orange[0] > orange[1] > orange[2] and red[0] > 2 * max(red[1:])
    for colour in grades.COLOURS:
        assert _contrast(colour, "#ffffff") >= 3.0, colour  # a mark on the white page (WCAG 1.4.11)
        assert _contrast(colour, grades.TEXT_COLOUR) >= 4.5, colour  # the word printed on it (WCAG 1.4.3)


def test_the_stylesheet_uses_the_same_colours() -> None:
    css = (STATIC / "dashboard.css").read_text(encoding="utf-8")
    found = dict(re.findall(r"\.grade-(\d) \{ background: (#[0-9A-Fa-f]{6}); \}", css))
    assert found == {str(i): colour for i, colour in enumerate(grades.COLOURS, 1)}
    assert "color: #000000" in css.split(".grade {", 1)[1].split("}", 1)[0]
