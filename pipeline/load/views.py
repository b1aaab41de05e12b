"""What the views created by migrations 0002 and 0005 mean (their SQL is frozen in the migration).

Columns a view passes through from a table keep that table's documented meaning.
"""

from __future__ import annotations

from typing import Final

POLLUTANTS: Final = ("pm10", "pm25", "o3", "no2", "co", "so2", "khai")
UNITS: Final = {"pm10": "µg/m³", "pm25": "µg/m³", "o3": "ppm", "no2": "ppm", "co": "ppm", "so2": "ppm", "khai": "index"}

VIEWS: Final[dict[str, tuple[str, str, dict[str, str]]]] = {
    # name: (description, the table whose columns it passes through, meaning of its own columns)
    "air_latest": (
        "The newest reading of every station, with its province and KST time.",
        "air_readings",
        {
            "sido_name": "province short name",
            "mang_name": "station network",
            "measured_at_kst": "KST end of the measured hour (the value AirKorea labels 24:00 shows as 00:00)",
        },
    ),
    "air_readings_kst": (
        "Every reading with its KST time beside the UTC one, and the KST day it belongs to.",
        "air_readings",
        {
            "measured_at_kst": "KST end of the measured hour",
            "kst_date": "the KST day of the value: the hours labelled 01:00 … 24:00 (midnight belongs to the day "
            "that ends)",
        },
    ),
    "air_daily": (
        "Per station and KST day: mean and max of each pollutant, and the valid hours behind each mean "
        "(a day of 3 valid hours must not look like a full day).",
        "air_readings",
        {
            "kst_date": "KST day (hours labelled 01:00 … 24:00, as AirKorea's official daily means)",
            "hours": "readings stored for the day (24 when complete)",
            **{
                f"{p}_{kind}": text
                for p in POLLUTANTS
                for kind, text in (
                    ("mean", f"mean {p} over its valid hours, {UNITS[p]}"),
                    ("max", f"highest hourly {p}, {UNITS[p]}"),
                    ("hours", f"hours with a valid {p} value"),
                )
            },
        },
    ),
    "air_completeness": (
        "The completeness ledger per station and KST day, counted: how many hours were expected, received, "
        "flagged, never published and missing (what `pipeline gaps` reports).",
        "air_coverage",
        {
            "sido_name": "province short name",
            "expected": "hours the collection should hold that day (24 for a full day)",
            "received": "hours stored with at least one measured value",
            "flagged": "hours stored with every measured value missing (the station reported, the instrument did not)",
            "not_published": "holes the API never filled (marked once past the late-publication window)",
            "missing": "expected hours neither received, flagged nor marked not published",
            "completeness": "percent of the published hours (expected − not published) received or flagged; "
            "NULL when none",
            "missing_mask": "bit h-1 set: the hour labelled h:00 is missing",
        },
    ),
    "movie_trend": (
        "Per movie and snapshot: popularity, vote average and vote count over time.",
        "movie_snapshots",
        {"title": "the movie's current title"},
    ),
    "now_playing_history": (
        "Per movie: first and last time it was seen now playing, and how many snapshots saw it.",
        "movies",
        {
            "first_seen_at": "captured_at of the first now-playing snapshot (UTC)",
            "last_seen_at": "captured_at of the latest now-playing snapshot (UTC)",
            "snapshots": "number of runs that saw it now playing",
        },
    ),
}
