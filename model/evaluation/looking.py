"""Ways of looking at a photo, side by side: breed accuracy and photo-to-answer time.

    variants = looking_variants(Predictor("lite2"), Predictor("lite0", warm_up=False))
    rows = [measure(variant, data, timing_photos) for variant in variants]

Each variant turns photo bytes into ``Answer``s, and is scored on what people would get: the
top five breeds of each answer. ``Predictor.look`` variants run the product's own code; the
others (a higher test resolution, multi-crop, two Lite variants together) are built here from
the predictor's public parts, as they did not pay for their time (README, "Look closer").
"""

from __future__ import annotations

import functools
import io
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.answers import Answer, PhotoAnswer, make_answer
from model.data.dataset import Example
from model.predictor import LOOK, LOOK_TWICE, Look, Predictor
from model.preprocess import Square, centre_square, load_rgb, square_pixels, whole_square

BATCH = 32  # photos per call when scoring accuracy

Answers = Callable[[list[bytes]], list[Answer]]


@dataclass(frozen=True)
class Variant:
    name: str
    # photo bytes -> one Answer, or PhotoAnswer, each (every photo must be readable)
    answers: Callable[[list[bytes]], list[Answer] | list[PhotoAnswer]]


def looking_variants(predictor: Predictor, other: Predictor) -> list[Variant]:
    """The variants measured: today's centre crop, ``look`` as built and its alternatives,
    and the ideas that did not pay (``other`` is a second Lite variant to combine with)."""
    def look(how: Look) -> Variant:
        return Variant(describe(how), functools.partial(predictor.look, how=how))

    return [
        Variant("today: centre crop + mirror", predictor.classify),
        look(LOOK),
        look(LOOK_TWICE),
        look(Look(second_look="unsure", margin=0.15, mirror_crop=True)),
        look(Look(second_look="always")),
        look(Look(mirror=False, second_look="always")),
        Variant("centre crop at 300 px + mirror", _resized(predictor, 300)),
        Variant("multi-crop: 3 squares along the long side", _three_squares(predictor)),
        Variant(f"whole + mirror, + {other.variant} whole", _two_models(predictor, other)),
    ]


def describe(how: Look) -> str:
    """A variant's name in the table, e.g. "whole + mirror, crop (0.3) if unsure"."""
    whole = "whole + mirror" if how.mirror else "whole"
    if how.second_look == "never":
        return whole
    crop = f"crop ({how.margin:g}){' + mirror' if how.mirror_crop else ''}"
    return f"{whole}, {crop} {'if unsure' if how.second_look == 'unsure' else 'always'}"


def _answers_from(predictor: Predictor, imagenet: np.ndarray, breeds: np.ndarray
                  ) -> list[Answer]:
    return [make_answer(i, b, predictor.breeds, predictor.top_k)
            for i, b in zip(imagenet, breeds, strict=True)]


def _squares(predictor: Predictor, photos: list[bytes],
             squares: Callable[[int, int], list[Square]], size: int) -> np.ndarray:
    """(B, V, size, size, 3): V squares of each photo."""
    images = [load_rgb(photo, size) for photo in photos]
    return np.stack([[square_pixels(image, square, size) for square in squares(*image.size)]
                     for image in images])


def _resized(predictor: Predictor, size: int) -> Answers:
    """The centre crop at another test resolution (Touvron et al. 2019), with its mirror."""
    def answers(photos: list[bytes]) -> list[Answer]:
        pixels = _squares(predictor, photos, lambda w, h: [centre_square(w, h)], size)[:, 0]
        return _answers_from(predictor, *predictor.probabilities(pixels))

    return answers


def _three_squares(predictor: Predictor) -> Answers:
    """Three squares (both ends and the centre of the long side), probabilities averaged."""
    def thirds(width: int, height: int) -> list[Square]:
        side = min(width, height)
        return [Square((width - side) * f, (height - side) * f, side) for f in (0, 0.5, 1)]

    def answers(photos: list[bytes]) -> list[Answer]:
        pixels = _squares(predictor, photos, thirds, predictor.resolution)  # (B, 3, S, S, 3)
        imagenet, breeds = predictor.probabilities(pixels.reshape(-1, *pixels.shape[2:]),
                                                   mirror=False)
        return _answers_from(predictor, *(p.reshape(len(photos), 3, -1).mean(1)
                                          for p in (imagenet, breeds)))

    return answers


def _two_models(predictor: Predictor, other: Predictor) -> Answers:
    """The whole photo through ``predictor`` (with its mirror) and ``other`` (without),
    probabilities averaged: two networks disagree more than a photo and its mirror."""
    def answers(photos: list[bytes]) -> list[Answer]:
        views = [_squares(model, photos, lambda w, h: [whole_square(w, h)],
                          model.resolution)[:, 0] for model in (predictor, other)]
        first, second = predictor.probabilities(views[0]), other.probabilities(views[1],
                                                                               mirror=False)
        return _answers_from(predictor, *((a + b) / 2 for a, b in zip(first, second,
                                                                      strict=True)))

    return answers


@dataclass(frozen=True)
class Score:
    count: int
    top1: int  # photos whose first breed is right
    top5: int  # photos whose right breed is among the first five
    looked_twice: int | None  # photos that got a second look (look variants only)


def score(variant: Variant, examples: Sequence[Example]) -> Score:
    """Top-1 and top-5 (counts) of ``variant`` on labelled photos, BATCH at a time."""
    top1 = top5 = 0
    twice: int | None = None
    for start in range(0, len(examples), BATCH):
        batch = examples[start : start + BATCH]
        for example, result in zip(batch, variant.answers([e.path.read_bytes() for e in batch]),
                                   strict=True):
            if isinstance(result, PhotoAnswer):
                twice = (twice or 0) + result.looked_twice
                result = result.answer
            labels = [p.label for p in result.predictions[:5]]
            top1 += labels[0] == example.label
            top5 += example.label in labels
    return Score(len(examples), top1, top5, twice)


def median_ms(variants: Sequence[Variant], photos: Sequence[bytes]) -> list[float]:
    """Median photo-to-answer time (ms) of each variant, one photo a call: bytes in, answer
    out. The variants take turns on each photo, so that a busy moment of the machine falls on
    all of them alike."""
    for variant in variants:  # compile and warm every code path first
        variant.answers(list(photos[:1]))
    times: list[list[float]] = [[] for _ in variants]
    for photo in photos:
        for variant, spent in zip(variants, times, strict=True):
            started = time.perf_counter()
            variant.answers([photo])
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) * 1e3 for spent in times]


def telegram_sized(photo: bytes, long_side: int = 1280) -> bytes:
    """The photo as Telegram sends one: resized to a long side of 1280 px, JPEG quality 87;
    what the bot's decoding really costs."""
    image = load_rgb(photo)
    scale = long_side / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)),
                         Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=87)
    return buffer.getvalue()
