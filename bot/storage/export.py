"""What leaves the database: an event's CSV for its host, and corrected photos as training data.

``export_corrections`` is how the data build gets the bot's corrections: a manifest in
``model.data.dataset``'s format, read from the database without changing it.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.storage.engine import read_only_engine
from bot.storage.photos import PhotoFolder
from bot.storage.schema import Correction, Prediction
from model.data.dataset import Example, write_manifest

log = logging.getLogger(__name__)

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


# Corrected photos as training data


def export_corrections(database_url: str, photo_dir: Path, manifest: Path) -> list[Example]:
    """Write every corrected photo to ``manifest`` (source "correction") and return them.

    Only reads (see ``read_only_engine``): FileNotFoundError when the database or the photo
    folder is absent, UnreadableDatabase when the database is not the bot's at its newest
    migration.
    """
    engine = read_only_engine(database_url)
    try:
        if not photo_dir.is_dir():
            raise FileNotFoundError(f"no photo folder {photo_dir}")
        with Session(engine) as session:
            examples = corrected_examples(session, PhotoFolder(photo_dir))
    finally:
        engine.dispose()
    write_manifest(examples, manifest)
    log.info("%d corrected photos written to %s", len(examples), manifest)
    return examples


def corrected_examples(session: Session, photos: PhotoFolder) -> list[Example]:
    """Every corrected photo with the label of its latest correction, by sha256.

    The latest correction of a photo is taken over all predictions of it (the same photo may
    be sent twice); "confirmed" takes the model's top-1 of that prediction. A photo whose file
    is gone keeps the path ``<folder>/<sha256>``, which does not exist: the data build counts
    it as unreadable.
    """
    query = (
        select(Correction, Prediction)
        .join(Prediction, Correction.prediction_id == Prediction.id)
        .order_by(Correction.created_at, Correction.id)
    )
    latest = {p.photo_sha256: (c, p) for c, p in session.execute(query)}
    examples = []
    for sha256, (correction, prediction) in sorted(latest.items()):
        label, name = correction.label, correction.name
        if correction.kind == "confirmed" and prediction.guesses:
            label, name = prediction.guesses[0].label, prediction.guesses[0].name
        path = photos.path(sha256) or photos.folder / sha256
        examples.append(Example(path, sha256, label, name, "correction", "", ""))
    return examples
