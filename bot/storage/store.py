"""The bot's queries: predictions, corrections, events, their stats, and forgetting a user.

Every ``Store`` method opens its own session, so the bot may call them from worker threads.
Raw Telegram user and chat ids are never stored: they appear as an HMAC-SHA256 of the id
(a private chat's id is its user's id, so chats are hashed the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.engine import make_engine, upgrade
from bot.storage.export import event_csv
from bot.storage.photos import PhotoFolder
from bot.storage.schema import EVENT_NAME_MAX, Correction, Event, EventMember, Prediction
from model.answers import Answer, BreedGuess, Dog
from model.data.dataset import sha256_hex
from model.data.feature_cache import forget_features
from model.files import sweep_leftovers

log = logging.getLogger(__name__)

CHAT_TYPES = frozenset({"private", "group", "supergroup"})
CORRECTION_KINDS = frozenset({"confirmed", "corrected", "new_breed"})
# Telegram's /start payload allows [A-Za-z0-9_-], at most 64 characters.
EVENT_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

Info = TypeVar("Info")


@dataclass(frozen=True)
class EventInfo:
    id: int
    code: str
    name: str

    @classmethod
    def of(cls, row: Event) -> EventInfo:
        return cls(row.id, row.code, row.name)


@dataclass(frozen=True)
class PredictionInfo:
    id: int
    photo_message_id: int
    reply_message_id: int | None
    photo_sha256: str
    guesses: tuple[BreedGuess, ...]  # the model's answer, most likely first
    event_id: int | None
    model_version: str
    photo_file_id: str | None = None
    # The answer for each dog the reply numbered (several dogs), ① first; () for one dog.
    dogs: tuple[tuple[BreedGuess, ...], ...] = ()

    @classmethod
    def of(cls, row: Prediction) -> PredictionInfo:
        return cls(row.id, row.photo_message_id, row.reply_message_id, row.photo_sha256,
                   row.guesses, row.event_id, row.model_version, row.photo_file_id,
                   row.dogs_guesses)

    def guesses_of(self, dog: int | None) -> tuple[BreedGuess, ...]:
        """The answer for numbered dog ``dog`` (1, 2, …), or for the photo when None."""
        return self.guesses if dog is None else self.dogs[dog - 1]


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


def clean_event_name(name: str) -> str:
    """Whitespace collapsed (names show up in one-line messages), capped at 64 characters."""
    cleaned = " ".join(name.split())[:EVENT_NAME_MAX].strip()
    if not cleaned:
        raise ValueError("The event needs a name, for example: Dog park Sunday.")
    return cleaned


def _latest_corrections(session: Session, prediction_ids: Any) -> dict[int, Correction]:
    """The newest correction of the whole photo of each prediction in ``prediction_ids`` (a
    select or a list); a correction of one dog of several is not the photo's breed."""
    rows = session.scalars(
        select(Correction)
        .where(Correction.prediction_id.in_(prediction_ids))
        .where(Correction.dog.is_(None))
        .order_by(Correction.created_at, Correction.id)
    )
    return {row.prediction_id: row for row in rows}


class Store:
    """All persistent state of the bot. Thread-safe: every call uses its own session.

    Opening it migrates the database to the newest schema (``bot/migrations``).
    """

    def __init__(self, database_url: str, photo_dir: Path, user_salt: str,
                 feature_cache: Path | None = None) -> None:
        """``feature_cache``: where retraining caches the photos' backbone features
        (``scripts/retrain.py --cache``), so that /forget deletes those too."""
        if not user_salt:
            # Telegram ids are small integers: an unsalted hash is reversed by enumeration.
            raise ValueError("user_salt must be a non-empty secret")
        self._salt = user_salt.encode()
        self._photos = PhotoFolder(photo_dir)
        self._feature_cache = feature_cache
        self.photo_dir.mkdir(parents=True, exist_ok=True)
        if swept := sweep_leftovers(self.photo_dir):
            log.info("removed %d partly written photos a killed process left", swept)
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

    @property
    def photo_dir(self) -> Path:
        return self._photos.folder

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

    def _first(self, query: Select, info: Callable[[Any], Info]) -> Info | None:
        """``info`` of the query's first row, or None when there is none."""
        with self._reading() as session:
            row = session.scalars(query.limit(1)).first()
            return None if row is None else info(row)

    # Users and photos

    def user_hash(self, user_id: int) -> str:
        """HMAC-SHA256 hex of the Telegram user id with the secret salt."""
        return hmac.new(self._salt, str(int(user_id)).encode(), hashlib.sha256).hexdigest()

    def chat_hash(self, chat_id: int) -> str:
        """The same keyed hash for a chat id: a private chat's id is its user's id."""
        return self.user_hash(chat_id)

    def save_photo(self, photo_bytes: bytes, suffix: str = ".jpg") -> str:
        """Write ``photo_dir/<sha256><suffix>`` atomically (once) and return the sha256 hex."""
        return self._photos.save(photo_bytes, suffix)

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
        self._photos.delete(sha256)
        return False

    def _photo_in_use(self, sha256: str, prediction_id: int | None = None) -> bool:
        query = select(Prediction.id).where(Prediction.photo_sha256 == sha256)
        if prediction_id is not None:
            query = query.where(Prediction.id == prediction_id)
        with self._reading() as session:
            return session.scalars(query.limit(1)).first() is not None

    def photo_path(self, sha256: str) -> Path | None:
        """The stored file of that photo, whatever its suffix, or None."""
        return self._photos.path(sha256)

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
        answer: Answer,
        event_id: int | None,
        photo_file_id: str | None = None,
        dogs: Sequence[Dog] = (),
    ) -> int:
        """Store one answer of the model and return its id; ``dogs``: the several dogs the
        reply numbered, ① first (none when it answered the whole photo)."""
        if chat_type not in CHAT_TYPES:
            raise ValueError(f"chat_type must be one of {sorted(CHAT_TYPES)}, not {chat_type!r}")
        stored = answer.to_json()  # the JSON form: probabilities rounded to 4 places
        row = Prediction(
            chat_hash=self.chat_hash(chat_id),
            chat_type=chat_type,
            user_hash=self.user_hash(user_id),
            photo_message_id=photo_message_id,
            photo_sha256=photo_sha256,
            photo_file_id=photo_file_id,
            model_version=model_version,
            is_dog=answer.is_dog,
            dog_probability=stored["dog_probability"],
            mixed=answer.mixed,
            top_k=stored["predictions"],
            event_id=event_id,
            dogs=[dog.to_json() for dog in dogs] or None,
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

    def prediction(self, prediction_id: int, chat_id: int | None = None) -> PredictionInfo | None:
        """The prediction with that id; with ``chat_id``, only if it was made in that chat (a
        button's data names the prediction, and a forged one may name another chat's)."""
        with self._reading() as session:
            row = session.get(Prediction, prediction_id)
            if row is None or (chat_id is not None and row.chat_hash != self.chat_hash(chat_id)):
                return None
            return PredictionInfo.of(row)

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
        )
        return self._first(query, PredictionInfo.of)

    # Corrections

    def record_correction(
        self,
        prediction_id: int,
        user_id: int,
        label: str,
        name: str,
        kind: str,
        dog: int | None = None,
    ) -> int:
        """Store a user's verdict on a prediction, or on its numbered dog ``dog`` (1, 2, …);
        LookupError if the prediction (or that dog of it) is gone."""
        if kind not in CORRECTION_KINDS:
            raise ValueError(f"kind must be one of {sorted(CORRECTION_KINDS)}, not {kind!r}")
        label, name = label.strip(), " ".join(name.split())
        if not label or not name:
            raise ValueError("a correction needs a label and a name")
        with self._writing() as session:
            prediction = session.get(Prediction, prediction_id)
            if prediction is None:
                raise LookupError(f"no prediction {prediction_id}")
            if dog is not None and not 1 <= dog <= len(prediction.dogs or []):
                raise LookupError(f"prediction {prediction_id} has no dog {dog}")
            row = Correction(
                prediction_id=prediction_id,
                user_hash=self.user_hash(user_id),
                label=label[:64],
                name=name[:128],
                kind=kind,
                dog=dog,
            )
            session.add(row)
            session.flush()
            return row.id

    def corrections(self, prediction_id: int) -> list[dict]:
        """Corrections of one prediction, oldest first: label, name, kind, created_at, dog."""
        query = (
            select(Correction)
            .where(Correction.prediction_id == prediction_id)
            .order_by(Correction.created_at, Correction.id)
        )
        with self._reading() as session:
            return [
                {"label": c.label, "name": c.name, "kind": c.kind, "created_at": c.created_at,
                 "dog": c.dog}
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
        # Files go only after the commit: a failed transaction must not lose photos. What was
        # learnt from a photo (its cached features) goes with it.
        gone = sorted(shas - still_used)
        photos = sum(self._photos.delete(sha) for sha in gone)
        if self._feature_cache is not None:
            forget_features(self._feature_cache, gone)
        return ForgetReport(predictions, corrections, photos, int(events_left or 0))

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
                    return EventInfo.of(row)
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
            return EventInfo.of(row)

    def current_event(self, user_id: int) -> EventInfo | None:
        """The event the user joined most recently."""
        query = (
            select(Event)
            .join(EventMember, EventMember.event_id == Event.id)
            .where(EventMember.user_hash == self.user_hash(user_id))
            .order_by(EventMember.joined_at.desc(), EventMember.id.desc())
        )
        return self._first(query, EventInfo.of)

    def hosted_event(self, user_id: int) -> EventInfo | None:
        """The event the user created most recently."""
        query = (
            select(Event)
            .where(Event.host_hash == self.user_hash(user_id))
            .order_by(Event.created_at.desc(), Event.id.desc())
        )
        return self._first(query, EventInfo.of)

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
        query = (
            select(Prediction)
            .where(Prediction.event_id == event_id)
            .order_by(Prediction.created_at, Prediction.id)
        )
        with self._reading() as session:
            rows = list(session.scalars(query))
            latest = _latest_corrections(session, [row.id for row in rows])
        return event_csv(rows, latest)


def _new_event_code() -> str:
    # 8 random bytes -> 11 url-safe characters, valid as a Telegram /start payload.
    return secrets.token_urlsafe(8)


def _final_name(row: Prediction, correction: Correction | None) -> str | None:
    if correction is not None:
        return correction.name
    return row.guesses[0].name if row.guesses else None
