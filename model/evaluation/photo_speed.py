"""Photo to answer: 12-megapixel phone JPEGs through ``Predictor.classify`` (the centre crop
that evaluation scores) and ``Predictor.look`` (what the bot and ``classify.py`` answer with),
bytes in, answer out.

    photos = [phone_photo(path.read_bytes(), seed) for seed, path in enumerate(paths)]
    times = photo_to_answer([predictor], photos, repeats=3)  # {way: [seconds, ...]}
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from model.predictor import MIRRORS, Look, Predictor
from model.preprocess import load_rgb

PHONE_SIZE = (4000, 3000)  # 12 megapixels, 4:3 as phone cameras take them
EXIF_ORIENTATION = 0x0112


def phone_photo(photo: bytes, seed: int = 0) -> bytes:
    """``photo`` as a phone would save it: its centre 4:3 at 4000×3000, with sensor-like noise so
    that it compresses like a real one (2–3 MB at quality 90), stored sideways with EXIF
    orientation 6, as a phone held upright saves it."""
    image = load_rgb(photo)
    width = min(image.width, round(image.height * 4 / 3))
    height = round(width * 3 / 4)
    box = ((image.width - width) // 2, (image.height - height) // 2)
    image = image.resize(PHONE_SIZE, Image.Resampling.BICUBIC,
                         box=(*box, box[0] + width, box[1] + height))
    noise = np.random.default_rng(seed).integers(-8, 9, (*PHONE_SIZE[::-1], 3), dtype=np.int16)
    noisy = np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # shown turned 90° clockwise: stored turned the other way
    buffer = io.BytesIO()
    Image.fromarray(noisy).transpose(Image.Transpose.ROTATE_90).save(
        buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def answer_ways(predictor: Predictor) -> dict[str, Callable[[list[bytes]], list]]:
    """Each way of answering photos that is timed, by name: ``classify`` and ``look`` with each
    mirror policy, named with the predictor's 1×1 products, e.g. "look, unsure (bfloat16)"."""
    ways = {**{f"classify, {m}": functools.partial(predictor.classify, mirror=m)
               for m in MIRRORS},
            **{f"look, {m}": functools.partial(predictor.look, how=Look(mirror=m))
               for m in MIRRORS}}
    return {f"{name} ({predictor.matmul})": way for name, way in ways.items()}


def photo_to_answer(predictors: Sequence[Predictor], photos: Sequence[bytes],
                    repeats: int) -> dict[str, list[float]]:
    """``timed_in_turns`` for each way in ``answer_ways`` of each predictor."""
    for predictor in predictors:  # compile every code path first: a photo may take any of them
        predictor.warm_up_look(photos=1)
    return timed_in_turns({name: way for predictor in predictors
                           for name, way in answer_ways(predictor).items()}, photos, repeats)


def timed_in_turns(answers: dict[str, Callable[[list[bytes]], object]], photos: Sequence[bytes],
                   repeats: int = 1) -> dict[str, list[float]]:
    """Seconds from bytes to answer of each photo, one photo a call, for each of ``answers``
    (by name), after a first call each to warm it. They take turns on each photo, so that a
    busy moment of the machine falls on all of them alike."""
    for answer in answers.values():
        answer(list(photos[:2]))
    times: dict[str, list[float]] = {name: [] for name in answers}
    for _ in range(repeats):
        for photo in photos:
            for name, answer in answers.items():
                started = time.perf_counter()
                answer([photo])
                times[name].append(time.perf_counter() - started)
    return times


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of ``seconds``, and the fastest, in milliseconds. On a shared machine
    the fastest says what a quiet moment gives."""
    fastest, p50, p95, p99 = np.percentile(np.asarray(seconds) * 1e3, [0, 50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "fastest": float(fastest)}
