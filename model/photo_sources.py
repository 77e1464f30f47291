"""Where photos come from on the command line: files, folders (recursively) and http(s) URLs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from model.download import MAX_DOWNLOAD_BYTES, DownloadError, TooLargeError, download

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".bmp",
                  ".tif", ".tiff"}
DOWNLOAD_TIMEOUT_S = 20


class SourceError(OSError):
    """A photo that could not be read or fetched; str(error) says why (the caller names it)."""


@dataclass(frozen=True)
class PhotoSource:
    name: str  # the path or URL as the user gave it

    def read(self) -> bytes:
        if self.name.startswith(("http://", "https://")):
            return _download(self.name)
        try:
            return Path(self.name).read_bytes()
        except OSError as error:
            raise SourceError(f"cannot read it: {error.strerror or error}") from error


def _download(url: str) -> bytes:
    try:
        return download(url, DOWNLOAD_TIMEOUT_S)
    except TooLargeError as error:
        raise SourceError(f"it is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB") from error
    except DownloadError as error:
        raise SourceError(f"cannot download it: {error}") from error


def expand(names: list[str]) -> Iterator[PhotoSource]:
    """Each name as a source; a folder becomes the photos under it, in sorted order."""
    for name in names:
        path = Path(name)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.suffix.lower() in PHOTO_SUFFIXES and child.is_file():
                    yield PhotoSource(str(child))
        else:
            yield PhotoSource(name)
