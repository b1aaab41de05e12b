from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pipeline.load.db import create_engine, migrate
from pipeline.load.writer import Writer


@pytest.fixture
async def writer(db_url: str) -> AsyncIterator[Writer]:
    """A Writer on a freshly migrated database of each backend (SQLite file, PostgreSQL database)."""
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        yield Writer(engine, chunk_size=100)
    finally:
        await engine.dispose()
