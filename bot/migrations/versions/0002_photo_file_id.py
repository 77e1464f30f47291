"""Predictions remember Telegram's file id, so a photo that was not kept can be fetched again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("photo_file_id", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("photo_file_id")
