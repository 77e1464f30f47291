"""Files that survive a crash or a power cut: the model file, kept photos.

Light on purpose (no JAX): the bot's storage imports it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"  # files being written; a crash may leave one, never under a real name


def replace_durably(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Put ``data`` at ``path`` so that a reader, a crash or a power cut sees the old file or
    the whole new one: written aside under a name of its own (writers at once never share one;
    a failed write leaves nothing behind) and fsynced, renamed into place, the folder synced.
    The file gets ``mode`` as it is, whatever the umask: 0o600 for what people sent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(fd, "wb") as file:  # closes fd, whatever fails below
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # on disk before the rename: a power cut leaves old or new
        os.replace(temporary, path)  # the bot may be watching this file: never half-written
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sweep_leftovers(folder: Path, older_than_s: float = 3600) -> int:
    """Remove what killed writes left in ``folder`` (temporary files older than
    ``older_than_s``; a younger one may be another process's write still going on), and return
    how many went. Nothing else knows whose they were: a left photo would outlive /forget."""
    cutoff = time.time() - older_than_s
    swept = 0
    for leftover in folder.glob(f"{TEMPORARY_PREFIX}*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                swept += 1
        except FileNotFoundError:  # another process swept it first
            pass
    return swept


def sync_folder(folder: Path) -> None:
    """Make the renames and new files in ``folder`` durable (fsync the folder itself)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
