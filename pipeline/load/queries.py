"""Read-only questions the CLI asks of the database."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pipeline.load.tables import air_readings, air_stations, movie_snapshots, movies, rejects, runs

COUNTED_TABLES = (runs, movies, movie_snapshots, air_stations, air_readings, rejects)


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows per data table."""
    counts: dict[str, int] = {}
    async with engine.connect() as conn:
        for table in COUNTED_TABLES:
            counts[table.name] = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    return counts
