"""The Flickr collector end to end: the real flickrapi client and Lite0 predictor against a fake
Flickr on 127.0.0.1 serving real dog photos from ../shared/datasets (never copied here)."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import skimage.data
from PIL import Image

from model.data.dataset import Example, load_examples, write_manifest
from model.data.flickr import (
    CC_LICENCES,
    CollectorError,
    CollectorSettings,
    FlickrCollector,
    RequestPacer,
    flickr_client,
    parse_licences,
)
from model.predictor import Predictor
from tests.fake_flickr import ALWAYS, FakeFlickr, FakePhoto

REPO = Path(__file__).resolve().parents[1]
DOG_FILES = ("n02085620-Chihuahua.jpg", "n02085936-Maltese_dog.jpg", "n02086079-Pekinese.jpg",
             "n02086646-Blenheim_spaniel.jpg", "n02086910-papillon.jpg",
             "n02088094-Afghan_hound.jpg", "n02088238-basset.jpg", "n02088466-bloodhound.jpg",
             "n02088632-bluetick.jpg", "n02090622-borzoi.jpg")
TIMEOUT_S = 0.5
SETTINGS = CollectorSettings(interval_s=0, timeout_s=TIMEOUT_S, attempts=3, backoff_s=0,
                             per_page=5, progress=False)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(warm_up=False)


@pytest.fixture(scope="module")
def dogs(shared_datasets: Path) -> list[bytes]:
    """Real dog photos (about 500 px, like Flickr's medium size) that Lite0 calls dogs."""
    return [(shared_datasets / "imagenet-dogs-121" / name).read_bytes() for name in DOG_FILES]


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def resized(photo: bytes, scale: float, quality: int = 75) -> bytes:
    """A re-encoded, resized copy: a near-duplicate, not a byte-identical one."""
    image = Image.open(io.BytesIO(photo))
    return jpeg(image.resize((int(image.width * scale), int(image.height * scale))), quality)


def cat() -> bytes:
    return jpeg(Image.fromarray(skimage.data.chelsea()))


def photo(photo_id: str, image: bytes | None, **kwargs) -> FakePhoto:
    """A FakePhoto whose advertised size is the image's own where it has one."""
    try:
        kwargs.setdefault("width", Image.open(io.BytesIO(image)).width)
        kwargs.setdefault("height", Image.open(io.BytesIO(image)).height)
    except Exception:  # noqa: BLE001 (broken or absent images keep the default size)
        pass
    return FakePhoto(photo_id, image, **kwargs)


def collector(fake: FakeFlickr, predictor, out: Path, **settings) -> FlickrCollector:
    settings = CollectorSettings(**(SETTINGS.__dict__ | settings))
    client = flickr_client("test-key", "test-secret", rest_url=fake.rest_url,
                           timeout_s=TIMEOUT_S)
    return FlickrCollector(client, predictor, out, settings)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_collection(dogs: list[bytes], predictor: Predictor, tmp_path: Path) -> None:
    photos = [
        photo("101", dogs[0], title="Jindo\nin the snow", ownername="Kim  Min-ji"),
        photo("102", dogs[1], failures=2),  # 500, 500, then the photo: kept
        photo("103", dogs[2], failures=ALWAYS),  # download_failed after 3 attempts
        photo("104", dogs[3], delay_s=4 * TIMEOUT_S),  # times out 3 times: download_failed
        photo("105", dogs[4][:3000]),  # a truncated JPEG: not_an_image
        photo("106", jpeg(Image.open(io.BytesIO(dogs[5])).resize((50, 50)))),  # too_small
        photo("107", cat()),  # not_a_dog
        photo("108", resized(dogs[0], 0.8)),  # near_duplicate of 101
        photo("109", dogs[6], license=0),  # All Rights Reserved: never even listed
        photo("110", None),  # no_url
        photo("111", dogs[7], size="z", license=9),  # only a 640 px URL: kept, CC0
        photo("112", dogs[8], license=2),
        photo("113", dogs[9], license=1),
    ]
    out = tmp_path / "flickr"
    with FakeFlickr(photos, page_failures={2: 1}) as fake:
        report = collector(fake, predictor, out).collect(
            "jindo", ["Jindo dog", "진돗개"], max_photos=50, name="Korean Jindo")

    kept_ids = ["101", "102", "111", "112", "113"]
    assert report.kept == 5 and report.kept_before == 0
    assert report.dropped == Counter(download_failed=2, not_an_image=1, too_small=1,
                                     not_a_dog=1, near_duplicate=1, no_url=1)
    assert report.pages_failed == 0
    assert report.summary().startswith("jindo: kept 5 new photos (5 in all), dropped 7 (")

    # The API: signed calls, the default licence filter and extras on every page, page 2 retried.
    assert fake.signed
    searches = fake.searches()
    assert [s["text"] for s in searches] == ["Jindo dog"] * 4 + ["진돗개"] * 3
    assert [int(s["page"]) for s in searches] == [1, 2, 2, 3, 1, 2, 3]
    for search in searches:
        assert search["license"] == "1,2,3,4,5,6,9"
        assert {"url_m", "url_z", "url_c", "owner_name", "license"} <= set(
            search["extras"].split(","))
        assert search["per_page"] == "5" and search["format"] == "json"
    # The images: retried on 500s and timeouts, each photo fetched once per attempt at most.
    assert fake.image_requests == Counter({"101": 1, "102": 3, "103": 3, "104": 3, "105": 1,
                                           "106": 1, "107": 1, "108": 1, "111": 1, "112": 1,
                                           "113": 1})
    assert fake.image_requests["109"] == 0

    folder = out / "jindo"
    served = {p.id: p.image for p in photos}
    assert sorted(p.name for p in folder.glob("*.jpg")) == [f"{i}.jpg" for i in kept_ids]
    for photo_id in kept_ids:
        assert (folder / f"{photo_id}.jpg").read_bytes() == served[photo_id]

    attribution = csv_rows(folder / "attribution.csv")
    assert [r["photo_id"] for r in attribution] == kept_ids
    first = attribution[0]
    assert first == {"photo_id": "101", "owner": "Kim Min-ji", "licence": "CC BY 2.0",
                     "title": "Jindo in the snow",
                     "source_url": "https://www.flickr.com/photos/12345678@N00/101",
                     "image_url": f"{fake.url}/65535/101_abc123_m.jpg",
                     "sha256": sha256(dogs[0])}
    assert attribution[2]["image_url"].endswith("111_abc123_z.jpg")
    assert [r["licence"] for r in attribution[2:]] == ["CC0 1.0", "CC BY-NC 2.0",
                                                      "CC BY-NC-SA 2.0"]

    dropped = {r["photo_id"]: r for r in csv_rows(folder / "dropped.csv")}
    assert {i: r["reason"] for i, r in dropped.items()} == {
        "103": "download_failed", "104": "download_failed", "105": "not_an_image",
        "106": "too_small", "107": "not_a_dog", "108": "near_duplicate", "110": "no_url"}
    assert dropped["108"]["detail"] == f"of {folder / '101.jpg'}"
    assert dropped["106"]["detail"] == "50x50 px"

    examples = load_examples(folder / "manifest.csv")
    assert [e.path.name for e in examples] == [f"{i}.jpg" for i in kept_ids]
    for example in examples:
        assert (example.label, example.name, example.source, example.split) == (
            "jindo", "Korean Jindo", "flickr", "")
        assert example.sha256 == sha256(example.path.read_bytes())
    assert examples[2].licence == "CC0 1.0"
    assert len(csv_rows(out / "phash_cache.csv")) == 6  # the dogs kept, and 108


class InterruptAfter:
    """The real predictor, but Ctrl-C arrives during batch ``batches + 1``."""

    def __init__(self, predictor: Predictor, batches: int):
        self.predictor, self.batches = predictor, batches

    def classify(self, photos: Sequence[bytes]) -> list:
        if self.batches == 0:
            raise KeyboardInterrupt
        self.batches -= 1
        return self.predictor.classify(photos)


@pytest.mark.reliability
def test_resume_after_interruption(dogs: list[bytes], predictor: Predictor,
                                   tmp_path: Path) -> None:
    photos = [photo("1", dogs[0]), photo("2", dogs[1]), photo("3", cat()), photo("4", dogs[2]),
              photo("5", dogs[3], failures=ALWAYS)]
    out = tmp_path / "flickr"
    folder = out / "jindo"
    with FakeFlickr(photos) as fake:
        interrupted = collector(fake, InterruptAfter(predictor, 1), out, batch_size=2)
        with pytest.raises(KeyboardInterrupt):
            interrupted.collect("jindo", ["jindo"], max_photos=50)
        assert [e.path.name for e in load_examples(folder / "manifest.csv")] == ["1.jpg",
                                                                                 "2.jpg"]
        # A crash while writing a row leaves a torn line; the next run cuts it off.
        with open(folder / "attribution.csv", "a") as f:
            f.write("99,Someone,CC BY 2.0,half a ro")

        report = collector(fake, predictor, out, batch_size=2).collect(
            "jindo", ["jindo"], max_photos=50)
        assert (report.kept_before, report.kept, report.skipped_known) == (2, 1, 2)
        assert report.dropped == Counter(not_a_dog=1, download_failed=1)
        # 1 and 2 were kept before the interruption: not fetched again; 3 and 4 were in flight.
        assert fake.image_requests == Counter({"1": 1, "2": 1, "3": 2, "4": 2, "5": 3})

        files = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
        again = collector(fake, predictor, out).collect("jindo", ["jindo"], max_photos=50)
        assert (again.kept_before, again.kept, again.skipped_known) == (3, 0, 5)
        assert not again.dropped
        assert fake.image_requests == Counter({"1": 1, "2": 1, "3": 2, "4": 2, "5": 3})
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()
             if p.suffix == ".jpg"}
    assert after == {name: v for name, v in files.items() if name.endswith(".jpg")}
    assert sorted(after) == ["1.jpg", "2.jpg", "4.jpg"]
    assert [r["photo_id"] for r in csv_rows(folder / "attribution.csv")] == ["1", "2", "4"]
    assert len(load_examples(folder / "manifest.csv")) == 3


def test_max_is_respected_across_pages(dogs: list[bytes], predictor: Predictor,
                                       tmp_path: Path) -> None:
    photos = [photo(str(i), dog) for i, dog in enumerate(dogs[:8])]
    out = tmp_path / "flickr"
    with FakeFlickr(photos) as fake:
        report = collector(fake, predictor, out, per_page=3).collect("jindo", ["jindo"], 4)
        assert report.kept == 4
        assert [int(s["page"]) for s in fake.searches()] == [1, 2]  # page 3 never asked for
        assert set(fake.image_requests) == {"0", "1", "2", "3"}

        more = collector(fake, predictor, out, per_page=3).collect("jindo", ["jindo"], 6)
        assert (more.kept_before, more.kept) == (4, 2)
        assert set(fake.image_requests) == {"0", "1", "2", "3", "4", "5"}
        assert max(fake.image_requests.values()) == 1
    assert len(list((out / "jindo").glob("*.jpg"))) == 6
    assert len(load_examples(out / "jindo" / "manifest.csv")) == 6


def test_near_duplicates_of_other_data_sets_and_breeds(
        dogs: list[bytes], predictor: Predictor, shared_datasets: Path, tmp_path: Path) -> None:
    # --against a class folder holding a resized copy of dog 0, and a manifest naming the
    # shared file of dog 1 where it lies.
    class_folders = tmp_path / "against"
    (class_folders / "Chihuahua").mkdir(parents=True)
    (class_folders / "Chihuahua" / "c.jpg").write_bytes(resized(dogs[0], 0.7))
    shared_dog = shared_datasets / "imagenet-dogs-121" / DOG_FILES[1]
    manifest = tmp_path / "stanford.csv"
    write_manifest([Example(shared_dog, sha256(dogs[1]), "n02085936", "Maltese dog",
                            "stanford", "", "train")], manifest)
    out = tmp_path / "flickr"
    photos = [photo("1", dogs[0]), photo("2", dogs[1]), photo("3", dogs[2])]
    with FakeFlickr(photos) as fake:
        report = collector(fake, predictor, out).collect(
            "jindo", ["jindo"], 50, against=[class_folders, manifest])
    assert report.kept == 1 and report.dropped == Counter(near_duplicate=2)
    details = {r["photo_id"]: r["detail"] for r in csv_rows(out / "jindo" / "dropped.csv")}
    assert details == {"1": f"of {class_folders / 'Chihuahua' / 'c.jpg'}",
                       "2": f"of {shared_dog.resolve()}"}

    # Another breed's run refuses a copy of a photo already kept for jindo (seeded from --out).
    with FakeFlickr([photo("7", resized(dogs[2], 0.9)), photo("8", dogs[3])]) as fake:
        other = collector(fake, predictor, out).collect("sapsali", ["sapsali"], 50)
    assert other.kept == 1 and other.dropped == Counter(near_duplicate=1)
    assert csv_rows(out / "sapsali" / "dropped.csv")[0]["detail"] == (
        f"of {out / 'jindo' / '3.jpg'}")
    # Every photo hashed once: 2 against, 3 served for jindo (one the same bytes as the
    # manifest's), 2 served for sapsali.
    assert len(csv_rows(out / "phash_cache.csv")) == 6


def test_licence_filter_any_asks_for_no_licence(dogs: list[bytes], predictor: Predictor,
                                               tmp_path: Path) -> None:
    with FakeFlickr([photo("1", dogs[0], license=0), photo("2", dogs[1])]) as fake:
        report = collector(fake, predictor, tmp_path).collect("jindo", ["jindo"], 5,
                                                              licences=None)
    assert report.kept == 2 and "license" not in fake.searches()[0]
    assert csv_rows(tmp_path / "jindo" / "attribution.csv")[0]["licence"] == (
        "All Rights Reserved")


def test_a_page_that_keeps_failing_is_skipped(dogs: list[bytes], predictor: Predictor,
                                              tmp_path: Path) -> None:
    photos = [photo(str(i), dog) for i, dog in enumerate(dogs[:5])]
    with FakeFlickr(photos, page_failures={2: 3}) as fake:
        report = collector(fake, predictor, tmp_path, per_page=2).collect("jindo", ["j"], 50)
        assert [int(s["page"]) for s in fake.searches()] == [1, 2, 2, 2, 3]
    assert (report.kept, report.pages_failed) == (3, 1)
    assert set(fake.image_requests) == {"0", "1", "4"}
    assert report.summary().endswith(", 1 search pages failed")


def test_a_refused_search_stops_the_run(predictor: Predictor, tmp_path: Path) -> None:
    with FakeFlickr([], api_key="another-key") as fake, \
            pytest.raises(CollectorError, match="Invalid API Key"):
        collector(fake, predictor, tmp_path).collect("jindo", ["jindo"], 5)
    assert len(fake.api_calls) == 1 and not fake.signed


def test_parse_licences() -> None:
    assert parse_licences("cc") == CC_LICENCES == (1, 2, 3, 4, 5, 6, 9)
    assert parse_licences("any") is None
    assert parse_licences("4, 9") == (4, 9)
    for bad in ("4,x", "42"):
        with pytest.raises(ValueError):
            parse_licences(bad)


def test_request_pacer_spaces_requests() -> None:
    now, slept = [100.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = RequestPacer(1.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait()
    pacer.wait()
    now[0] += 0.25
    pacer.wait()
    now[0] += 5
    pacer.wait()
    assert slept == [1.0, 0.75]


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "collect_flickr.py"), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)


def without_flickr_keys() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FLICKR_")}


def test_cli_without_keys_exits_2(tmp_path: Path) -> None:
    result = run_cli("--breed", "jindo", "--query", "Jindo dog", "--out", str(tmp_path),
                     env=without_flickr_keys())
    assert result.returncode == 2
    assert result.stderr.startswith("error: FLICKR_API_KEY and FLICKR_API_SECRET not set")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert not any(tmp_path.iterdir())


def test_cli_collects_from_flickr_rest_url(dogs: list[bytes], tmp_path: Path,
                                           make_env: Callable[..., dict[str, str]]) -> None:
    with FakeFlickr([photo("1", dogs[0]), photo("2", cat())]) as fake:
        result = run_cli("--breed", "Jindo", "--query", "Jindo dog", "--max", "5",
                         "--out", str(tmp_path), "--interval", "0", "--timeout", "5",
                         env=make_env(fake))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "jindo: kept 1 new photos (1 in all), dropped 1 (not_a_dog 1), skipped 0 already seen")
    assert "not_a_dog" in result.stdout and fake.searches()[0]["license"] == "1,2,3,4,5,6,9"
    assert (tmp_path / "jindo" / "1.jpg").read_bytes() == dogs[0]


def test_cli_fails_when_flickr_cannot_be_reached(tmp_path: Path,
                                                 make_env: Callable[..., dict[str, str]]
                                                 ) -> None:
    with FakeFlickr([]) as fake:
        env = make_env(fake)  # then the server goes away: nothing listens on its port
    result = run_cli("--breed", "jindo", "--query", "Jindo dog", "--max", "5",
                     "--out", str(tmp_path), "--interval", "0", "--timeout", "1", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == ("error: 1 search page(s) failed (is Flickr "
                                              "reachable?): run the same command again to "
                                              "fetch them")
    assert "Traceback" not in result.stderr


@pytest.fixture
def make_env() -> Callable[[FakeFlickr], dict[str, str]]:
    def make(fake: FakeFlickr) -> dict[str, str]:
        return without_flickr_keys() | {"FLICKR_API_KEY": fake.api_key,
                                        "FLICKR_API_SECRET": "test-secret",
                                        "FLICKR_REST_URL": fake.rest_url}
    return make
