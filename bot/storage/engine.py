"""Connecting to the database: SQLite's settings, the Alembic migrations, and read-only access.

Only the bot migrates its database (``Store`` runs ``upgrade`` at start); a reader such as the
export of corrections opens it with ``read_only_engine``, which changes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


class UnreadableDatabase(Exception):
    """A database that cannot be read as the bot's: not a database, or not fully migrated."""


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL, foreign keys and explicit BEGINs."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    Path(_sqlite_file(url)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_file(url: URL) -> str:
    if url.database in (None, "", ":memory:"):
        # Each pooled connection would see its own empty in-memory database.
        raise ValueError("SQLite storage needs a file, e.g. sqlite:///var/whatbreed.db")
    return url.database


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so _sqlite_on_begin decides how BEGIN is sent.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # The bot thanks people for a correction only after its commit: FULL makes that commit
    # survive a power cut too (NORMAL, in WAL mode, may lose the last commits there; a killed
    # process loses nothing either way). It costs an fsync a commit, a few a photo.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
    # another thread wrote in between; BEGIN IMMEDIATE waits for the write lock instead.
    writes = connection.get_execution_options().get("whatbreed_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def alembic_config(database_url: str) -> Config:
    """An Alembic configuration for the packaged migrations; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats % as interpolation; passwords in URLs may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, database_url: str) -> None:
    """Bring the database to the newest migration; a no-op when it is already there."""
    config = alembic_config(database_url)
    # A write transaction from the start: two processes starting at once take turns.
    with engine.execution_options(whatbreed_write=True).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def read_only_engine(database_url: str) -> Engine:
    """An engine that reads the bot's database as it is: never created, never migrated.

    A SQLite file is opened read-only (FileNotFoundError when it is absent); on any backend
    the schema must be at the newest migration, else UnreadableDatabase says what to run.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as error:
        raise UnreadableDatabase(f"{database_url!r} is not a database URL") from error
    if url.get_backend_name() == "sqlite":
        path = Path(_sqlite_file(url)).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"no database {url.database}")
        url = url.set(database=path.as_uri(), query={"mode": "ro", "uri": "true"})
    engine = create_engine(url)
    try:
        _check_migrated(engine, database_url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_migrated(engine: Engine, database_url: str) -> None:
    shown = make_url(database_url).render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        raise UnreadableDatabase(f"{shown}: cannot read the database: "
                                 f"{str(error).splitlines()[0]}") from error
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    if revision != head:
        raise UnreadableDatabase(
            f"{shown}: the database is at migration {revision or 'none'}, not {head}: start the "
            "bot once, or run alembic -c bot/migrations/alembic.ini -x url=... upgrade head")
