"""The Korean grade bands of PM10 and PM2.5, and the colour of each band. Pure: no I/O, no web.

The bands (µg/m³, inclusive, whole numbers as AirKorea publishes them):

============  =======  ========  ==========  ============
pollutant     좋음 (1)  보통 (2)   나쁨 (3)     매우나쁨 (4)
============  =======  ========  ==========  ============
PM10          0–30     31–80     81–150      ≥ 151
PM2.5         0–15     16–35     36–75       ≥ 76
============  =======  ========  ==========  ============

Sources: ``shared/reference/airkorea.md`` §10 (PM10: cut-offs coded in a public alert script; PM2.5:
eenews.co.kr, 2022-11), the environmental standard as tightened on 2018-03-27 (PM2.5 나쁨 from 36 and
매우나쁨 from 76; before, 51 and 101). The API's own ``pm10_grade``/``pm25_grade`` are 24-hour grades and
``*_grade_1h`` the 1-hour ones; the dashboard grades the value it shows, by these bands, so the colour and
the number beside it always agree.

Colours: AirKorea and the Seoul air-quality site draw the four grades blue, green, yellow/orange and red
(Seoul's cleanair.seoul.go.kr: 좋음 파란색, 보통 초록색, 나쁨 노란색, 매우 나쁨 빨간색, greenpostkorea.co.kr
46560; the CAI scale on airkorea.or.kr: 좋음 파랑, 보통 초록, 나쁨 주황, 매우 나쁨 빨강, hani.co.kr 155768).
The hexes are ours, picked in those hues so that each one is both a graphic on white (≥ 3:1, WCAG 1.4.11)
and a background under black text (≥ 4.5:1, WCAG 1.4.3); ``tests/web/test_grades.py`` checks both. The word
is always printed beside the colour, which is never the only carrier of the grade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Final, Literal

Pollutant = Literal["pm10", "pm25"]


@dataclass(frozen=True, slots=True)
class Band:
    grade: int  # 1 … 4, as the API numbers them
    word: str  # the Korean word
    english: str
    colour: str  # hex, for SVG fills and strokes
    low: int  # the band's first whole µg/m³
    high: int | None  # its last, None for the open top band

    @property
    def css(self) -> str:
        """The CSS class that colours it (``static/dashboard.css``)."""
        return f"grade-{self.grade}"

    @property
    def range_text(self) -> str:
        return f"≥ {self.low}" if self.high is None else f"{self.low}–{self.high}"


#: the band's words and colours, grade 1 … 4
WORDS: Final = (("좋음", "good"), ("보통", "moderate"), ("나쁨", "bad"), ("매우나쁨", "very bad"))
COLOURS: Final = ("#2F7FDB", "#1E9E3E", "#D07C00", "#E5484D")  # blue, green, yellow-orange, red
TEXT_COLOUR: Final = "#000000"  # text on a band's colour
#: the last whole µg/m³ of grades 1, 2 and 3 (grade 4 is everything above)
UPPER: Final[dict[Pollutant, tuple[int, int, int]]] = {"pm10": (30, 80, 150), "pm25": (15, 35, 75)}
NAMES: Final[dict[Pollutant, str]] = {"pm10": "PM10", "pm25": "PM2.5"}


def bands(pollutant: Pollutant) -> tuple[Band, ...]:
    """The four bands of ``pollutant``, grade 1 first."""
    highs = UPPER[pollutant]
    lows = (0, highs[0] + 1, highs[1] + 1, highs[2] + 1)
    tops: tuple[int | None, ...] = (*highs, None)
    return tuple(
        Band(grade, word, english, colour, low, high)
        for grade, ((word, english), colour, low, high) in enumerate(zip(WORDS, COLOURS, lows, tops, strict=True), 1)
    )


_BANDS: Final = {pollutant: bands(pollutant) for pollutant in UPPER}


def whole(value: float) -> int:
    """A concentration as the bands count it: whole µg/m³, halves rounded up (a daily mean of 30.5 is 31)."""
    return int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def band(pollutant: Pollutant, value: float | None) -> Band | None:
    """The band of ``value`` µg/m³ of ``pollutant``; ``None`` when there is no value (or a negative one)."""
    if value is None or not math.isfinite(value):
        return None
    amount = whole(value)
    if amount < 0:
        return None
    found = _BANDS[pollutant]
    for entry in found[:3]:
        if entry.high is not None and amount <= entry.high:
            return entry
    return found[3]
