"""Perceptual hashes cached by sha256 in ``phash_cache.csv``, so a rerun decodes only new photos.

The Flickr collector and the data-set build keep one each, in this one format, so either can
seed the other. The cache is a ``CsvLog``: a crash loses at most the row being written.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from model.dataset import Example, perceptual_hash
from model.preprocess import ImageError

log = logging.getLogger(__name__)

HASH_CACHE = "phash_cache.csv"
HASH_CACHE_FIELDS = ("sha256", "phash")
_LOG_EVERY = 1000


class CsvLog:
    """A CSV that only grows, one flushed write a row, so a crash loses at most the last row.

    Rows never span lines (callers collapse newlines), so a torn last line left by a crash is
    recognised (no final newline) and cut off when the file is opened again.
    """

    def __init__(self, path: Path, fields: Sequence[str]):
        self.path, self.fields = path, tuple(fields)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = self._read_repaired()
        self._file = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close)
        if path.stat().st_size == 0:
            self._write(dict(zip(self.fields, self.fields, strict=True)))

    def _read_repaired(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        content = self.path.read_bytes()
        if content and not content.endswith(b"\n"):
            log.warning("%s: cutting off a torn last line", self.path)
            content = content[: content.rfind(b"\n") + 1]
            self.path.write_bytes(content)
        return list(csv.DictReader(io.StringIO(content.decode("utf-8"), newline="")))

    def _write(self, row: dict[str, object]) -> None:
        line = io.StringIO()
        csv.DictWriter(line, self.fields, lineterminator="\n").writerow(row)
        self._file.write(line.getvalue())
        self._file.flush()

    def append(self, row: dict[str, object]) -> None:
        self._write(row)
        self.rows.append({k: str(v) for k, v in row.items()})

    def close(self) -> None:
        self._file.close()


def read_hash_cache(path: Path) -> dict[str, int]:
    """sha256 -> perceptual hash from a cache file, read only; malformed rows are ignored."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return _valid(csv.DictReader(f))


def _valid(rows: Sequence[dict[str, str]] | csv.DictReader) -> dict[str, int]:
    return {row["sha256"]: int(row["phash"], 16) for row in rows
            if len(row.get("sha256") or "") == 64 and len(row.get("phash") or "") == 16}


class HashCache:
    """sha256 -> 64-bit perceptual hash, kept in ``path``; ``seeds`` are other caches, read only.

    Thread-safe; use as a context manager (or call ``close``).
    """

    def __init__(self, path: Path, seeds: Sequence[Path] = ()):
        self._log = CsvLog(path, HASH_CACHE_FIELDS)
        self._hashes: dict[str, int] = {}
        for seed in seeds:
            self._hashes |= read_hash_cache(seed)
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
