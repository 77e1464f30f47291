"""Alembic environment for WhatBreed.

Store() runs it programmatically and hands over its own connection. From the command line:

    alembic -c bot/migrations/alembic.ini -x url=sqlite:///var/whatbreed.db upgrade head

(or set DATABASE_URL instead of ``-x url=``). ``Base.metadata`` is the target, so
``alembic ... revision --autogenerate`` compares the ORM models with the database.
"""

from __future__ import annotations

import os
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import TypeDecorator
from sqlalchemy.engine import Connection

from bot.storage.engine import make_engine
from bot.storage.schema import Base

config = context.config
target_metadata = Base.metadata
if config.config_file_name is not None and config.attributes.get("connection") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """-x url=... first, then sqlalchemy.url (set by Store), then DATABASE_URL."""
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
    )
    if not url:
        raise RuntimeError("no database: pass -x url=... or set DATABASE_URL")
    return url


def render_item(kind: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Render the app's TypeDecorators (UTCDateTime) as their plain SQLAlchemy type.

    Migrations must not import bot.storage types: they outlive the models they were made from.
    """
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_with(connection: Connection) -> None:
    # render_as_batch: SQLite can only alter tables by copying them, which batch mode does.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    # Same engine setup as the bot (WAL, foreign keys) when run from the command line.
    engine = make_engine(database_url())
    try:
        with engine.connect() as connection:
            run_with(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
