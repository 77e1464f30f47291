"""The classify command end to end: real photos, a bad file, a missing file and a URL."""

import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.advice import ADVICE
from model.answers import Answer, BreedGuess
from model.classify import format_table
from model.evaluation.advice import degrade
from model.evaluation.several_dogs import LAYOUTS, composite

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def photo_server(shared_datasets: Path):
    """Serve imagenet-dogs-121 over HTTP on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(shared_datasets / "imagenet-dogs-121"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_classify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "classify.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_json_lines_for_files_urls_and_failures(shared_datasets: Path, photo_server: str,
                                                tmp_path: Path) -> None:
    dogs = shared_datasets / "imagenet-dogs-121"
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("this is not a photo")
    result = run_classify("--json", "--top-k", "3", str(dogs / "n02085620-Chihuahua.jpg"),
                          str(not_a_photo), str(tmp_path / "missing.jpg"),
                          f"{photo_server}/n02111277-Newfoundland.jpg", f"{photo_server}/nope.jpg")

    assert result.returncode == 1  # some inputs failed, the rest still ran
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(dogs / "n02085620-Chihuahua.jpg"),
                                               f"{photo_server}/n02111277-Newfoundland.jpg"]
    assert [line["predictions"][0]["label"] for line in lines] == ["n02085620", "n02111277"]
    for line in lines:
        assert set(line) >= {"path", "is_dog", "dog_probability", "mixed", "predictions", "dogs",
                             "advice"}
        assert line["is_dog"] is True and len(line["predictions"]) == 3
        probabilities = [p["probability"] for p in line["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1
        assert line["advice"] is None
        (dog,) = line["dogs"]  # one dog a photo, whose answer is the photo's
        left, top, right, bottom = dog["box"]
        assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1
        assert dog["share"] == pytest.approx((right - left) * (bottom - top), abs=1e-3)
        assert dog["predictions"] == line["predictions"]
    errors = result.stderr.splitlines()
    assert any("notes.jpg" in e and "not an image" in e for e in errors)
    # Each error names its input once, then says why.
    assert f"error: {tmp_path / 'missing.jpg'}: cannot read it: No such file or directory" in errors
    assert f"error: {photo_server}/nope.jpg: cannot download it: HTTP 404 File not found" in errors
    assert "Traceback" not in result.stderr


def test_json_lists_each_of_two_dogs_and_no_dog_for_a_cat(shared_datasets: Path,
                                                           tmp_path: Path) -> None:
    images = shared_datasets / "dogs-dev" / "Images"
    two = composite((images / "n02099601-golden_retriever" / "n02099601_10.jpg").read_bytes(),
                    (images / "n02111889-Samoyed" / "n02111889_1.jpg").read_bytes(), LAYOUTS[0])
    (tmp_path / "two.jpg").write_bytes(two)
    data = pytest.importorskip("skimage.data")
    Image.fromarray(data.chelsea()).save(tmp_path / "cat.png")
    dark_photo(shared_datasets, tmp_path / "dark.jpg")
    result = run_classify("--json", str(tmp_path / "two.jpg"), str(tmp_path / "cat.png"),
                          str(tmp_path / "dark.jpg"))
    assert result.returncode == 0
    cat, dark, two_dogs = sorted((json.loads(line) for line in result.stdout.splitlines()),
                                 key=lambda line: line["path"])
    assert cat["is_dog"] is False and cat["dogs"] == []
    assert cat["advice"] == ADVICE["no dog"] and dark["advice"] == ADVICE["dark"]
    names = [dog["predictions"][0]["name"] for dog in sorted(two_dogs["dogs"],
                                                             key=lambda dog: dog["box"][0])]
    assert names == ["golden retriever", "Samoyed"]


def test_look_twice_finds_a_small_dog_in_a_wide_frame(shared_datasets: Path,
                                                       tmp_path: Path) -> None:
    dog = Image.open(shared_datasets / "dogs-dev" / "Images" / "n02099601-golden_retriever" /
                     "n02099601_10.jpg").convert("RGB").resize((400, 400))
    canvas = Image.new("RGB", (1600, 1000), "white")
    canvas.paste(dog, (1100, 520))
    canvas.save(tmp_path / "far.jpg", quality=90)
    once, twice = (json.loads(run_classify("--json", *flag, str(tmp_path / "far.jpg")).stdout)
                   for flag in ([], ["--look-twice"]))
    # Measured: the whole frame, mostly white, says "chow" (23%); the crop adds a golden
    # retriever (32%).
    assert once["mixed"] and once["predictions"][0]["name"] != "golden retriever"
    assert twice["predictions"][0]["name"] == "golden retriever"
    assert len(twice["dogs"]) == 1 and twice["dogs"][0]["box"][0] > 0.5  # on the right


def dark_photo(shared_datasets: Path, path: Path) -> None:
    """A dogs-dev photo the model is sure of, made three stops too dark: unsure, and dark."""
    photo = Image.open(shared_datasets / "dogs-dev" / "Images" / "n02093754-Border_terrier" /
                       "n02093754_2812.jpg").convert("RGB")
    degrade(photo, "dark", np.random.default_rng(0)).save(path, quality=90)


def test_folder_gives_a_table(shared_datasets: Path, tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes((shared_datasets / "imagenet-dogs-121" /
                                      "n02110958-pug.jpg").read_bytes())
    dark_photo(shared_datasets, tmp_path / "b.jpg")
    result = run_classify(str(tmp_path))
    assert result.returncode == 0
    pug, dark = result.stdout.split("\n\n")[:2]
    assert pug.startswith(f"{tmp_path / 'a.jpg'}: looks most like a pug")
    assert "█" in pug and "advice" not in pug
    assert dark.startswith(f"{tmp_path / 'b.jpg'}: ")
    assert dark.endswith(f"\n  advice: {ADVICE['dark']}")


def test_table_says_mix_and_not_a_dog() -> None:
    guesses = (BreedGuess("n02088364", "beagle", 0.4), BreedGuess("n02089973",
                                                                   "English foxhound", 0.3))
    assert "probably a mix of beagle and English foxhound" in format_table(
        "x.jpg", Answer(True, 0.9, True, guesses))
    assert "doesn't look like a dog (looks like: tabby)" in format_table(
        "x.jpg", Answer(False, 0.01, False, guesses, "tabby"))
