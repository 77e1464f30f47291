"""Choosing the advice's limits on data: photos as they are, and the same photos made poor.

    looked = look_at_conditions(predictor, photos, seed)  # every photo in every condition
    rates = advice_rates(looked, limits)                   # how often each gets which advice

A good photo should get no advice; a photo made dark, washed out, small or blurred should get
the advice for that, when its answer is unsure (a confident answer gets none by design, so the
rates are given both among the unsure answers and over all the photos of a condition).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from model.advice import Limits, Quality, may_need_advice, reason
from model.answers import Answer
from model.predictor import Predictor
from model.preprocess import ImageError

CONDITIONS = ("good", "dark", "bright", "small", "blurred")
RIGHT = {"good": None, "dark": "dark", "bright": "bright", "small": "small",
         "blurred": "blurred"}  # the right advice for each condition (good: none)
GAMMA = 2.2  # exposure changes in linear light, as a camera's would
DARK_EXPOSURE = 1 / 8  # three stops under
BRIGHT_EXPOSURE = 4  # two stops over: the light parts clip to white
SMALL_SCALE = 1 / 3  # the photo a third of its canvas's side: the dog fills a ninth of it or less
BLUR_RADIUS = 1 / 75  # Gaussian blur of this share of the photo's side (3 px at 224 px)
CHUNK = 32


@dataclass(frozen=True)
class Looked:
    """One photo in one condition: the answer it got, its measured quality and how many
    dogs the answer names (the advice depends on all three)."""

    condition: str
    answer: Answer
    quality: Quality | None  # None: a sure answer, not measured (it gets no advice)
    dogs: int = 1
    photo: int = 0  # its index in the photos looked at


def degrade(image: Image.Image, condition: str, rng: np.random.Generator) -> Image.Image:
    """``image`` (RGB) as it is ("good") or made dark, bright (washed out), small or blurred."""
    if condition in ("dark", "bright"):
        linear = (np.asarray(image, np.float32) / 255) ** GAMMA
        linear *= DARK_EXPOSURE if condition == "dark" else BRIGHT_EXPOSURE
        return Image.fromarray(np.uint8(np.clip(linear, 0, 1) ** (1 / GAMMA) * 255 + 0.5))
    if condition == "small":
        return _small(image, rng)
    if condition == "blurred":
        return image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS * max(image.size)))
    if condition == "good":
        return image
    raise ValueError(f"unknown condition {condition!r}: one of {CONDITIONS}")


def _small(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """``image`` at a random place of a canvas ``1 / SMALL_SCALE`` times its side of plain
    ground: a fine texture of one colour, like grass, gravel or a floor."""
    width, height = round(image.width / SMALL_SCALE), round(image.height / SMALL_SCALE)
    colour = rng.uniform(40, 200, 3)
    noise = rng.normal(0, 25, (height, width, 1))
    ground = Image.fromarray(np.uint8(np.clip(colour + noise, 0, 255))).filter(
        ImageFilter.GaussianBlur(1))
    ground.paste(image, (int(rng.integers(0, width - image.width + 1)),
                         int(rng.integers(0, height - image.height + 1))))
    return ground


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def look_at_conditions(predictor: Predictor, photos: Sequence[bytes], seed: int = 0
                       ) -> Iterator[Looked]:
    """Every photo in every condition (saved as a JPEG, so each takes the real decode path),
    looked at as the bot does. Unreadable photos are left out."""
    rng = np.random.default_rng(seed)
    for start in range(0, len(photos), CHUNK):
        images = {}
        for index, photo in enumerate(photos[start : start + CHUNK], start):
            try:
                images[index] = Image.open(io.BytesIO(photo)).convert("RGB")
            except (OSError, ValueError):
                continue
        for condition in CONDITIONS:
            degraded = [_jpeg(degrade(image, condition, rng)) for image in images.values()]
            for index, result in zip(images, predictor.look_measured(degraded), strict=True):
                if not isinstance(result, ImageError):
                    answer, quality = result
                    yield Looked(condition, answer.answer, quality, len(answer.dogs), index)


def advice_rates(looked: Sequence[Looked], limits: Limits) -> dict[str, dict[str, int]]:
    """Per condition: its photos, how many got an unsure answer, how many of those got any
    advice, how many the right advice (for "good": none, so "right" counts no advice), and
    how many the no-dog advice (whose "if it is, come closer" also suits a small dog)."""
    rates = {}
    for condition in CONDITIONS:
        these = _reasons(looked, condition, limits)
        reasons = [why for _, why in these]
        unsure = [may_need_advice(item.answer) for item, _ in these]
        rates[condition] = {
            "photos": len(these), "unsure": sum(unsure),
            "advised": sum(why is not None for why in reasons),
            "right": sum(why == RIGHT[condition] for why in reasons),
            "no_dog": sum(why == "no dog" for why in reasons)}
    return rates


def advised(looked: Sequence[Looked], condition: str, limits: Limits
            ) -> list[tuple[Looked, str]]:
    """The photos of ``condition`` that get advice, each with the reason."""
    return [(item, why) for item, why in _reasons(looked, condition, limits) if why is not None]


def _reasons(looked: Sequence[Looked], condition: str, limits: Limits
             ) -> list[tuple[Looked, str | None]]:
    """The photos of ``condition``, each with the reason for its advice (None: no advice)."""
    return [(item, reason(item.answer, item.quality, limits, item.dogs))
            for item in looked if item.condition == condition]


def sweep(looked: Sequence[Looked], limits: Limits, field: str,
          values: Sequence[float]) -> list[dict]:
    """``advice_rates`` with one of ``limits``' fields set to each of ``values`` in turn."""
    return [{"value": value, **advice_rates(looked, dataclasses.replace(limits, **{field: value}))}
            for value in values]
