"""Collect photos of a breed from Flickr: search, download, check, keep with attribution.

``FlickrCollector.collect`` pages through ``flickr.photos.search`` for each query (Creative
Commons licences only by default), downloads each photo's medium-size image and keeps it only
if it decodes, is not tiny, the backbone says it is a dog, and it is not a near-duplicate of a
photo already collected (any breed under ``out``) or of any ``against`` data set. Layout::

    <out>/<breed>/<photo_id>.jpg      the bytes as downloaded
    <out>/<breed>/attribution.csv     ATTRIBUTION_FIELDS: who to credit, under which licence
    <out>/<breed>/dropped.csv         DROPPED_FIELDS: photos refused, and why
    <out>/<breed>/manifest.csv        model/data/dataset.py's manifest of the kept photos
    <out>/phash_cache.csv             sha256 -> perceptual hash, so reruns are fast

Every request (API page or image) waits its turn on one ``RequestPacer`` and is retried with
exponential backoff on HTTP 5xx, connection errors and timeouts. Photo ids already in
attribution.csv or dropped.csv are skipped without any request, so an interrupted run resumes
where it stopped.
The Flickr client is the real ``flickrapi.FlickrAPI`` (parsed-json); ``FLICKR_REST_URL``
points it at another REST endpoint (a local fake in tests, or a mirror).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import flickrapi
import requests
from tqdm import tqdm

from model.data.csv_log import CsvLog
from model.data.dataset import (
    Example,
    NearDuplicates,
    load_examples,
    read_manifest,
    sha256_hex,
    slug,
    write_manifest,
)
from model.data.hash_cache import HASH_CACHE, HashCache
from model.download import TRANSIENT_FAILURES, DownloadError, download
from model.preprocess import ImageError, load_rgb

if TYPE_CHECKING:
    from model.answers import Answer

log = logging.getLogger(__name__)

API_KEY_ENV, API_SECRET_ENV = "FLICKR_API_KEY", "FLICKR_API_SECRET"
REST_URL_ENV = "FLICKR_REST_URL"  # another REST endpoint: a local fake in tests, or a mirror

# Flickr's licence ids (flickr.photos.licenses.getInfo) and the short names we credit them by.
LICENCES: dict[int, str] = {
    0: "All Rights Reserved",
    1: "CC BY-NC-SA 2.0",
    2: "CC BY-NC 2.0",
    3: "CC BY-NC-ND 2.0",
    4: "CC BY 2.0",
    5: "CC BY-SA 2.0",
    6: "CC BY-ND 2.0",
    7: "No known copyright restrictions",
    8: "United States Government Work",
    9: "CC0 1.0",
    10: "Public Domain Mark 1.0",
}
CC_LICENCES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 9)  # the default filter: Creative Commons only

IMAGE_SIZES = ("url_m", "url_z", "url_c")  # 500 px, then 640 px, then 800 px on the long side
SEARCH_EXTRAS = ",".join([*IMAGE_SIZES, "owner_name", "license"])  # titles come without asking
DROP_REASONS = ("no_url", "download_failed", "not_an_image", "too_small", "not_a_dog",
                "near_duplicate")
ATTRIBUTION_FIELDS = ("photo_id", "owner", "licence", "title", "source_url", "image_url",
                      "sha256")
DROPPED_FIELDS = ("photo_id", "reason", "detail")

T = TypeVar("T")


class Classifier(Protocol):
    """What the collector needs of ``model.predictor.Predictor``."""

    def classify(self, photos: Sequence[bytes]) -> list[Answer | ImageError]: ...


class CollectorError(RuntimeError):
    """A problem that stops the whole collection (bad keys, a refused search); a one-liner."""


class MissingCredentialsError(CollectorError):
    """FLICKR_API_KEY or FLICKR_API_SECRET is not set."""


class TransientError(Exception):
    """A failure worth retrying: an HTTP 5xx, a timeout, a lost connection, a garbled answer."""


TRANSIENT_ERRORS = (TransientError, *TRANSIENT_FAILURES)


@dataclass(frozen=True)
class CollectorSettings:
    """Knobs with production defaults; tests turn the waiting off."""

    interval_s: float = 1.0  # at least this long between two requests (API or image)
    timeout_s: float = 20.0  # per request
    attempts: int = 4  # tries per request before the page or photo is skipped
    backoff_s: float = 1.0  # the first retry's delay; doubles on each further retry
    per_page: int = 100  # photos per search page (Flickr allows up to 500)
    batch_size: int = 16  # photos checked by the predictor at once
    min_side: int = 128  # pixels; shorter photos are "too_small"
    progress: bool = True  # a tqdm bar of kept photos on stderr

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.batch_size < 1 or not 1 <= self.per_page <= 500:
            raise ValueError(f"attempts and batch_size must be >= 1, per_page 1-500: {self}")


@dataclass
class CollectionReport:
    """What one run did: photos kept, dropped by reason, skipped as already known."""

    breed: str
    kept_before: int = 0  # kept by earlier runs
    kept: int = 0  # kept by this run
    dropped: Counter[str] = field(default_factory=Counter)
    skipped_known: int = 0  # ids in attribution.csv or dropped.csv: no request made
    pages_failed: int = 0  # search pages given up on after retries

    def summary(self) -> str:
        """One line: kept and dropped counts."""
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(self.dropped.items()))
        line = (f"{self.breed}: kept {self.kept} new photos ({self.kept_before + self.kept} in "
                f"all), dropped {sum(self.dropped.values())}")
        line += f" ({reasons})" if reasons else ""
        line += f", skipped {self.skipped_known} already seen"
        return line + (f", {self.pages_failed} search pages failed" if self.pages_failed else "")

    def table(self) -> str:
        """Dropped photos by reason, one reason a line."""
        width = max(map(len, DROP_REASONS))
        return "\n".join(f"  {reason:<{width}}  {self.dropped[reason]:>5}"
                         for reason in DROP_REASONS)


@dataclass(frozen=True)
class FlickrPhoto:
    """One search result: what we need to download it and to credit its owner."""

    id: str
    owner: str  # the owner's NSID, as in the photo page's URL
    owner_name: str
    title: str
    licence: str  # a name from LICENCES
    image_url: str | None

    @classmethod
    def from_api(cls, item: dict) -> FlickrPhoto:
        """From an entry of ``photos.search``'s ``photo`` list (with SEARCH_EXTRAS)."""
        licence_id = str(item.get("license", ""))
        licence = (LICENCES.get(int(licence_id), f"Flickr licence {licence_id}")
                   if licence_id.isdigit() else "unknown")
        return cls(id=str(item["id"]), owner=str(item.get("owner", "")),
                   owner_name=_one_line(item.get("ownername") or item.get("owner", "")),
                   title=_one_line(item.get("title", "")), licence=licence,
                   image_url=next((item[k] for k in IMAGE_SIZES if item.get(k)), None))

    @property
    def page_url(self) -> str:
        return f"https://www.flickr.com/photos/{self.owner}/{self.id}"


def _one_line(text: object) -> str:
    """Collapse whitespace: a CSV row must never span lines (see ``CsvLog``)."""
    return " ".join(str(text).split())


def parse_licences(spec: str) -> tuple[int, ...] | None:
    """``cc`` -> CC_LICENCES, ``any`` -> None (no filter), ``4,5,9`` -> (4, 5, 9)."""
    spec = spec.strip().lower()
    if spec == "cc":
        return CC_LICENCES
    if spec == "any":
        return None
    try:
        ids = tuple(int(part) for part in spec.split(","))
    except ValueError:
        message = f"licence must be cc, any or Flickr licence ids like 4,5,9: {spec!r}"
        raise ValueError(message) from None
    unknown = sorted(set(ids) - set(LICENCES))
    if unknown:
        raise ValueError(f"unknown Flickr licence ids {unknown}; known: {sorted(LICENCES)}")
    return ids


def credentials_from_env(env: dict[str, str] | None = None) -> tuple[str, str]:
    """(key, secret) from FLICKR_API_KEY / FLICKR_API_SECRET, or MissingCredentialsError."""
    env = os.environ if env is None else env
    missing = [name for name in (API_KEY_ENV, API_SECRET_ENV) if not env.get(name)]
    if missing:
        raise MissingCredentialsError(
            f"{' and '.join(missing)} not set: get a key at "
            "https://www.flickr.com/services/apps/create/ and export both variables")
    return env[API_KEY_ENV], env[API_SECRET_ENV]


def flickr_client(api_key: str, api_secret: str, rest_url: str | None = None,
                  timeout_s: float = 20.0) -> flickrapi.FlickrAPI:
    """The real flickrapi client: signed calls, parsed JSON, no token cache on disk.

    ``rest_url`` (or else $FLICKR_REST_URL) replaces Flickr's REST endpoint, for tests and
    mirrors; flickrapi reads ``self.REST_URL`` on every call.
    """
    client = flickrapi.FlickrAPI(api_key, api_secret, format="parsed-json", store_token=False,
                                 cache=False, timeout=timeout_s)
    rest_url = rest_url or os.environ.get(REST_URL_ENV)
    if rest_url:
        client.REST_URL = rest_url
    return client


class RequestPacer:
    """Spaces requests ``interval_s`` apart, shared by API calls and image downloads.

    Pacing, not flood control: no request is refused, each one waits its turn.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval_s = interval_s
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go out."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval_s


def with_retries(call: Callable[[], T], what: str, attempts: int, backoff_s: float,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, retried on TRANSIENT_ERRORS after backoff_s, 2·backoff_s, …; the last
    failure is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TRANSIENT_ERRORS as error:
            if attempt == attempts:
                raise
            delay = backoff_s * 2 ** (attempt - 1)
            log.warning("%s: %s; retry %d of %d in %.1f s", what, error, attempt,
                        attempts - 1, delay)
            sleep(delay)
    raise AssertionError("unreachable")


def _http_status(error: flickrapi.FlickrError) -> int | None:
    """flickrapi reports a non-200 reply only in the message: 'Status code 502 received'."""
    match = re.search(r"Status code (\d{3})", str(error))
    return int(match.group(1)) if match else None


class BreedFolder:
    """``<out>/<slug>/``: the kept photos, attribution.csv, dropped.csv and manifest.csv."""

    def __init__(self, root: Path, slug: str, name: str):
        self.root, self.slug, self.name = root, slug, name
        self.attribution = CsvLog(root / "attribution.csv", ATTRIBUTION_FIELDS)
        self.dropped = CsvLog(root / "dropped.csv", DROPPED_FIELDS)

    def known_ids(self) -> set[str]:
        """Photo ids kept or dropped by earlier runs."""
        return {row["photo_id"] for row in self.attribution.rows + self.dropped.rows}

    @property
    def kept_count(self) -> int:
        return len(self.attribution.rows)

    def keep(self, photo: FlickrPhoto, photo_bytes: bytes, sha256: str) -> None:
        """The photo first (atomically), then its attribution row."""
        path = self.root / f"{photo.id}.jpg"
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(photo_bytes)
        os.replace(partial, path)
        self.attribution.append({
            "photo_id": photo.id, "owner": photo.owner_name, "licence": photo.licence,
            "title": photo.title, "source_url": photo.page_url, "image_url": photo.image_url,
            "sha256": sha256})

    def drop(self, photo_id: str, reason: str, detail: str) -> None:
        self.dropped.append({"photo_id": photo_id, "reason": reason,
                             "detail": _one_line(detail)})

    def write_manifest(self) -> None:
        """Rewrite manifest.csv from attribution.csv (to a temporary file, then replace)."""
        examples = [Example(self.root / f"{row['photo_id']}.jpg", row["sha256"], self.slug,
                            self.name, "flickr", row["licence"], "")
                    for row in self.attribution.rows]
        partial = self.root / "manifest.csv.part"
        write_manifest(examples, partial)
        os.replace(partial, self.root / "manifest.csv")

    def close(self) -> None:
        self.attribution.close()
        self.dropped.close()


class FlickrCollector:
    """Collects photos of breeds from Flickr into ``out`` (see the module docstring)."""

    def __init__(self, flickr: flickrapi.FlickrAPI, predictor: Classifier, out: Path,
                 settings: CollectorSettings | None = None,
                 http: requests.Session | None = None):
        self.flickr, self.predictor, self.out = flickr, predictor, Path(out)
        self.settings = settings or CollectorSettings()
        self.http = http or requests.Session()
        self.pacer = RequestPacer(self.settings.interval_s)

    def collect(self, breed: str, queries: Sequence[str], max_photos: int,
                name: str | None = None, licences: Sequence[int] | None = CC_LICENCES,
                against: Sequence[Path] = ()) -> CollectionReport:
        """Keep up to ``max_photos`` photos of ``breed`` in all (earlier runs included)."""
        label = slug(breed)
        folder = BreedFolder(self.out / label, label, name or breed.replace("-", " ").title())
        hashes = HashCache(self.out / HASH_CACHE)
        try:
            folder.write_manifest()  # in step with attribution.csv before it seeds the index
            index = self._seed_index(hashes, against)
            report = CollectionReport(label, kept_before=folder.kept_count)
            candidates = self._candidates(queries, licences, folder.known_ids(), report)
            with tqdm(total=max_photos, initial=min(folder.kept_count, max_photos),
                      unit="photo", desc=label, disable=not self.settings.progress) as bar:
                while (wanted := max_photos - folder.kept_count) > 0:
                    batch = _take(candidates, min(wanted, self.settings.batch_size))
                    if not batch:
                        break
                    kept = self._check_batch(batch, folder, index, hashes, report)
                    bar.update(kept)
            folder.write_manifest()
        finally:
            folder.close()
            hashes.close()
        log.info("%s", report.summary())
        return report

    # -- search ----------------------------------------------------------------------------

    def _candidates(self, queries: Sequence[str], licences: Sequence[int] | None,
                    known: set[str], report: CollectionReport) -> Iterator[FlickrPhoto]:
        """Photos not seen before, query by query and page by page, fetched lazily."""
        seen = set(known)
        for query in queries:
            for item in self._walk(query, licences, report):
                photo_id = str(item["id"])
                if photo_id in seen:
                    if photo_id in known:
                        report.skipped_known += 1
                    continue
                seen.add(photo_id)
                yield FlickrPhoto.from_api(item)

    def _walk(self, query: str, licences: Sequence[int] | None,
              report: CollectionReport) -> Iterator[dict]:
        """Every result of one query; a page that keeps failing is skipped and counted."""
        page, pages = 1, None
        while pages is None or page <= pages:
            try:
                result = self._search_page(query, licences, page)
            except TRANSIENT_ERRORS as error:
                report.pages_failed += 1
                log.warning("search %r page %d skipped: %s", query, page, error)
                if pages is None:
                    return  # without the first page we do not know how many there are
                page += 1
                continue
            pages = int(result["pages"])
            yield from result["photo"]
            page += 1

    def _search_page(self, query: str, licences: Sequence[int] | None, page: int) -> dict:
        params: dict[str, object] = {
            "text": query, "extras": SEARCH_EXTRAS, "per_page": self.settings.per_page,
            "page": page, "media": "photos", "content_type": 1, "sort": "relevance"}
        if licences is not None:
            params["license"] = ",".join(map(str, licences))
        return self._retried(lambda: self._api_search(params), f"search {query!r} page {page}")

    def _api_search(self, params: dict[str, object]) -> dict:
        self.pacer.wait()
        log.debug("photos.search %s", params)
        try:
            return self.flickr.photos.search(**params)["photos"]
        except flickrapi.FlickrError as error:
            status = _http_status(error)
            if status is not None and status >= 500:
                raise TransientError(f"HTTP {status}") from error
            raise CollectorError(f"Flickr refused the search: {error}") from error
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise TransientError(f"unreadable search response: {error!r}") from error

    # -- download and checks ---------------------------------------------------------------

    def _retried(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, what, self.settings.attempts, self.settings.backoff_s)

    def _download(self, url: str) -> bytes:
        """The image's bytes, retried on transient failures; DownloadError otherwise."""
        try:
            return self._retried(lambda: self._get(url), f"download {url}")
        except TransientError as error:
            raise DownloadError(str(error)) from error

    def _get(self, url: str) -> bytes:
        self.pacer.wait()
        try:
            return download(url, self.settings.timeout_s, session=self.http)
        except DownloadError as error:
            if error.transient:
                raise TransientError(str(error)) from error
            raise

    def _image_problem(self, photo_bytes: bytes) -> tuple[str, str] | None:
        """("not_an_image" | "too_small", detail), or None for a usable photo."""
        try:
            image = load_rgb(photo_bytes, min_side=self.settings.min_side)
        except ImageError as error:
            return "not_an_image", str(error)
        if min(image.size) < self.settings.min_side:
            return "too_small", f"{image.width}x{image.height} px"
        return None

    def _check_batch(self, batch: Sequence[FlickrPhoto], folder: BreedFolder,
                     index: NearDuplicates, hashes: HashCache,
                     report: CollectionReport) -> int:
        """Download and check each photo; keep the good ones. Returns how many were kept."""

        def drop(photo: FlickrPhoto, reason: str, detail: str) -> None:
            log.info("photo %s dropped: %s (%s)", photo.id, reason, detail)
            folder.drop(photo.id, reason, detail)
            report.dropped[reason] += 1

        readable: list[tuple[FlickrPhoto, bytes]] = []
        for photo in batch:
            if not photo.image_url:
                drop(photo, "no_url", "no url_m, url_z or url_c in the search result")
                continue
            try:
                photo_bytes = self._download(photo.image_url)
            except DownloadError as error:
                drop(photo, "download_failed", str(error))
                continue
            problem = self._image_problem(photo_bytes)
            if problem:
                drop(photo, *problem)
            else:
                readable.append((photo, photo_bytes))
        answers = self.predictor.classify([b for _, b in readable]) if readable else []
        kept = 0
        for (photo, photo_bytes), answer in zip(readable, answers, strict=True):
            if isinstance(answer, ImageError):
                drop(photo, "not_an_image", str(answer))
                continue
            if not answer.is_dog:
                drop(photo, "not_a_dog", f"dog probability {answer.dog_probability:.2f}")
                continue
            sha256 = sha256_hex(photo_bytes)
            photo_hash = hashes.hash_bytes(sha256, photo_bytes)
            duplicate_of = index.find(photo_hash)
            if duplicate_of is not None:
                drop(photo, "near_duplicate", f"of {duplicate_of}")
                continue
            folder.keep(photo, photo_bytes, sha256)
            index.add(photo_hash, str(folder.root / f"{photo.id}.jpg"))
            report.kept += 1
            kept += 1
        if kept:
            folder.write_manifest()
        return kept

    # -- the near-duplicate index ----------------------------------------------------------

    def _seed_index(self, hashes: HashCache, against: Sequence[Path]) -> NearDuplicates:
        """Hashes of every breed collected under ``out`` and of every ``against`` data set."""
        examples: dict[Path, Example] = {}
        for manifest in sorted(self.out.glob("*/manifest.csv")):
            examples |= {e.path: e for e in read_manifest(manifest)}
        for data in against:
            examples |= {e.path: e for e in load_examples(Path(data))}
        index = NearDuplicates()
        for path, photo_hash in zip(examples, hashes.hash_examples(list(examples.values())),
                                    strict=True):
            if photo_hash is not None:
                index.add(photo_hash, str(path))
        log.info("near-duplicate index: %d photos", len(examples))
        return index


def _take(items: Iterator[T], count: int) -> list[T]:
    """The next ``count`` items (fewer at the end), pulling no more than that."""
    taken: list[T] = []
    for item in items:
        taken.append(item)
        if len(taken) == count:
            break
    return taken

