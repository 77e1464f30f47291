"""What leaves the database: an event's CSV for its host."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from bot.storage.schema import Correction, Prediction

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

