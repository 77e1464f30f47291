"""Photo to answer: 12-megapixel phone JPEGs through ``Predictor.classify``, bytes in, answer out.

    photos = [phone_photo(path.read_bytes(), seed) for seed, path in enumerate(paths)]
    times = photo_to_answer(predictor, photos, repeats=3)  # {mirror policy: [seconds, ...]}
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import numpy as np
from PIL import Image

from model.predictor import MIRRORS, Predictor
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


def photo_to_answer(predictor: Predictor, photos: Sequence[bytes], repeats: int,
                    mirrors: Sequence[str] = MIRRORS) -> dict[str, list[float]]:
    """Seconds from bytes to answer of each photo, one photo a call, for each mirror policy.
    The policies take turns on each photo, so that a busy moment of the machine falls on all
    of them alike."""
    for mirror in mirrors:  # compile and warm every code path first
        predictor.classify(list(photos[:1]), mirror)
    times: dict[str, list[float]] = {mirror: [] for mirror in mirrors}
    for _ in range(repeats):
        for photo in photos:
            for mirror in mirrors:
                started = time.perf_counter()
                predictor.classify([photo], mirror)
                times[mirror].append(time.perf_counter() - started)
    return times


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and p99 of ``seconds``, and the fastest, in milliseconds. On a shared machine
    the fastest says what a quiet moment gives."""
    fastest, p50, p95, p99 = np.percentile(np.asarray(seconds) * 1e3, [0, 50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "fastest": float(fastest)}
