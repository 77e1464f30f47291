"""Storage: predictions, corrections and events in SQL, photos as content-addressed files.

SQLite (WAL mode) by default, any SQLAlchemy URL (PostgreSQL) in production. The schema is
created only by the Alembic migrations in ``bot/migrations``, which ``Store`` runs at start.
Raw Telegram user and chat ids are never stored: they appear as an HMAC-SHA256 of the id
(a private chat's id is its user's id, so chats are hashed the same way).
Every ``Store`` method opens its own session, so the bot may call them from worker threads.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import re
import secrets
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from model.data.dataset import sha256_hex

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

CHAT_TYPES = frozenset({"private", "group", "supergroup"})
CORRECTION_KINDS = frozenset({"confirmed", "corrected", "new_breed"})
EVENT_NAME_MAX = 64
# Telegram's /start payload allows [A-Za-z0-9_-], at most 64 characters.
EVENT_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# A suffix is part of a file name, so it must never carry a path separator or "..".
_SUFFIX_RE = re.compile(r"\.[A-Za-z0-9]{1,8}")
_TMP_PREFIX = ".tmp-"

CSV_FIELDS = (
    "created_at",
    "chat_type",
    "user",
    "photo_sha256",
    "model_version",
    "is_dog",
    "dog_probability",
    "mixed",
    "top1_label",
    "top1_name",
    "top1_probability",
    "corrected_label",
    "corrected_name",
    "correction_kind",
)


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
    top_k: Mapped[list[Any]]
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("events.id", ondelete="SET NULL"), index=True
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


@dataclass(frozen=True)
class EventInfo:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class PredictionInfo:
    id: int
    photo_message_id: int
    reply_message_id: int | None
    photo_sha256: str
    top_k: list[dict]
    event_id: int | None
    model_version: str
    photo_file_id: str | None = None


@dataclass(frozen=True)
class EventStats:
    photos: int
    dogs: int
    people: int
    corrections: int
    breeds: list[tuple[str, int]]


@dataclass(frozen=True)
class ForgetReport:
    predictions: int
    corrections: int
    photos: int
    events_left: int


@dataclass(frozen=True)
class LabelledPhoto:
    """A stored photo and the breed its latest correction gives it (for training data)."""

    sha256: str
    path: Path | None  # None when the photo file is gone
    label: str
    name: str
    kind: str  # the latest correction's kind: "confirmed", "corrected" or "new_breed"


def make_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL, foreign keys and explicit BEGINs."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database in (None, "", ":memory:"):
        # Each pooled connection would see its own empty in-memory database.
        raise ValueError("SQLite storage needs a file, e.g. sqlite:///var/whatbreed.db")
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so _sqlite_on_begin decides how BEGIN is sent.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # In WAL mode NORMAL cannot corrupt the file; it only may lose the last commits on a
    # power cut, and it saves an fsync per commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
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


def _event_info(row: Event) -> EventInfo:
    return EventInfo(id=row.id, code=row.code, name=row.name)


def _prediction_info(row: Prediction) -> PredictionInfo:
    return PredictionInfo(
        id=row.id,
        photo_message_id=row.photo_message_id,
        reply_message_id=row.reply_message_id,
        photo_sha256=row.photo_sha256,
        top_k=list(row.top_k),
        event_id=row.event_id,
        model_version=row.model_version,
        photo_file_id=row.photo_file_id,
    )


def _top_k(predictions: list[dict]) -> list[dict]:
    """Keep only the documented keys, so the JSON column never grows ad-hoc fields."""
    return [
        {"label": str(p["label"]), "name": str(p["name"]), "probability": float(p["probability"])}
        for p in predictions
    ]


def clean_event_name(name: str) -> str:
    """Whitespace collapsed (names show up in one-line messages), capped at 64 characters."""
    cleaned = " ".join(name.split())[:EVENT_NAME_MAX].strip()
    if not cleaned:
        raise ValueError("The event needs a name, for example: Dog park Sunday.")
    return cleaned


def _latest_corrections(session: Session, prediction_ids: Any) -> dict[int, Correction]:
    """The newest correction of each prediction in ``prediction_ids`` (a select or a list)."""
    rows = session.scalars(
        select(Correction)
        .where(Correction.prediction_id.in_(prediction_ids))
        .order_by(Correction.created_at, Correction.id)
    )
    return {row.prediction_id: row for row in rows}


def _format_float(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


class Store:
    """All persistent state of the bot. Thread-safe: every call uses its own session."""

    def __init__(self, database_url: str, photo_dir: Path, user_salt: str) -> None:
        if not user_salt:
            # Telegram ids are small integers: an unsalted hash is reversed by enumeration.
            raise ValueError("user_salt must be a non-empty secret")
        self._salt = user_salt.encode()
        self.photo_dir = Path(photo_dir)
        self.photo_dir.mkdir(parents=True, exist_ok=True)
        self._engine = make_engine(database_url)
        upgrade(self._engine, database_url)
        self._read = sessionmaker(self._engine, expire_on_commit=False)
        self._write = sessionmaker(
            self._engine.execution_options(whatbreed_write=True), expire_on_commit=False
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for maintenance scripts and tests."""
        return self._engine

    def close(self) -> None:
        """Release pooled connections (the database file stays)."""
        self._engine.dispose()

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    # Users and photos

    def user_hash(self, user_id: int) -> str:
        """HMAC-SHA256 hex of the Telegram user id with the secret salt."""
        return hmac.new(self._salt, str(int(user_id)).encode(), hashlib.sha256).hexdigest()

    def chat_hash(self, chat_id: int) -> str:
        """The same keyed hash for a chat id: a private chat's id is its user's id."""
        return self.user_hash(chat_id)

    def save_photo(self, photo_bytes: bytes, suffix: str = ".jpg") -> str:
        """Write ``photo_dir/<sha256><suffix>`` atomically (once) and return the sha256 hex.

        The suffix is cosmetic (files are found by hash), so an unsafe one, e.g. from an odd
        MIME type or with a path in it, becomes ".bin" instead of failing the upload.
        """
        suffix = suffix.lower() if _SUFFIX_RE.fullmatch(suffix) else ".bin"
        sha256 = sha256_hex(photo_bytes)
        path = self.photo_dir / f"{sha256}{suffix}"
        if path.exists():
            return sha256
        # Readers must never see a half-written photo: write aside, then rename in one step.
        fd, tmp = tempfile.mkstemp(dir=self.photo_dir, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(photo_bytes)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return sha256

    def keep_photo(self, prediction_id: int, photo_bytes: bytes, suffix: str = ".jpg") -> bool:
        """Store the photo of a prediction that was answered without keeping it.

        False, with no file left behind, when the bytes are not that prediction's photo or
        /forget removed every prediction of it meanwhile (checked again after writing, since
        forget_user deletes only the files that exist when it commits).
        """
        sha256 = sha256_hex(photo_bytes)
        if not self._photo_in_use(sha256, prediction_id):
            return False
        self.save_photo(photo_bytes, suffix)
        if self._photo_in_use(sha256):
            return True
        self._delete_photo(sha256)
        return False

    def _photo_in_use(self, sha256: str, prediction_id: int | None = None) -> bool:
        query = select(Prediction.id).where(Prediction.photo_sha256 == sha256)
        if prediction_id is not None:
            query = query.where(Prediction.id == prediction_id)
        with self._reading() as session:
            return session.scalars(query.limit(1)).first() is not None

    def photo_path(self, sha256: str) -> Path | None:
        """The stored file of that photo, whatever its suffix, or None."""
        if not _SHA256_RE.fullmatch(sha256):
            return None
        return next(iter(sorted(self._photo_files(sha256))), None)

    def _photo_files(self, sha256: str) -> list[Path]:
        return [p for p in self.photo_dir.glob(f"{sha256}.*") if p.is_file()]

    # Predictions

    def record_prediction(
        self,
        *,
        chat_id: int,
        chat_type: str,
        user_id: int,
        photo_message_id: int,
        photo_sha256: str,
        model_version: str,
        answer: dict,
        event_id: int | None,
        photo_file_id: str | None = None,
    ) -> int:
        """Store one answer of the model and return its id."""
        if chat_type not in CHAT_TYPES:
            raise ValueError(f"chat_type must be one of {sorted(CHAT_TYPES)}, not {chat_type!r}")
        row = Prediction(
            chat_hash=self.chat_hash(chat_id),
            chat_type=chat_type,
            user_hash=self.user_hash(user_id),
            photo_message_id=photo_message_id,
            photo_sha256=photo_sha256,
            photo_file_id=photo_file_id,
            model_version=model_version,
            is_dog=bool(answer["is_dog"]),
            dog_probability=float(answer["dog_probability"]),
            mixed=bool(answer["mixed"]),
            top_k=_top_k(answer.get("predictions") or []),
            event_id=event_id,
        )
        with self._writing() as session:
            session.add(row)
            session.flush()
            return row.id

    def set_reply_message(self, prediction_id: int, reply_message_id: int) -> None:
        """Remember the bot's answer message; a no-op if the prediction was forgotten meanwhile."""
        with self._writing() as session:
            session.execute(
                update(Prediction)
                .where(Prediction.id == prediction_id)
                .values(reply_message_id=reply_message_id)
            )

    def prediction(self, prediction_id: int) -> PredictionInfo | None:
        with self._reading() as session:
            row = session.get(Prediction, prediction_id)
            return None if row is None else _prediction_info(row)

    def prediction_for_message(self, chat_id: int, message_id: int) -> PredictionInfo | None:
        """The prediction whose photo message or bot reply is ``message_id`` in that chat."""
        query = (
            select(Prediction)
            .where(Prediction.chat_hash == self.chat_hash(chat_id))
            .where(
                or_(
                    Prediction.photo_message_id == message_id,
                    Prediction.reply_message_id == message_id,
                )
            )
            .order_by(Prediction.id.desc())
            .limit(1)
        )
        with self._reading() as session:
            row = session.scalars(query).first()
            return None if row is None else _prediction_info(row)

    # Corrections

    def record_correction(
        self, prediction_id: int, user_id: int, label: str, name: str, kind: str
    ) -> int:
        """Store a user's verdict on a prediction; LookupError if the prediction is gone."""
        if kind not in CORRECTION_KINDS:
            raise ValueError(f"kind must be one of {sorted(CORRECTION_KINDS)}, not {kind!r}")
        label, name = label.strip(), " ".join(name.split())
        if not label or not name:
            raise ValueError("a correction needs a label and a name")
        with self._writing() as session:
            if session.get(Prediction, prediction_id) is None:
                raise LookupError(f"no prediction {prediction_id}")
            row = Correction(
                prediction_id=prediction_id,
                user_hash=self.user_hash(user_id),
                label=label[:64],
                name=name[:128],
                kind=kind,
            )
            session.add(row)
            session.flush()
            return row.id

    def corrections(self, prediction_id: int) -> list[dict]:
        """Corrections of one prediction, oldest first: label, name, kind, created_at."""
        query = (
            select(Correction)
            .where(Correction.prediction_id == prediction_id)
            .order_by(Correction.created_at, Correction.id)
        )
        with self._reading() as session:
            return [
                {"label": c.label, "name": c.name, "kind": c.kind, "created_at": c.created_at}
                for c in session.scalars(query)
            ]

    def known_new_breeds(self) -> list[tuple[str, str]]:
        """Distinct (label, name) pairs of new breeds users confirmed, by label."""
        query = (
            select(Correction.label, Correction.name)
            .where(Correction.kind == "new_breed")
            .distinct()
            .order_by(Correction.label, Correction.name)
        )
        with self._reading() as session:
            return [(label, name) for label, name in session.execute(query)]

    def labelled_photos(self) -> list[LabelledPhoto]:
        """Every corrected photo with the label of its latest correction, by sha256.

        The latest correction of a photo is taken over all predictions of it (the same photo
        may be sent twice); "confirmed" takes the model's top-1 label of that prediction.
        """
        query = (
            select(Correction, Prediction)
            .join(Prediction, Correction.prediction_id == Prediction.id)
            .order_by(Correction.created_at, Correction.id)
        )
        with self._reading() as session:
            latest = {p.photo_sha256: (c, p) for c, p in session.execute(query)}
        photos = []
        for sha256, (correction, prediction) in sorted(latest.items()):
            label, name = correction.label, correction.name
            if correction.kind == "confirmed" and prediction.top_k:
                label, name = prediction.top_k[0]["label"], prediction.top_k[0]["name"]
            photos.append(
                LabelledPhoto(sha256, self.photo_path(sha256), label, name, correction.kind)
            )
        return photos

    # Forgetting

    def forget_user(self, user_id: int) -> ForgetReport:
        """Delete everything a user left, and photo files that nothing references any more.

        Events the user hosts stay (they hold only the hash), so other members keep them.
        """
        user = self.user_hash(user_id)
        own = select(Prediction.id).where(Prediction.user_hash == user)
        with self._writing() as session:
            shas = set(
                session.scalars(select(Prediction.photo_sha256).where(Prediction.user_hash == user))
            )
            corrections = session.execute(
                delete(Correction).where(
                    or_(Correction.user_hash == user, Correction.prediction_id.in_(own))
                ),
                execution_options={"synchronize_session": False},
            ).rowcount
            predictions = session.execute(
                delete(Prediction).where(Prediction.user_hash == user),
                execution_options={"synchronize_session": False},
            ).rowcount
            session.execute(
                delete(EventMember).where(EventMember.user_hash == user),
                execution_options={"synchronize_session": False},
            )
            still_used = set(
                session.scalars(
                    select(Prediction.photo_sha256).where(Prediction.photo_sha256.in_(shas))
                )
            )
            events_left = session.scalar(
                select(func.count()).select_from(Event).where(Event.host_hash == user)
            )
        # Files go only after the commit: a failed transaction must not lose photos.
        photos = sum(self._delete_photo(sha) for sha in sorted(shas - still_used))
        return ForgetReport(predictions, corrections, photos, int(events_left or 0))

    def _delete_photo(self, sha256: str) -> int:
        files = self._photo_files(sha256)
        for path in files:
            path.unlink(missing_ok=True)
        return 1 if files else 0

    # Events

    def create_event(self, host_user_id: int, name: str) -> EventInfo:
        """A new event with a fresh code; the host joins it, so their photos count too."""
        name = clean_event_name(name)
        host = self.user_hash(host_user_id)
        for _ in range(5):
            try:
                with self._writing() as session:
                    row = Event(code=_new_event_code(), name=name, host_hash=host)
                    session.add(row)
                    session.flush()
                    session.add(EventMember(event_id=row.id, user_hash=host))
                    return _event_info(row)
            except IntegrityError:
                continue  # a code collision (2^-64 per pair): draw another code
        raise RuntimeError("could not draw a unique event code")

    def join_event(self, user_id: int, code: str) -> EventInfo | None:
        """Make the event with that code the user's current one; None for an unknown code."""
        code = code.strip()
        if not EVENT_CODE_RE.fullmatch(code):
            return None
        user = self.user_hash(user_id)
        with self._writing() as session:
            row = session.scalars(select(Event).where(Event.code == code)).first()
            if row is None:
                return None
            # Re-inserting (not updating) also gives the row the newest id, the tie-breaker
            # of current_event when two joins share a timestamp.
            session.execute(
                delete(EventMember).where(
                    EventMember.event_id == row.id, EventMember.user_hash == user
                ),
                execution_options={"synchronize_session": False},
            )
            session.add(EventMember(event_id=row.id, user_hash=user))
            return _event_info(row)

    def current_event(self, user_id: int) -> EventInfo | None:
        """The event the user joined most recently."""
        query = (
            select(Event)
            .join(EventMember, EventMember.event_id == Event.id)
            .where(EventMember.user_hash == self.user_hash(user_id))
            .order_by(EventMember.joined_at.desc(), EventMember.id.desc())
            .limit(1)
        )
        with self._reading() as session:
            row = session.scalars(query).first()
            return None if row is None else _event_info(row)

    def hosted_event(self, user_id: int) -> EventInfo | None:
        """The event the user created most recently."""
        query = (
            select(Event)
            .where(Event.host_hash == self.user_hash(user_id))
            .order_by(Event.created_at.desc(), Event.id.desc())
            .limit(1)
        )
        with self._reading() as session:
            row = session.scalars(query).first()
            return None if row is None else _event_info(row)

    def event_stats(self, event_id: int) -> EventStats:
        """Counts over the event's photos.

        people: distinct users who sent photos; corrections: photos whose latest verdict
        changed the answer ("corrected" or "new_breed"); breeds: top-1 of dog photos, the
        latest correction overriding it, most common first.
        """
        with self._reading() as session:
            rows = list(session.scalars(select(Prediction).where(Prediction.event_id == event_id)))
            latest = _latest_corrections(
                session, select(Prediction.id).where(Prediction.event_id == event_id)
            )
        breeds: Counter[str] = Counter()
        for row in rows:
            name = _final_name(row, latest.get(row.id))
            if row.is_dog and name:
                breeds[name] += 1
        return EventStats(
            photos=len(rows),
            dogs=sum(row.is_dog for row in rows),
            people=len({row.user_hash for row in rows}),
            corrections=sum(c.kind != "confirmed" for c in latest.values()),
            breeds=sorted(breeds.items(), key=lambda item: (-item[1], item[0])),
        )

    def export_event_csv(self, event_id: int) -> str:
        """The event's photos as CSV (columns CSV_FIELDS), oldest first, users pseudonymous."""
        with self._reading() as session:
            rows = list(
                session.scalars(
                    select(Prediction)
                    .where(Prediction.event_id == event_id)
                    .order_by(Prediction.created_at, Prediction.id)
                )
            )
            latest = _latest_corrections(session, [row.id for row in rows])
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(_csv_row(row, latest.get(row.id)))
        return out.getvalue()


def _new_event_code() -> str:
    # 8 random bytes -> 11 url-safe characters, valid as a Telegram /start payload.
    return secrets.token_urlsafe(8)


def _final_name(row: Prediction, correction: Correction | None) -> str | None:
    if correction is not None:
        return correction.name
    return row.top_k[0]["name"] if row.top_k else None


def _cell(text: str) -> str:
    """User-typed text, kept from being read as a formula when the CSV opens in a sheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _csv_row(row: Prediction, correction: Correction | None) -> dict[str, str]:
    top1 = row.top_k[0] if row.top_k else {}
    return {
        "created_at": row.created_at.isoformat(),
        "chat_type": row.chat_type,
        "user": row.user_hash[:10],
        "photo_sha256": row.photo_sha256,
        "model_version": row.model_version,
        "is_dog": _format_bool(row.is_dog),
        "dog_probability": _format_float(row.dog_probability),
        "mixed": _format_bool(row.mixed),
        "top1_label": top1.get("label", ""),
        "top1_name": top1.get("name", ""),
        "top1_probability": _format_float(top1.get("probability")),
        "corrected_label": _cell(correction.label) if correction else "",
        "corrected_name": _cell(correction.name) if correction else "",
        "correction_kind": correction.kind if correction else "",
    }
