"""Advice on poor photos (model.advice) on synthetic images, and the scoring of the sweep that
chooses its limits (model.evaluation.advice) on tiny hand-made data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from model.advice import (
    ADVICE,
    LIMITS,
    MEASURE_SIDE,
    Limits,
    Quality,
    advise,
    laplacian_variance,
    measure,
    reason,
)
from model.answers import Answer, Box, BreedGuess, PhotoAnswer
from model.evaluation.advice import (
    CONDITIONS,
    Looked,
    advice_rates,
    advised,
    degrade,
    look_at_conditions,
    sweep,
)

BEAGLE = BreedGuess("n02088364", "beagle", 0.9)
SURE = Answer(True, 0.95, False, (BEAGLE,))
MIXED = Answer(True, 0.9, True, (BreedGuess("n02088364", "beagle", 0.4),))
NOT_A_DOG = Answer(False, 0.05, False, (BEAGLE,), "tabby")
FINE = Quality(brightness=0.45, blown=0.0, sharpness=500.0, share=0.5)


def scene(side: int = 256, seed: int = 0) -> Image.Image:
    """A sharp, mid-grey scene of blocks of many shades (edges at every scale)."""
    blocks = np.random.default_rng(seed).uniform(40, 200, (16, 16, 3))
    return Image.fromarray(np.uint8(blocks)).resize((side, side), Image.Resampling.NEAREST)


def test_a_sharp_scene_measures_sharper_than_it_blurred_at_any_size() -> None:
    sharp = measure(scene(), None)
    blurred = measure(scene().filter(ImageFilter.GaussianBlur(4)), None)
    assert blurred.sharpness < sharp.sharpness / 10
    # Resized before measuring: the same scene at four times the pixels measures alike.
    assert measure(scene(1024), None).sharpness == pytest.approx(sharp.sharpness, rel=0.3)
    assert sharp.share is None and 0.3 < sharp.brightness < 0.6 and sharp.blown == 0


def test_a_small_box_is_widened_not_enlarged() -> None:
    """Enlarged to be measured, a sharp photo's few pixels would look blurred."""
    photo = scene(1024)
    tiny = measure(photo, Box(0.5, 0.5, 0.52, 0.52))  # 20 px
    enlarged = photo.convert("L").resize((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BICUBIC,
                                         box=(512, 512, 532, 532))
    assert tiny.sharpness > 5 * laplacian_variance(np.asarray(enlarged, np.float32))
    assert tiny.share == pytest.approx(0.0004)
    assert measure(photo, Box(0.98, 0.98, 1.0, 1.0)).sharpness > 0  # widened inside the photo


def test_exposure_is_measured_in_the_box_only() -> None:
    pixels = np.asarray(scene(), np.uint8).copy()
    pixels[:, 128:] = 255  # the right half blown to white
    image = Image.fromarray(pixels)
    left, right = (measure(image, Box(x, 0, x + 0.5, 1)) for x in (0.0, 0.5))
    assert left.blown == 0 and right.blown == 1 and right.brightness == 1
    assert left.share == right.share == 0.5
    dark = measure(Image.fromarray(pixels // 8), Box(0, 0, 0.5, 1))
    assert dark.brightness < LIMITS.dark < left.brightness


def test_laplacian_variance_is_zero_on_flat_and_linear_images() -> None:
    assert laplacian_variance(np.full((8, 8), 100.0)) == 0
    assert laplacian_variance(np.tile(np.arange(8.0), (8, 1))) == 0
    assert laplacian_variance(np.indices((8, 8)).sum(0) % 2 * 255.0) > 0


def test_a_confident_answer_never_gets_advice() -> None:
    worst = Quality(brightness=0.01, blown=1.0, sharpness=0.0, share=0.001)
    assert reason(SURE, worst) is None and advise(SURE, worst) is None


@pytest.mark.parametrize(("quality", "why"), [
    (Quality(0.05, 0.0, 500.0, 0.5), "dark"),
    (Quality(0.9, 0.6, 500.0, 0.5), "bright"),
    (Quality(0.45, 0.0, 500.0, 0.01), "small"),
    (Quality(0.45, 0.0, 1.0, 0.5), "blurred"),
    (Quality(0.05, 0.0, 1.0, 0.01), "dark"),  # dark photos read as blurred too: dark first
    (Quality(0.45, 0.0, 1.0, 0.01), "blurred"),  # blurring shrinks a dog's box on the map
    (FINE, None),  # a likely mix in a fine photo: nothing to say
])
def test_an_unsure_answer_says_why(quality: Quality, why: str | None) -> None:
    assert reason(MIXED, quality) == why
    assert advise(MIXED, quality) == (ADVICE[why] if why else None)


def test_several_dogs_excuse_only_their_size() -> None:
    """Two dogs each fill little of the photo and split its breeds: no fault of the photo;
    but a dark, washed-out or blurred photo of them still gets its line."""
    small = Quality(0.45, 0.0, 500.0, 0.1)
    assert reason(MIXED, small) == "small" and reason(MIXED, small, dogs=2) is None
    assert advise(MIXED, Quality(0.05, 0.0, 500.0, 0.1), dogs=2) == ADVICE["dark"]
    assert reason(MIXED, Quality(0.9, 0.6, 500.0, 0.1), dogs=3) == "bright"
    assert reason(MIXED, Quality(0.45, 0.0, 1.0, 0.1), dogs=2) == "blurred"
    assert reason(SURE, Quality(0.05, 0.0, 1.0, 0.1), dogs=2) is None  # still never nags


def test_no_dog_found() -> None:
    assert advise(NOT_A_DOG, Quality(0.45, 0.0, 500.0, None)) == ADVICE["no dog"]
    # Not a dog, but the dog map found one: a dog too small a part of the photo to count.
    assert reason(NOT_A_DOG, FINE) == "small"
    assert ADVICE["no dog"].startswith("I can't see a dog; is it in the picture?")
    assert reason(NOT_A_DOG, Quality(0.05, 0.0, 500.0, None)) == "dark"


def test_degraded_photos() -> None:
    photo, rng = scene(), np.random.default_rng(0)
    assert degrade(photo, "good", rng) is photo
    assert measure(degrade(photo, "dark", rng), None).brightness < 0.5 * measure(
        photo, None).brightness
    bright = measure(degrade(photo, "bright", rng), None)
    assert bright.blown > 0.05 and bright.brightness > 0.75  # where all three colours clip
    assert measure(degrade(photo, "blurred", rng), None).sharpness < measure(
        photo, None).sharpness / 3
    small = degrade(photo, "small", rng)
    assert small.size == (768, 768)
    # The photo lies unchanged somewhere in the ground around it.
    canvas, pixels = np.asarray(small), np.asarray(photo)
    corners = np.argwhere((canvas[:513, :513] == pixels[0, 0]).all(-1))
    assert sum(np.array_equal(canvas[y : y + 256, x : x + 256], pixels) for y, x in corners) == 1
    with pytest.raises(ValueError, match="unknown condition"):
        degrade(photo, "foggy", rng)


def looked(condition: str, answer: Answer, dogs: int = 1, **quality: float) -> Looked:
    return Looked(condition, answer, Quality(**(vars(FINE) | quality)), dogs)


TINY = [
    looked("good", SURE), looked("good", MIXED), looked("good", MIXED, brightness=0.2),
    looked("dark", SURE, brightness=0.05),  # confident: no advice, by design
    looked("dark", MIXED, brightness=0.05), looked("dark", MIXED, brightness=0.25),
    looked("bright", NOT_A_DOG, blown=0.5),
    looked("small", NOT_A_DOG, share=None),  # no dog found: "no dog", not "small"
    looked("small", MIXED, share=0.05),
    looked("small", MIXED, dogs=2, share=0.05),  # two dogs, each small: not the photo's fault
    looked("blurred", MIXED, sharpness=5.0),
    looked("blurred", MIXED, dogs=2, sharpness=5.0),  # blurred all the same
]


def test_advice_rates_count_unsure_advised_and_right() -> None:
    rates = advice_rates(TINY, Limits(dark=0.15, bright=0.1, small=0.1, blurred=40))
    assert list(rates) == list(CONDITIONS)
    assert rates["good"] == {"photos": 3, "unsure": 2, "advised": 0, "right": 3, "no_dog": 0}
    assert rates["dark"] == {"photos": 3, "unsure": 2, "advised": 1, "right": 1, "no_dog": 0}
    assert rates["bright"] == {"photos": 1, "unsure": 1, "advised": 1, "right": 1, "no_dog": 0}
    assert rates["small"] == {"photos": 3, "unsure": 3, "advised": 2, "right": 1, "no_dog": 1}
    assert rates["blurred"] == {"photos": 2, "unsure": 2, "advised": 2, "right": 2,
                                "no_dog": 0}


def test_advised_lists_each_photo_with_its_reason() -> None:
    limits = Limits(dark=0.15, bright=0.1, small=0.1, blurred=40)
    assert advised(TINY, "good", limits) == []
    assert [why for _, why in advised(TINY, "small", limits)] == ["no dog", "small"]
    # The good dim photo, once the dark limit is above its brightness; the sure one never.
    assert [(item.quality.brightness, why) for item, why in advised(TINY, "good", Limits(
        dark=0.3))] == [(0.2, "dark")]


class Recorder:
    """A stand-in for the predictor: says every readable photo is a fine one, a likely mix."""

    def look_measured(self, photos: list[bytes]) -> list:
        return [(PhotoAnswer(MIXED, (), False), FINE) for _ in photos]


def test_look_at_conditions_keeps_each_photo_s_index() -> None:
    """An unreadable photo is left out, and the others keep their own index."""
    jpeg = io.BytesIO()
    scene(64).save(jpeg, "JPEG")
    photos = [jpeg.getvalue(), b"not a photo", jpeg.getvalue()]
    seen = list(look_at_conditions(Recorder(), photos))
    assert [(item.condition, item.photo) for item in seen] == [
        (condition, index) for condition in CONDITIONS for index in (0, 2)]
    assert {item.dogs for item in seen} == {0}


def test_sweep_moves_one_limit() -> None:
    rows = sweep(TINY, Limits(dark=0.15, bright=0.1, small=0.1, blurred=40), "dark",
                 [0.1, 0.22, 0.3])
    assert [row["value"] for row in rows] == [0.1, 0.22, 0.3]
    assert [row["dark"]["right"] for row in rows] == [1, 1, 2]
    assert [row["good"]["advised"] for row in rows] == [0, 1, 1]  # the good dim photo
