"""model.evaluation.looking: the variants' names, how answers are scored, the sweep's views
and second look; the variants run on real photos in scripts/evaluate_looks.py."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from model.answers import Answer, Box, BreedGuess, Dog, PhotoAnswer
from model.data.dataset import Example
from model.evaluation.looking import Probs, Variant, View, describe, looked, median_ms, score
from model.labels import BREED_CLASSES
from model.predictor import LOOK, LOOK_TWICE, Look
from tests.conftest import breed_probs_on_the_mean


def test_names_say_what_is_looked_at() -> None:
    assert describe(LOOK) == "whole + mirror when unsure"
    assert describe(LOOK_TWICE) == "whole + mirror, crop (0.3) if unsure"
    assert describe(Look(mirror="never", second_look="always", margin=0.15, mirror_crop=True)) \
        == "whole, crop (0.15) + mirror always"


def answer(*labels: str) -> Answer:
    return Answer(True, 0.9, False, tuple(BreedGuess(label, label, 0.1) for label in labels))


def test_score_counts_top1_top5_and_second_looks(tmp_path: Path) -> None:
    examples = []
    for i, label in enumerate(["a", "b", "c"]):
        (tmp_path / f"{i}.jpg").write_bytes(label.encode())  # a stand-in photo: its label
        examples.append(Example(tmp_path / f"{i}.jpg", "", label, "", "", "", ""))
    guesses = {b"a": ("a", "x"), b"b": ("x", "y", "z", "w", "b"), b"c": ("x", "y", "z", "w", "v",
                                                                          "c")}
    plain = Variant("plain", lambda photos: [answer(*guesses[p]) for p in photos])
    result = score(plain, examples)
    assert (result.count, result.top1, result.top5, result.looked_twice) == (3, 1, 2, None)

    def looked(photos: list[bytes]) -> list[PhotoAnswer]:
        return [PhotoAnswer(answer(*guesses[p]), (Dog(Box(0, 0, 1, 1), answer("a")),), p == b"a")
                for p in photos]

    assert score(Variant("look", looked), examples).looked_twice == 1


def test_views_cut_their_squares_at_their_size() -> None:
    image = Image.new("RGB", (400, 200), "red")
    image.paste((0, 0, 255), (300, 0, 400, 200))  # the right quarter blue
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])
    centre = View("centre", 48).pixels(image)
    assert centre.shape == (48, 48, 3) and (np.abs(centre.astype(int) - red).max(-1) < 30).all()
    whole = View("whole", 64).pixels(image)  # letterboxed: grey above and below the photo
    assert whole.shape == (64, 64, 3) and (whole[0] == 127).all()
    assert (whole[32, :40] == red).all() and (whole[32, -10:] == blue).all()
    dog = View("dog", 32, margin=0.0).pixels(image, Box(0.75, 0.25, 0.875, 0.5))  # in the blue
    assert dog.shape == (32, 32, 3)
    assert (np.abs(dog.astype(int) - blue).max(-1) < 30).all()


def probs(breeds: dict[int, float], dog: float = 0.9) -> Probs:
    """ImageNet probabilities with ``dog`` of the mass on breeds (by index: their shares) and
    the rest on class 0, a fish; and the breeds' probabilities that follow."""
    imagenet = np.zeros(1000)
    imagenet[0] = 1 - dog
    for index, share in breeds.items():
        imagenet[BREED_CLASSES[index]] = dog * share
    return imagenet, breed_probs_on_the_mean(imagenet)


class FakePhoto:
    """A photo whose whole view says ``whole`` and whose dog crop says ``crop``."""

    def __init__(self, whole: Probs, crop: Probs, box: Box):
        self.whole, self.crop, self.box, self.asked = whole, crop, box, []

    def probs(self, view: View, mirror: bool) -> Probs:
        self.asked.append(view.square)
        return self.crop if view.square == "dog" else self.whole

    def first_dog(self, variant: str, mirror: bool) -> tuple[Box, float]:
        return self.box, 1.0


def test_a_sweep_looks_twice_only_when_unsure() -> None:
    sweep = looked("twice", [(View("whole", 260), True)], (View("dog", 300, margin=0.5), True))
    big_dog, small_dog = Box(0, 0, 1, 1), Box(0.4, 0.4, 0.6, 0.6)
    sure, unsure, crop = probs({0: 0.9, 1: 0.1}), probs({0: 0.4, 1: 0.35, 3: 0.25}), probs({2: 1.0})
    photo = FakePhoto(sure, crop, big_dog)  # a confident answer on a big dog: once
    np.testing.assert_allclose(sweep.answer(photo)[1], sure[1])
    assert photo.asked == ["whole"]
    for first, box in ((unsure, big_dog), (sure, small_dog)):  # a mix, or a small dog: twice
        photo = FakePhoto(first, crop, box)
        assert int(np.argmax(sweep.answer(photo)[1])) == 2 and photo.asked == ["whole", "dog"]
    assert sweep.cost == 2.0 and sweep.detail == 600  # the crop at 300 px needs 600 px photos


def test_views_of_several_models_are_averaged() -> None:
    sweep = looked("two", [(View("whole", 260), False), (View("whole", 240, "lite1"), False)])
    answers = {"lite2": probs({0: 0.8, 1: 0.2}), "lite1": probs({0: 0.2, 1: 0.8})}

    class TwoModels(FakePhoto):
        def probs(self, view: View, mirror: bool) -> Probs:
            return answers[view.variant]

    imagenet, breeds = sweep.answer(TwoModels(*answers.values(), Box(0, 0, 1, 1)))
    np.testing.assert_allclose(breeds[:2], [0.5, 0.5])
    assert sweep.cost == 1.9


def test_variants_are_timed_in_turns_one_photo_a_call() -> None:
    calls = []

    def variant(name: str, seconds: float) -> Variant:
        def answers(photos: list[bytes]) -> list:
            calls.append((name, len(photos)))
            time.sleep(seconds)
            return []
        return Variant(name, answers)

    slow_ms, fast_ms = median_ms([variant("slow", 0.02), variant("fast", 0.0)], [b"a", b"b", b"c"])
    assert slow_ms >= 20 > fast_ms
    assert calls[:2] == [("slow", 2), ("fast", 2)]  # each warmed first
    assert calls[2:] == [("slow", 1), ("fast", 1)] * 3  # then in turns, one photo a call
