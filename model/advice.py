"""Advice on a poor photo: when the answer is unsure, say why in one line and how to retake it.

The photo's quality is measured where the dog is (its box on the dog map), or over the whole
photo when no dog was found: how bright it is, how sharp, and how much of the frame the dog
fills. A confident answer never gets advice: whatever the photo's faults, it was good enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from model.answers import Answer, Box

# The box is measured at this size: the variance of the Laplacian depends on the scale, so a
# box of any size must be resized to one before its sharpness means the same in every photo.
MEASURE_SIDE = 128
# A washed-out photo has its light parts blown to white: a white dog in good light has few
# such pixels (its mean luminance is a worse sign: a Samoyed on snow is bright but not blown).
BLOWN = 250


@dataclass(frozen=True)
class Quality:
    """What the advice is chosen from."""

    brightness: float  # mean luminance of the box: 0 black, 1 white
    blown: float  # the share of the box that is white (luminance at least BLOWN)
    sharpness: float  # variance of the Laplacian of the box's luminance (0-255) at MEASURE_SIDE
    share: float | None  # the share of the photo the dog's box covers; None: no dog found


@dataclass(frozen=True)
class Limits:
    """Where a photo's quality becomes a reason for advice, chosen with
    ``scripts/choose_advice.py`` on dogs-dev val photos as they are and made dark, washed out,
    small and blurred: dark, bright and blurred on two samples of 300, small again on all
    3,764 (README, "Advice on poor photos")."""

    dark: float = 0.24  # brightness below this is too dark
    bright: float = 0.12  # a blown share above this is washed out
    # A dog whose box covers less of the photo than this is small: the map's boxes are
    # generous, a dog filling a ninth of the frame gets a box of about a fifth. At 0.25 (a
    # second look's SMALL_DOG) 3.5% of the good photos were advised, most of them "small".
    small: float = 0.20
    blurred: float = 50.0  # sharpness below this is blurred

LIMITS = Limits()
# Reasons in the order they are checked: a dark or washed-out photo also has little contrast,
# so it reads as blurred too; and blurring a photo shrinks its dog's box on the map.
ADVICE = {
    "dark": "The photo is too dark to see the dog well: try more light.",
    "bright": "The photo is washed out: try with the light behind you, not behind the dog.",
    "small": "The dog is small in the photo: come closer, or zoom in.",
    "blurred": "The photo is blurred: hold still, and tap the dog on the screen to focus.",
    # Said too of a dog too small for the dog map to find: hence "come closer".
    "no dog": "I can't see a dog; is it in the picture? If it is, come closer.",
}


def measure(image: Image.Image, box: Box | None) -> Quality:
    """The quality of the RGB ``image`` inside ``box`` (fractions of the image), or of the
    whole image when ``box`` is None (no dog found).

    A box narrower or shorter than ``MEASURE_SIDE`` pixels is widened to it (as far as the
    image allows), so that it is never enlarged to be measured: enlarged, a sharp photo's few
    pixels would look blurred.
    """
    width, height = image.size
    if box is None:
        region = (0, 0, width, height)
    else:
        (left, right), (top, bottom) = (_span(box.left * width, box.right * width, width),
                                        _span(box.top * height, box.bottom * height, height))
        region = (left, top, right, bottom)
    grey = image.convert("L").resize((MEASURE_SIDE, MEASURE_SIDE), Image.Resampling.BICUBIC,
                                     box=region, reducing_gap=3.0)
    luminance = np.asarray(grey, np.float32)
    return Quality(float(luminance.mean() / 255), float((luminance >= BLOWN).mean()),
                   laplacian_variance(luminance),
                   None if box is None else box.share)


def _span(start: float, end: float, length: int) -> tuple[float, float]:
    """[start, end] widened about its centre to at least ``MEASURE_SIDE`` (at most ``length``),
    and kept inside [0, length]."""
    size = min(max(end - start, MEASURE_SIDE), length)
    begin = min(max((start + end - size) / 2, 0.0), length - size)
    return begin, begin + size


def laplacian_variance(luminance: np.ndarray) -> float:
    """The variance of the 4-neighbour Laplacian of a (H, W) image: high where edges are sharp."""
    laplacian = (luminance[:-2, 1:-1] + luminance[2:, 1:-1] + luminance[1:-1, :-2]
                 + luminance[1:-1, 2:] - 4 * luminance[1:-1, 1:-1])
    return float(laplacian.var())


def may_need_advice(answer: Answer) -> bool:
    """Whether ``answer`` is unsure (a likely mix, or not a dog): only those get advice, so
    only their photos' quality needs measuring."""
    return answer.mixed or not answer.is_dog


def reason(answer: Answer, quality: Quality | None, limits: Limits = LIMITS, dogs: int = 1
           ) -> str | None:
    """Why the photo may have failed (a key of ``ADVICE``), or None: a confident answer (its
    quality may be None, unmeasured), or an unsure one from a photo with nothing wrong with it.

    ``dogs`` is how many dogs the answer names. Several dogs split the photo's breeds and
    each fills little of it: no fault of the photo, so only its exposure and blur count.
    """
    if not may_need_advice(answer) or quality is None:
        return None
    if quality.brightness < limits.dark:
        return "dark"
    if quality.blown > limits.bright:
        return "bright"
    if quality.sharpness < limits.blurred:
        return "blurred"
    if dogs > 1:
        return None
    # Not a dog, yet the dog map found one: too small a part of the photo to count.
    if quality.share is not None and (quality.share < limits.small or not answer.is_dog):
        return "small"
    return None if answer.is_dog else "no dog"


def advise(answer: Answer, quality: Quality | None, limits: Limits = LIMITS, dogs: int = 1
           ) -> str | None:
    """One line on how to retake the photo, or None (see ``reason``)."""
    why = reason(answer, quality, limits, dogs)
    return None if why is None else ADVICE[why]
