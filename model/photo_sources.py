"""Where photos come from on the command line: files, folders (recursively) and http(s) URLs."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".bmp",
                  ".tif", ".tiff"}
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
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
    request = urllib.request.Request(url, headers={"User-Agent": "whatbreed"})
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
            body = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise SourceError(f"cannot download it: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, TimeoutError, ValueError, OSError,
            http.client.HTTPException) as error:  # also a connection lost mid-body
        reason = getattr(error, "reason", error)
        raise SourceError(f"cannot download it: {reason}") from error
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise SourceError(f"it is larger than {MAX_DOWNLOAD_BYTES // 2**20} MB")
    return body


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
