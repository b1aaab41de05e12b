"""Engines and migrations (``pipeline.load.db``): URLs shown without passwords, the checks made before
connecting (driver, SQLite file), one-line error messages, the settings of every connection, and idempotent
migrations, on SQLite and, where it differs, PostgreSQL."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from pipeline.errors import ConfigError, LoadError
from pipeline.load import db
from pipeline.load.tables import metadata
from pipeline.redaction import redact
from tests.backends import PostgresServer, fetch, fetch_async, names_async, run_sync

PASSWORD = "s3cret-pw"
PG_URL = f"postgresql+asyncpg://collector:{PASSWORD}@db.example:5432/pipeline"
MISSING_DRIVER = (
    "database.url: PostgreSQL needs the asyncpg driver, which is not installed: pip install 'pipeline[postgres]'"
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def head() -> str | None:
    return ScriptDirectory.from_config(db.alembic_config("sqlite+aiosqlite:///unused.db")).get_current_head()


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


@pytest.fixture
def without_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncpg as if not installed: a ``None`` in ``sys.modules`` makes ``find_spec`` (and import) fail."""
    monkeypatch.setitem(sys.modules, "asyncpg", None)


def read_only(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``path`` read-only. For a user whom the kernel lets write there anyway (root, as in CI), the
    permission check the module makes is answered as the kernel answers any other user."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.access(path, os.W_OK):
        real = os.access

        def access(target: object, mode: int) -> bool:
            if mode & os.W_OK and Path(str(target)) == path:
                return False
            return real(target, mode)  # type: ignore[arg-type]

        monkeypatch.setattr(db.os, "access", access)


# --- URLs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite+aiosqlite:///data/pipeline.db", "sqlite"),
        ("sqlite+aiosqlite://", "sqlite"),
        (PG_URL, "postgresql"),
        ("postgresql://postgres@127.0.0.1/postgres", "postgresql"),
    ],
)
def test_backend_names_the_database_without_its_driver(url: str, name: str) -> None:
    assert db.backend(url) == name


def test_display_url_masks_the_password_and_only_the_password() -> None:
    assert db.display_url(PG_URL) == "postgresql+asyncpg://collector:***@db.example:5432/pipeline"
    encoded = "postgresql+asyncpg://u:p%40ss%2Fword@h/d"  # the password p@ss/word, as written in a URL
    assert db.display_url(encoded) == "postgresql+asyncpg://u:***@h/d"
    assert db.display_url("postgresql+asyncpg://postgres@127.0.0.1:5432/db") == (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/db"
    )
    assert db.display_url("sqlite+aiosqlite:///data/pipeline.db") == "sqlite+aiosqlite:///data/pipeline.db"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:///data/pipeline.db", Path("data/pipeline.db")),
        ("sqlite+aiosqlite:////var/lib/pipeline/p.db", Path("/var/lib/pipeline/p.db")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite://", None),
        (PG_URL, None),
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert db.sqlite_path(url) == path


# --- the driver ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("without_asyncpg")
def test_a_missing_postgresql_driver_is_a_one_line_config_error_before_any_connection() -> None:
    for check in (db.require_driver, db.prepare_database, db.create_engine, db.upgrade_sync):
        with pytest.raises(ConfigError) as caught:
            check(PG_URL)
        assert one_line(caught) == MISSING_DRIVER, check.__name__


@pytest.mark.usefixtures("without_asyncpg")
def test_sqlite_needs_no_optional_driver(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "p.db")
    db.require_driver(url)
    db.prepare_database(url)
    db.upgrade_sync(url)
    assert fetch(url, "SELECT version_num FROM alembic_version") == [(head(),)]


def test_require_driver_registers_the_password_with_the_redactor() -> None:
    line = f"connecting with {PASSWORD} and p@ss/word"
    assert redact(line) == line
    db.require_driver(PG_URL)
    db.require_driver("postgresql+asyncpg://u:p%40ss%2Fword@h/d")  # registered decoded: every spelling masked
    assert redact(line) == "connecting with *** and ***"
    assert redact("p%40ss%2Fword") == "***"


# --- the SQLite file -------------------------------------------------------------------------------------


def test_prepare_sqlite_file_creates_the_directory_but_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "pipeline.db"
    db.prepare_sqlite_file(sqlite_url(path))
    assert path.parent.is_dir() and not path.exists()
    db.prepare_sqlite_file(sqlite_url(path))  # again: nothing to do
    path.write_bytes(b"")
    db.prepare_sqlite_file(sqlite_url(path))  # an existing, writable file


def test_prepare_sqlite_file_resolves_a_relative_path_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db.prepare_database("sqlite+aiosqlite:///data/pipeline.db")
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_prepare_sqlite_file_leaves_other_databases_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://", PG_URL):
        db.prepare_sqlite_file(url)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_cannot_be_created_is_a_one_line_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        db.prepare_database(sqlite_url(tmp_path / "file" / "p.db"))
    assert one_line(caught) == f"database.url: cannot create directory {tmp_path / 'file'}: File exists"
    with pytest.raises(ConfigError) as caught:
        db.prepare_database(sqlite_url(tmp_path / "file" / "sub" / "p.db"))
    assert one_line(caught) == f"database.url: cannot create directory {tmp_path / 'file' / 'sub'}: Not a directory"


def test_a_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.db").mkdir()
    for check in (db.prepare_database, db.create_engine, db.upgrade_sync):
        with pytest.raises(ConfigError) as caught:
            check(sqlite_url(tmp_path / "p.db"))
        assert one_line(caught) == f"database.url: {tmp_path / 'p.db'} is not writable", check.__name__


def test_a_read_only_directory_is_refused_before_migrating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder, monkeypatch)
    try:
        with pytest.raises(ConfigError) as caught:
            db.upgrade_sync(sqlite_url(folder / "p.db"))
        assert one_line(caught) == f"database.url: {folder} is not writable"
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_read_only_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"")
    read_only(path, monkeypatch)
    with pytest.raises(ConfigError) as caught:
        db.prepare_database(sqlite_url(path))
    assert one_line(caught) == f"database.url: {path} is not writable"


def test_a_writable_file_in_a_read_only_directory_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite writes its -wal and -shm files beside the database, and a migration its lock file."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "p.db").write_bytes(b"")
    read_only(folder, monkeypatch)
    try:
        with pytest.raises(ConfigError) as caught:
            db.prepare_database(sqlite_url(folder / "p.db"))
        assert one_line(caught) == f"database.url: {folder} is not writable"
    finally:
        folder.chmod(0o755)


# --- error messages --------------------------------------------------------------------------------------


async def test_error_message_is_the_drivers_first_line_without_sqlalchemys_wrapping(tmp_path: Path) -> None:
    engine = db.create_engine(sqlite_url(tmp_path / "p.db"))
    try:
        async with engine.connect() as conn:
            with pytest.raises(OperationalError) as caught:
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    assert str(caught.value).startswith("(sqlite3.OperationalError) no such table") and "\n" in str(caught.value)
    assert db.error_message(caught.value) == "no such table: no_such_table"


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (Exception("(sqlalchemy.dialects.postgresql.asyncpg.Error) connection was closed\n[SQL: SELECT 1]"),
         "connection was closed"),
        (Exception("\n  first real line\nsecond line"), "first real line"),
        (TimeoutError(), "TimeoutError"),
        (ConnectionResetError("   \n"), "ConnectionResetError"),
    ],
)  # fmt: skip
def test_error_message_without_a_driver_error(exc: BaseException, message: str) -> None:
    assert db.error_message(exc) == message


def test_error_message_prefers_the_wrapped_driver_error_and_redacts_it() -> None:
    class Wrapped(Exception):
        orig = OSError(f'password authentication failed for user "collector" ({PASSWORD})')

    redact.add(PASSWORD)
    assert db.error_message(Wrapped("(outer) statement text")) == (
        'password authentication failed for user "collector" (***)'
    )


# --- engines ---------------------------------------------------------------------------------------------

SQLITE_SETTINGS = (
    "PRAGMA journal_mode", "PRAGMA synchronous", "PRAGMA busy_timeout", "PRAGMA foreign_keys", "PRAGMA cache_size",
)  # fmt: skip


async def test_every_sqlite_connection_gets_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "new" / "p.db")
    engine = db.create_engine(url)  # creates the directory too
    try:
        async with engine.connect() as first, engine.connect() as second:  # two pooled connections
            seen = [
                [(await conn.execute(text(sql))).scalar_one() for sql in SQLITE_SETTINGS] for conn in (first, second)
            ]
    finally:
        await engine.dispose()
    assert seen == [["wal", 1, db.DEFAULT_BUSY_TIMEOUT_MS, 1, -db.DEFAULT_CACHE_KIB]] * 2
    assert db.DEFAULT_BUSY_TIMEOUT_MS == 30_000


async def test_a_plain_sqlite_engine_has_none_of_those_settings(tmp_path: Path) -> None:
    """The control for the test above: these values come from create_engine, not from SQLite's defaults."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(sqlite_url(tmp_path / "plain.db"))
    try:
        async with engine.connect() as conn:
            seen = [(await conn.execute(text(sql))).scalar_one() for sql in SQLITE_SETTINGS]
    finally:
        await engine.dispose()
    assert seen[0] != "wal" and seen[2] != 30_000 and seen[3] == 0 and seen[4] != -db.DEFAULT_CACHE_KIB


@pytest.mark.backends("postgresql")
async def test_postgresql_connections_are_named_and_checked_before_use(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            name = (await conn.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        assert name == db.APPLICATION_NAME == "pipeline"
        # the server restarts under a long-running daemon: the pooled connection is dead…
        assert await fetch_async(db_url, "SELECT pg_terminate_backend(:pid)", {"pid": pid}) == [(True,)]
        async with engine.connect() as conn:  # …and the pre-ping replaces it instead of failing the next query
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await engine.dispose()


# --- migrations ------------------------------------------------------------------------------------------


async def test_migrate_twice_gives_the_same_tables_at_head(db_url: str) -> None:
    await db.migrate(db_url)
    first = await names_async(db_url)
    await db.migrate(db_url)
    assert await names_async(db_url) == first
    assert first[0] == set(metadata.tables) | {"alembic_version"}
    assert await fetch_async(db_url, "SELECT version_num FROM alembic_version") == [(head(),)]


def test_upgrade_sync_from_an_older_revision_and_again(db_url: str) -> None:
    db.upgrade_sync(db_url, "0001")
    assert fetch(db_url, "SELECT version_num FROM alembic_version") == [("0001",)]
    db.upgrade_sync(db_url)
    db.upgrade_sync(db_url)
    assert fetch(db_url, "SELECT version_num FROM alembic_version") == [(head(),)]
    tables, _views = run_sync(lambda: names_async(db_url))
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_sqlite_migrations_take_a_lock_file_beside_the_database(tmp_path: Path) -> None:
    db.upgrade_sync(sqlite_url(tmp_path / "p.db"))
    assert (tmp_path / "p.db.migrate.lock").is_file()


def test_a_file_that_is_not_a_database_fails_the_migration_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"this is not a SQLite database" * 200)
    with pytest.raises(LoadError) as caught:
        db.upgrade_sync(sqlite_url(path))
    assert one_line(caught) == "migration failed: DatabaseError: file is not a database"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_postgresql_server_fails_the_migration_without_the_password() -> None:
    pytest.importorskip("asyncpg")
    url = f"postgresql+asyncpg://collector:{PASSWORD}@127.0.0.1:{free_port()}/pipeline"
    with pytest.raises(LoadError) as caught:
        db.upgrade_sync(url)
    message = one_line(caught)
    assert message.startswith(f"migration failed: cannot connect to {db.display_url(url)}: ")
    assert PASSWORD not in message and "Connect call failed" in message


@pytest.mark.postgres
def test_a_missing_postgresql_database_fails_the_migration_in_one_line(postgres_server: PostgresServer) -> None:
    url = postgres_server.url_for("pipeline_no_such_database")
    with pytest.raises(LoadError) as caught:
        db.upgrade_sync(url)
    assert one_line(caught) == 'migration failed: DBAPIError: database "pipeline_no_such_database" does not exist'


@pytest.mark.backends("postgresql")
def test_a_password_with_percent_signs_reaches_alembic_intact(db_url: str) -> None:
    """Alembic's config interpolates ``%``: alembic_config escapes it (the test server trusts any password)."""
    url = make_url(db_url).set(password="100%-sure%40").render_as_string(hide_password=False)
    assert "%25" in url
    db.upgrade_sync(url)
    assert fetch(db_url, "SELECT version_num FROM alembic_version") == [(head(),)]
    assert redact("100%-sure%40") == "***"
