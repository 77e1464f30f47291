"""The tables, as SQLAlchemy 2 models; the Alembic migrations create them, never ``create_all``.

Raw Telegram ids never appear: users and chats are stored as keyed hashes (see ``Store``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from model.answers import BreedGuess

EVENT_NAME_MAX = 64


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zones and SQLAlchemy would silently drop tzinfo, so values are
    converted to UTC before they are written and read back as aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    # Stable constraint names let later migrations drop or alter them on PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), list[Any]: JSON}


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(EVENT_NAME_MAX))
    host_hash: Mapped[str] = mapped_column(String(64), index=True)


class EventMember(Base):
    __tablename__ = "event_members"
    __table_args__ = (
        UniqueConstraint("event_id", "user_hash"),
        # current_event: the latest membership of one user.
        Index(None, "user_hash", "joined_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    user_hash: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        # prediction_for_message matches either the user's photo or the bot's reply.
        Index(None, "chat_hash", "photo_message_id"),
        Index(None, "chat_hash", "reply_message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    chat_hash: Mapped[str] = mapped_column(String(64))
    chat_type: Mapped[str] = mapped_column(String(16))
    user_hash: Mapped[str] = mapped_column(String(64), index=True)
    photo_message_id: Mapped[int] = mapped_column(BigInteger)
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger)
    photo_sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Telegram's id of the photo: a photo not kept (not a dog) is fetched again if corrected.
    photo_file_id: Mapped[str | None] = mapped_column(String(256))
    model_version: Mapped[str] = mapped_column(String(64))
    is_dog: Mapped[bool]
    dog_probability: Mapped[float]
    mixed: Mapped[bool]
    # The answer's predictions as JSON: [{"label", "name", "probability"}, …], best first.
    top_k: Mapped[list[Any]]
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), index=True
    )
    # The dogs the reply numbered (several dogs in one photo), ① first, as ``Dog.to_json``:
    # [{"box": [left, top, right, bottom], "share", "mixed", "predictions"}, …], the box in
    # fractions of the upright photo. NULL when the reply answered the whole photo.
    dogs: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))

    @property
    def guesses(self) -> tuple[BreedGuess, ...]:
        """``top_k`` read back as the model's types."""
        return _guesses(self.top_k)

    @property
    def dogs_guesses(self) -> tuple[tuple[BreedGuess, ...], ...]:
        """Each numbered dog's answer, ① first, read back as the model's types."""
        return tuple(_guesses(dog["predictions"]) for dog in self.dogs or [])

    def guesses_of(self, dog: int | None) -> tuple[BreedGuess, ...]:
        """The answer for numbered dog ``dog`` (1, 2, …), or for the photo when None."""
        return self.guesses if dog is None else _guesses(self.dogs[dog - 1]["predictions"])


def _guesses(stored: list[Any]) -> tuple[BreedGuess, ...]:
    return tuple(
        BreedGuess(str(g["label"]), str(g["name"]), float(g["probability"])) for g in stored
    )


class Correction(Base):
    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), index=True
    )
    user_hash: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    # Which of the prediction's numbered dogs (1, 2, …) it corrects, whose box is stored with
    # the prediction; NULL: the whole photo.
    dog: Mapped[int | None]
