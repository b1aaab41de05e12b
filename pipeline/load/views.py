"""What the views created by migrations 0002, 0005 and 0007 mean (their SQL is frozen in the migration).

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
    "air_revised_values": (
        "The reading revisions, one row per revision and pollutant whose value, grade or flag changed: the "
        "questions per pollutant (how often PM2.5 is revised, in which province, from what to what).",
        "air_reading_revisions",
        {
            "revision_id": "air_reading_revisions.id",
            "pollutant": "so2, co, o3, no2, pm10, pm25 or khai",
            "old_value": "the hourly value before the change; NULL when it did not change (see changed) or was missing",
            "new_value": "the hourly value after the change; NULL when it did not change or is missing",
            "old_value_24h": "pm10 and pm25: the 24-hour value before the change (NULL when unchanged)",
            "new_value_24h": "pm10 and pm25: the 24-hour value after the change (NULL when unchanged)",
            "old_grade": "the grade (pm10, pm25: the 24-hour grade) before the change; NULL when unchanged",
            "new_grade": "the grade after the change; NULL when unchanged",
            "old_grade_1h": "pm10 and pm25: the 1-hour grade before the change (NULL when unchanged)",
            "new_grade_1h": "pm10 and pm25: the 1-hour grade after the change (NULL when unchanged)",
            "old_flag": "the status flag before the change (통신장애, …); NULL when unchanged or normal",
            "new_flag": "the status flag after the change; NULL when unchanged or normal",
        },
    ),
    "air_revised_readings": (
        "Per reading that was ever revised: how many times, when it was first written and last revised, and the "
        "delay between the two.",
        "air_reading_revisions",
        {
            "revisions": "changes recorded for the reading",
            "first_written_at": "when the reading was first written (UTC): its first publication, as collected",
            "last_revised_at": "when its last change was written (UTC)",
            "delay_hours": "hours from the first write to the last revision",
        },
    ),
    "now_playing_intervals": (
        "When each movie entered and left the now-playing list, as intervals of consecutive list runs (a movie "
        "that leaves and comes back has two).",
        "movies",
        {
            "interval_no": "1 for the movie's first interval, 2 for the next, …",
            "entered_at": "captured_at of the first list run of the interval (UTC)",
            "last_seen_at": "captured_at of its last list run (UTC)",
            "left_at": "captured_at of the next list run, the first without the movie (UTC); NULL: still listed",
            "snapshots": "list runs in the interval",
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
