"""Perceptual hashes cached by sha256 in ``phash_cache.csv``, so a rerun decodes only new photos.

The Flickr collector and the data-set build keep one each, in this one format; the build also
reads the collector's, read only. The cache is a ``CsvLog``: a crash loses at most one row.
"""

from __future__ import annotations

import csv
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model.data.csv_log import CsvLog
from model.data.dataset import Example, perceptual_hash
from model.preprocess import ImageError

log = logging.getLogger(__name__)

HASH_CACHE = "phash_cache.csv"
HASH_CACHE_FIELDS = ("sha256", "phash")
_LOG_EVERY = 1000


def read_hash_cache(path: Path) -> dict[str, int]:
    """sha256 -> perceptual hash from a cache file, read only; malformed rows are ignored."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return _valid(csv.DictReader(f))


def _valid(rows: Iterable[dict[str, str]]) -> dict[str, int]:
    """The well-formed rows; a torn or hand-edited one is skipped, not fatal."""
    hashes = {}
    for row in rows:
        sha256, photo_hash = row.get("sha256") or "", row.get("phash") or ""
        if len(sha256) == 64 and len(photo_hash) == 16:
            try:
                hashes[sha256] = int(photo_hash, 16)
            except ValueError:
                continue
    return hashes


class HashCache:
    """sha256 -> 64-bit perceptual hash, kept in ``path``; ``seeds`` are other caches, read only.

    Thread-safe; use as a context manager (or call ``close``).
    """

    def __init__(self, path: Path, seeds: Sequence[Path] = ()):
        self._hashes: dict[str, int] = {}
        for seed in seeds:
            self._hashes |= read_hash_cache(seed)
        self._log = CsvLog(path, HASH_CACHE_FIELDS)
        self._hashes |= _valid(self._log.rows)
        self._lock = threading.Lock()

    def __enter__(self) -> HashCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, sha256: str) -> int | None:
        return self._hashes.get(sha256)

    def add(self, sha256: str, photo_hash: int) -> None:
        with self._lock:
            if sha256 not in self._hashes:
                self._hashes[sha256] = photo_hash
                self._log.append({"sha256": sha256, "phash": f"{photo_hash:016x}"})

    def hash_bytes(self, sha256: str, photo_bytes: bytes) -> int:
        """The cached hash, or compute and cache it."""
        cached = self.get(sha256)
        if cached is None:
            cached = perceptual_hash(photo_bytes)
            self.add(sha256, cached)
        return cached

    def hash_examples(self, examples: Sequence[Example],
                      workers: int | None = None) -> list[int | None]:
        """Each example's hash (None: the photo does not decode); new ones computed in threads."""
        missing = list({e.sha256: e for e in examples if self.get(e.sha256) is None}.values())
        if missing:
            log.info("hashing %d of %d photos (the rest are cached)", len(missing), len(examples))
            with ThreadPoolExecutor(workers or min(8, os.cpu_count() or 1)) as pool:
                for done, (example, photo_hash) in enumerate(
                        zip(missing, pool.map(_hash_file, missing), strict=True), 1):
                    if photo_hash is not None:
                        self.add(example.sha256, photo_hash)
                    if done % _LOG_EVERY == 0:
                        log.info("hashed %d of %d photos", done, len(missing))
        return [self.get(e.sha256) for e in examples]

    def close(self) -> None:
        self._log.close()


def _hash_file(example: Example) -> int | None:
    try:
        return perceptual_hash(example.path.read_bytes())
    except (OSError, ImageError) as error:
        log.warning("%s: unreadable: %s", example.path, error)
        return None
