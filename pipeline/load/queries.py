"""Read-only questions the CLI and the jobs ask of the database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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


async def fresh_details(engine: AsyncEngine, ids: Sequence[int], since: datetime) -> dict[int, int | None]:
    """Of ``ids``, the movies whose details were fetched at ``since`` or later, with their stored revenue."""
    if not ids:
        return {}
    query = select(movies.c.tmdb_id, movies.c.revenue).where(
        movies.c.tmdb_id.in_(list(ids)), movies.c.details_fetched_at >= since
    )
    async with engine.connect() as conn:
        return {row.tmdb_id: row.revenue for row in (await conn.execute(query)).all()}


async def station_count(engine: AsyncEngine, sidos: Sequence[str] | None = None) -> int:
    """How many stations the collection knows (of ``sidos``; ``None``: all)."""
    query = select(func.count()).select_from(air_stations)
    if sidos is not None:
        query = query.where(air_stations.c.sido_name.in_(list(sidos)))
    async with engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())
