"""Alembic migrations of the storage schema; bot.storage runs them at start."""
