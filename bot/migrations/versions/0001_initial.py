"""Initial schema: events, event members, predictions, corrections.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _created_at(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("host_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("code", name=op.f("uq_events_code")),
    )
    op.create_index(op.f("ix_events_host_hash"), "events", ["host_hash"])

    op.create_table(
        "event_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        _created_at("joined_at"),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_members_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_members")),
        sa.UniqueConstraint(
            "event_id", "user_hash", name=op.f("uq_event_members_event_id_user_hash")
        ),
    )
    op.create_index(
        op.f("ix_event_members_user_hash_joined_at"), "event_members", ["user_hash", "joined_at"]
    )

    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("chat_hash", sa.String(length=64), nullable=False),
        sa.Column("chat_type", sa.String(length=16), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("photo_message_id", sa.BigInteger(), nullable=False),
        sa.Column("reply_message_id", sa.BigInteger(), nullable=True),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("is_dog", sa.Boolean(), nullable=False),
        sa.Column("dog_probability", sa.Double(), nullable=False),
        sa.Column("mixed", sa.Boolean(), nullable=False),
        sa.Column("top_k", sa.JSON(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_predictions_event_id_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
    )
    for columns in (
        ["chat_hash", "photo_message_id"],
        ["chat_hash", "reply_message_id"],
        ["event_id"],
        ["photo_sha256"],
        ["user_hash"],
    ):
        op.create_index(op.f(f"ix_predictions_{'_'.join(columns)}"), "predictions", columns)

    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        _created_at(),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("user_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_corrections_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
    )
    for column in ("kind", "prediction_id", "user_hash"):
        op.create_index(op.f(f"ix_corrections_{column}"), "corrections", [column])


def downgrade() -> None:
    # Dropping a table drops its indexes too; children go before their parents.
    for table in ("corrections", "predictions", "event_members", "events"):
        op.drop_table(table)
