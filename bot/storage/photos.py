"""Photos as content-addressed files, ``<folder>/<sha256><suffix>``, written atomically."""

from __future__ import annotations

import re
from pathlib import Path

from model.data.dataset import sha256_hex
from model.files import replace_durably

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# A suffix is part of a file name, so it must never carry a path separator or "..".
_SUFFIX_RE = re.compile(r"\.[A-Za-z0-9]{1,8}")


class PhotoFolder:
    """One folder of photos, found by sha256 whatever their suffix."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def save(self, photo_bytes: bytes, suffix: str = ".jpg") -> str:
        """Write ``<sha256><suffix>`` atomically (once) and return the sha256 hex.

        The suffix is cosmetic (files are found by hash), so an unsafe one, e.g. from an odd
        MIME type or with a path in it, becomes ".bin" instead of failing the upload.
        """
        suffix = suffix.lower() if _SUFFIX_RE.fullmatch(suffix) else ".bin"
        sha256 = sha256_hex(photo_bytes)
        path = self.folder / f"{sha256}{suffix}"
        if path.exists():
            return sha256
        replace_durably(path, photo_bytes, mode=0o600)  # people's photos: the bot's alone
        return sha256

    def path(self, sha256: str) -> Path | None:
        """The stored file of that photo, whatever its suffix, or None."""
        if not _SHA256_RE.fullmatch(sha256):
            return None
        return next(iter(sorted(self._files(sha256))), None)

    def delete(self, sha256: str) -> bool:
        """Remove the photo's files; False when there were none."""
        files = self._files(sha256)
        for path in files:
            path.unlink(missing_ok=True)
        return bool(files)

    def _files(self, sha256: str) -> list[Path]:
        return [p for p in self.folder.glob(f"{sha256}.*") if p.is_file()]

