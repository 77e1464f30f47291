"""Several dogs in one photo: predictions keep each numbered dog's box and answer, and a
correction says which dog it is about. Existing rows answered the whole photo: NULL in both.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("predictions", sa.Column("dogs", sa.JSON(), nullable=True))
    op.add_column("corrections", sa.Column("dog", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Without the column a correction of dog ② would read as the whole photo's breed (and be
    # exported as such): those go with it.
    op.execute("DELETE FROM corrections WHERE dog IS NOT NULL")
    # In place (SQLite 3.35+ drops a plain column), not batch mode's copy of the table: with
    # SQLite's foreign keys on, dropping the old predictions would delete every correction.
    op.drop_column("corrections", "dog")
    op.drop_column("predictions", "dogs")
