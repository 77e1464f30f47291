"""Files that survive a crash or a power cut: the model file, kept photos.

Light on purpose (no JAX): the bot's storage imports it.
"""

from __future__ import annotations

import os
from pathlib import Path


def replace_durably(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` so that a reader, a crash or a power cut sees the old file or
    the whole new one: written aside and fsynced, renamed into place, the folder synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename: a power cut leaves old or new
    temporary.replace(path)  # the bot may be watching this file: never show it half-written
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make the renames and new files in ``folder`` durable (fsync the folder itself)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
