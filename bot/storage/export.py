"""What leaves the database: an event's CSV for its host, corrected photos as training data,
and every vote on an answer.

``export_corrections`` is how the data build gets the bot's corrections: a manifest in
``model.data.dataset``'s format. ``export_votes`` gives retraining every correction, not only
the latest of each photo, with who voted. Both read the database without changing it.

A correction of one dog of several is exported as a vote with that dog's box (stored with
the prediction), so that retraining crops the dog as the bot did; the manifest lists whole
photo files only, so it leaves those corrections out: training on the whole photo would teach
dog ②'s breed from a photo of two.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.engine import read_only_engine
from bot.storage.photos import PhotoFolder
from bot.storage.schema import Correction, Event, Prediction
from model.data.corrections import BOX_FIELDS, VOTE_FIELDS
from model.data.dataset import Example, write_manifest
from model.files import replace_durably

log = logging.getLogger(__name__)

Read = TypeVar("Read")

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


# An event's CSV


def event_csv(rows: Iterable[Prediction], latest: dict[int, Correction]) -> str:
    """CSV_FIELDS for each prediction, with its latest correction (by prediction id) if any."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_row(row, latest.get(row.id)))
    return out.getvalue()


def _csv_row(row: Prediction, correction: Correction | None) -> dict[str, str]:
    top1 = row.guesses[0] if row.guesses else None
    return {
        "created_at": row.created_at.isoformat(),
        "chat_type": row.chat_type,
        "user": row.user_hash[:10],
        "photo_sha256": row.photo_sha256,
        "model_version": row.model_version,
        "is_dog": _format_bool(row.is_dog),
        "dog_probability": _format_float(row.dog_probability),
        "mixed": _format_bool(row.mixed),
        "top1_label": top1.label if top1 else "",
        "top1_name": top1.name if top1 else "",
        "top1_probability": _format_float(top1.probability if top1 else None),
        "corrected_label": _cell(correction.label) if correction else "",
        "corrected_name": _cell(correction.name) if correction else "",
        "correction_kind": correction.kind if correction else "",
    }


def _format_float(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _format_bool(value: bool) -> str:
    return "true" if value else "false"


def _cell(text: str) -> str:
    """User-typed text, kept from being read as a formula when the CSV opens in a sheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


# Reading the database without changing it


def _read_database(database_url: str, photo_dir: Path,
                   read: Callable[[Session, PhotoFolder], Read]) -> Read:
    """``read`` over a read-only session (see ``read_only_engine``) and the photo folder."""
    engine = read_only_engine(database_url)
    try:
        if not photo_dir.is_dir():
            raise FileNotFoundError(f"no photo folder {photo_dir}")
        with Session(engine) as session:
            return read(session, PhotoFolder(photo_dir))
    finally:
        engine.dispose()


def _voted_breed(correction: Correction, prediction: Prediction) -> tuple[str, str]:
    """(label, name) a correction says the photo (or its dog) shows: "confirmed" takes the
    model's top-1 for it."""
    guesses = prediction.guesses_of(correction.dog)
    if correction.kind == "confirmed" and guesses:
        return guesses[0].label, guesses[0].name
    return correction.label, correction.name


# Corrected photos as training data


def export_corrections(database_url: str, photo_dir: Path, manifest: Path) -> list[Example]:
    """Write every corrected photo to ``manifest`` (source "correction") and return them.

    Only reads (see ``read_only_engine``): FileNotFoundError when the database or the photo
    folder is absent, UnreadableDatabase when the database is not the bot's at its newest
    migration.
    """
    examples = _read_database(database_url, photo_dir, corrected_examples)
    write_manifest(examples, manifest)
    log.info("%d corrected photos written to %s", len(examples), manifest)
    return examples


def corrected_examples(session: Session, photos: PhotoFolder) -> list[Example]:
    """Every corrected photo with the label of its latest correction, by sha256 (whole
    photos only: see the module's docstring).

    The latest correction of a photo is taken over all predictions of it (the same photo may
    be sent twice); "confirmed" takes the model's top-1 of that prediction. A photo whose file
    is gone keeps the path ``<folder>/<sha256>``, which does not exist: the data build counts
    it as unreadable.
    """
    query = (
        select(Correction, Prediction)
        .join(Prediction, Correction.prediction_id == Prediction.id)
        .where(Correction.dog.is_(None))
        .order_by(Correction.created_at, Correction.id)
    )
    latest = {p.photo_sha256: (c, p) for c, p in session.execute(query)}
    examples = []
    for sha256, (correction, prediction) in sorted(latest.items()):
        path = photos.path(sha256) or photos.folder / sha256
        examples.append(Example(path, sha256, *_voted_breed(correction, prediction),
                                "correction", "", ""))
    return examples


# Every vote, for retraining to weigh




def export_votes(database_url: str, photo_dir: Path, out_csv: Path) -> int:
    """Write every correction as a row of VOTE_FIELDS to ``out_csv``; return how many.

    Rows are ordered by (at, correction_id). ``at`` is the correction's time in UTC, ISO 8601 to
    the second; ``path`` the kept photo file's absolute path, empty when no file is kept;
    ``voter`` the voter's user hash; ``host`` "1" when the voter hosts the event the photo was
    sent in, else "0"; ``label`` and ``name`` the breed voted for ("confirmed": the model's
    top-1 for the photo or the dog); ``box_*`` the corrected dog's box as fractions of the
    photo, empty for a correction of the whole photo. The file is replaced atomically. Only
    reads the database, and fails like ``export_corrections``: FileNotFoundError,
    UnreadableDatabase.
    """
    rows = _read_database(database_url, photo_dir, vote_rows)
    _write_votes(rows, out_csv)
    log.info("%d corrections written to %s", len(rows), out_csv)
    return len(rows)


def vote_rows(session: Session, photos: PhotoFolder) -> list[dict[str, str]]:
    """VOTE_FIELDS of every correction, oldest first."""
    query = (
        select(Correction, Prediction, Event.host_hash)
        .join(Prediction, Correction.prediction_id == Prediction.id)
        .outerjoin(Event, Prediction.event_id == Event.id)
        .order_by(Correction.created_at, Correction.id)
    )
    rows = []
    for correction, prediction, host_hash in session.execute(query):
        path = photos.path(prediction.photo_sha256)
        label, name = _voted_breed(correction, prediction)
        rows.append({
            "correction_id": str(correction.id),
            "at": correction.created_at.isoformat(timespec="seconds"),
            "sha256": prediction.photo_sha256,
            "path": str(path.resolve()) if path else "",
            "voter": correction.user_hash,
            "host": "1" if host_hash == correction.user_hash else "0",
            "kind": correction.kind,
            "label": label,
            "name": name,
            "event_id": "" if prediction.event_id is None else str(prediction.event_id),
        } | _box_cells(correction, prediction))
    return rows


def _box_cells(correction: Correction, prediction: Prediction) -> dict[str, str]:
    """BOX_FIELDS of the corrected dog's stored box; empty for the whole photo."""
    box = [""] * 4 if correction.dog is None else prediction.dogs[correction.dog - 1]["box"]
    return dict(zip(BOX_FIELDS, map(str, box), strict=True))


def _write_votes(rows: list[dict[str, str]], path: Path) -> None:
    """Readers see the old file or the whole new one; people's votes: the owner's only."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=VOTE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    replace_durably(path, text.getvalue().encode(), mode=0o600)
