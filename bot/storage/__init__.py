"""Storage: predictions, corrections and events in SQL, photos as content-addressed files.

SQLite (WAL mode) by default, any SQLAlchemy URL (PostgreSQL) in production. One job a module:

- ``schema``: the tables (SQLAlchemy models), created only by the migrations in ``bot/migrations``;
- ``engine``: connecting (SQLite's settings), migrating, and read-only access;
- ``photos``: photo files named by their sha256;
- ``store``: ``Store``, every query the bot makes, from worker threads;
- ``export``: an event's CSV, the corrected photos as a training manifest, and every vote.
"""

from bot.storage.engine import MIGRATIONS_DIR, UnreadableDatabase, alembic_config
from bot.storage.export import CSV_FIELDS, VOTE_FIELDS, export_corrections, export_votes
from bot.storage.schema import Base
from bot.storage.store import EventInfo, PredictionInfo, Store

__all__ = [
    "CSV_FIELDS",
    "MIGRATIONS_DIR",
    "VOTE_FIELDS",
    "Base",
    "EventInfo",
    "PredictionInfo",
    "Store",
    "UnreadableDatabase",
    "alembic_config",
    "export_corrections",
    "export_votes",
]
