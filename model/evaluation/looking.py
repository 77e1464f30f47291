"""Ways of looking at a photo, side by side: breed accuracy and photo-to-answer time.

    scores = [score(variant, examples) for variant in looking_variants(predictor)]
    bank = ViewBank({"lite0": ..., "lite1": ..., "lite2": ...}, examples, detail=660)
    scores += [score_sweep(sweep, bank) for sweep in sweeps()]

Each variant turns photo bytes into ``Answer``s, and is scored on what people would get: the
top five breeds of each answer. ``looking_variants`` run the product's own code.

The sweep tries many more ways (test resolutions, Lite variants together, the second look's
settings) for one pass per distinct view: a ``ViewBank`` computes each view of every photo
once, and each ``Sweep`` combines views as ``look`` would. Timed (``timed``), a sweep runs on
``LivePhoto``s, which compute only the views it asks for, through the predictors.
"""

from __future__ import annotations

import functools
import io
import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from model.answers import (
    Answer,
    Box,
    PhotoAnswer,
    imagenet_breeds,
    make_answer,
)
from model.data.dataset import Example
from model.evaluation.photo_speed import timed_in_turns
from model.localize import crop_square
from model.predictor import (
    CROP_DETAIL,
    LOOK,
    LOOK_TWICE,
    Look,
    Predictor,
    combined,
    dogs_in_photo,
    sees_dogs,
)
from model.preprocess import centre_square, load_rgb, square_pixels, whole_square

BATCH = 32  # photos per call when scoring accuracy


@dataclass(frozen=True)
class Variant:
    name: str
    # photo bytes -> one Answer, or PhotoAnswer, each (every photo must be readable)
    answers: Callable[[list[bytes]], list[Answer] | list[PhotoAnswer]]


def looking_variants(predictor: Predictor) -> list[Variant]:
    """The product's own ways of looking: the centre crop (``classify``, the way of the issue's
    "today"), ``look`` as the bot looks, and ``look`` looking twice."""
    return [Variant("today: centre crop + mirror", predictor.classify),
            *(Variant(describe(how), functools.partial(predictor.look, how=how))
              for how in (LOOK, LOOK_TWICE))]


def describe(how: Look) -> str:
    """A variant's name in the table, e.g. "whole + mirror, crop (0.3) if unsure"."""
    whole = {"never": "whole", "unsure": "whole + mirror when unsure",
             "always": "whole + mirror"}[how.mirror]
    if how.second_look == "never":
        return whole
    crop = f"crop ({how.margin:g}){' + mirror' if how.mirror_crop else ''}"
    return f"{whole}, {crop} {'if unsure' if how.second_look == 'unsure' else 'always'}"


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
            first, in_five = _hits(example.label, result)
            top1, top5 = top1 + first, top5 + in_five
    return Score(len(examples), top1, top5, twice)


def _hits(label: str, answer: Answer) -> tuple[bool, bool]:
    """Whether ``answer`` names ``label`` first, and among its first five."""
    labels = [p.label for p in answer.predictions[:5]]
    return labels[0] == label, label in labels


def median_ms(variants: Sequence[Variant], photos: Sequence[bytes]) -> list[float]:
    """Median photo-to-answer time (ms) of each variant, one photo a call, taking turns
    (``timed_in_turns``)."""
    times = timed_in_turns({variant.name: variant.answers for variant in variants}, photos)
    return [statistics.median(times[variant.name]) * 1e3 for variant in variants]


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


# --- the sweep: each view computed once per data set, ways of combining views -----------------

Probs = tuple[np.ndarray, np.ndarray]  # a photo's ImageNet (1000,) and breed (N,) probabilities


@dataclass(frozen=True)
class View:
    """One square of a photo through one Lite variant at one test resolution (px).

    "whole" is the photo letterboxed, "centre" the centre crop, "dog" a crop with ``margin``
    around the first dog on the
    dog maps of the whole photo (that variant, its own resolution), averaged with its
    mirror's if ``map_mirror`` (as ``look`` does when it looks at the mirror image too).
    """

    square: str
    size: int
    variant: str = "lite2"
    margin: float = 0.0
    map_mirror: bool = True

    @property
    def detail(self) -> int:
        """The short side to decode a photo at for this view, as ``Predictor`` does."""
        return CROP_DETAIL * self.size if self.square == "dog" else self.size

    def pixels(self, image: Image.Image, dog: Box | None = None) -> np.ndarray:
        """The view's (size, size, 3) model input from the decoded photo."""
        square = {"centre": centre_square, "whole": whole_square,
                  "dog": lambda w, h: crop_square(dog, w, h, self.margin)}[self.square]
        return square_pixels(image, square(*image.size), self.size)


class Photo(Protocol):
    """What a sweep asks of a photo."""

    def probs(self, view: View, mirror: bool) -> Probs:
        """``view``'s probabilities, averaged with its mirror image's if ``mirror``."""

    def first_dog(self, variant: str, mirror: bool) -> tuple[Box, float]:
        """The first dog on the whole photo's dog map (averaged with the mirror's if
        ``mirror``) at ``variant``'s resolution, and the map's peak."""


@dataclass(frozen=True)
class Sweep:
    """A way of looking built from views: scored on a ``ViewBank``, timed on ``LivePhoto``s."""

    name: str
    answer: Callable[[Photo], Probs]
    cost: float  # backbone work, in Lite2 views at 260 px (today's classify: 2)
    detail: int  # the short side photos are decoded at


# Each Lite variant's time for one view at its own resolution, about that share of Lite2's
# (README, "ms b1": 16.1, 27.1, 30.5), and that resolution; the work grows with the pixels.
COST = {"lite0": (0.5, 224), "lite1": (0.9, 240), "lite2": (1.0, 260)}


def view_cost(view: View, mirror: bool) -> float:
    """The backbone work of a view (with its mirror), in Lite2 views at 260 px."""
    relative, own = COST[view.variant]
    return relative * (view.size / own) ** 2 * (2 if mirror else 1)


def looked(name: str, wholes: Sequence[tuple[View, bool]],
           crop: tuple[View, bool] | None = None) -> Sweep:
    """The photo through each of ``wholes`` (a view, and whether with its mirror),
    probabilities averaged; with ``crop`` (a "dog" view and its mirror flag), a second look
    when the first answer is unsure, combined as ``Predictor.look`` does. The first dog comes
    from the first whole view's map."""
    how = Look(second_look="unsure")
    first_view, first_mirror = wholes[0]

    def answer(photo: Photo) -> Probs:
        probs = [photo.probs(view, mirror) for view, mirror in wholes]
        first = tuple(np.mean(p, axis=0) for p in zip(*probs, strict=True))
        if crop is None:
            return first
        box, peak = photo.first_dog(first_view.variant, first_mirror)
        said = make_answer(*first, imagenet_breeds())
        if not sees_dogs(said, peak) or not how.looks_twice(said, box):
            return first
        return combined([first, photo.probs(*crop)])

    cost = sum(view_cost(view, mirror) for view, mirror in wholes)
    views = [view for view, _ in [*wholes, *([crop] if crop else [])]]
    return Sweep(name, answer, cost, max(view.detail for view in views))


def sweeps() -> list[Sweep]:
    """The ways of looking tried (README, "Looking closer"), by the three Lite variants."""
    def whole(size: int = 260, variant: str = "lite2") -> View:
        return View("whole", size, variant)

    def dog(margin: float, size: int, map_mirror: bool) -> View:
        return View("dog", size, margin=margin, map_mirror=map_mirror)

    def centre(size: int = 260, variant: str = "lite2") -> View:
        return View("centre", size, variant)

    rows = [looked(f"centre crop {size} px + mirror", [(centre(size), True)])
            for size in (260, 300)]
    rows += [looked(f"whole {size} px{' + mirror' * mirror}", [(whole(size), mirror)])
             for size in (260, 300, 330) for mirror in (True, False)]
    # The Lite variants together, each at its own resolution, probabilities averaged.
    for (square, make), mirror, chosen in itertools.product(
            (("centre crop", centre), ("whole", whole)), (True, False),
            (("lite0", "lite1", "lite2"), ("lite1", "lite2"), ("lite0", "lite2"))):
        rows.append(looked(f"{square}{' + mirror' * mirror}, {'+'.join(chosen)}",
                           [(make(COST[v][1], v), mirror) for v in reversed(chosen)]))
    # The second look: LOOK_TWICE, and the settings after the whole photo alone (the cheapest
    # first look), or with Lite1's view of it (as cheap as a mirror: 0.9 of Lite2).
    rows.append(looked("whole + mirror, crop (0.3) at 260 px if unsure", [(whole(), True)],
                       (dog(0.3, 260, True), False)))
    for lite1, margin, size, mirror_crop in itertools.product(
            (False, True), (0.3, 0.5), (260, 300), (True, False)):
        wholes = [(whole(), False)] + [(whole(240, "lite1"), False)] * lite1
        rows.append(looked(f"whole{', + lite1 whole' * lite1}, crop ({margin:g}) at {size} px"
                           f"{' + mirror' * mirror_crop} if unsure",
                           wholes, (dog(margin, size, False), mirror_crop)))
    return rows


class ViewBank:
    """The views of labelled photos, each computed once for all of them and kept.

    Zero-training models only (their breeds are ImageNet's): a view keeps the ImageNet and breed
    probabilities of each photo as it is and mirrored. Photos are decoded once, with a short
    side of at least ``detail`` px.
    """

    def __init__(self, predictors: dict[str, Predictor], examples: Sequence[Example],
                 detail: int):
        self._predictors = predictors
        self.labels = [example.label for example in examples]
        self._images = [load_rgb(example.path.read_bytes(), detail) for example in examples]
        self._probs: dict[View, tuple[np.ndarray, np.ndarray]] = {}  # (P, 2, 1000), (P, 2, N)
        self._dogs: dict[tuple[str, bool], list[tuple[Box, float]]] = {}

    def photos(self) -> list[Photo]:
        return [_BankPhoto(self, index) for index in range(len(self.labels))]

    def probs(self, view: View) -> tuple[np.ndarray, np.ndarray]:
        """ImageNet's (P, 2, 1000) and the breeds' (P, 2, N) probabilities of ``view`` of each
        photo, as is and mirrored."""
        if view not in self._probs:
            self._compute(view)
        return self._probs[view]

    def dogs(self, variant: str, mirror: bool) -> list[tuple[Box, float]]:
        """Each photo's first dog and the dog map's peak (see ``Photo.first_dog``)."""
        if (variant, mirror) not in self._dogs:
            self._compute(View("whole", self._predictors[variant].resolution, variant))
        return self._dogs[variant, mirror]

    def _compute(self, view: View) -> None:
        predictor = self._predictors[view.variant]
        dogs = self.dogs(view.variant, view.map_mirror) if view.square == "dog" else None
        pixels = np.stack([view.pixels(image, dogs[i][0] if dogs else None)
                           for i, image in enumerate(self._images)])
        # Only the whole photo at the model's own resolution gives the dog maps (``look``'s).
        has_maps = view == View("whole", predictor.resolution, view.variant)
        run = predictor.whole_probabilities if has_maps else predictor.probabilities
        as_is, mirrored = (run(p) for p in (pixels, pixels[:, :, ::-1]))
        self._probs[view] = tuple(np.stack([a, m], axis=1) for a, m in zip(as_is[:2], mirrored[:2],
                                                                          strict=True))
        if has_maps:
            # the mirror's maps mirrored back and averaged, as ``look`` does with a mirror
            both = [(a + m[:, :, ::-1]) / 2 for a, m in zip(as_is[2:], mirrored[2:], strict=True)]
            for mirror, maps in ((False, as_is[2:]), (True, both)):
                self._dogs[view.variant, mirror] = [
                    (dogs_in_photo(*image.size, *cells)[0], float(cells[0].max()))
                    for image, *cells in zip(self._images, *maps, strict=True)]


@dataclass(frozen=True)
class _BankPhoto:
    bank: ViewBank
    index: int

    def probs(self, view: View, mirror: bool) -> Probs:
        imagenet, breeds = (p[self.index][: 2 if mirror else 1] for p in self.bank.probs(view))
        return imagenet.mean(0), breeds.mean(0)  # (1000,), (N,)

    def first_dog(self, variant: str, mirror: bool) -> tuple[Box, float]:
        return self.bank.dogs(variant, mirror)[self.index]


class LivePhoto:
    """A photo from its bytes, each view computed through the predictors when first asked
    for: what a sweep's photo-to-answer time is measured on."""

    def __init__(self, photo: bytes, predictors: dict[str, Predictor], detail: int):
        self._image = load_rgb(photo, detail)
        self._predictors = predictors
        self._seen: dict[tuple[View, bool], Probs] = {}
        self._dogs: dict[tuple[str, bool], tuple[Box, float]] = {}

    def probs(self, view: View, mirror: bool) -> Probs:
        if (view, mirror) not in self._seen:
            predictor = self._predictors[view.variant]
            dog = (self.first_dog(view.variant, view.map_mirror)[0] if view.square == "dog"
                   else None)
            pixels = view.pixels(self._image, dog)[None]
            mirror_as = "always" if mirror else "never"
            if view == View("whole", predictor.resolution, view.variant):  # with its dog map
                imagenet, breeds, *maps = predictor.look_probabilities(pixels, mirror_as)
                first = dogs_in_photo(*self._image.size, *(m[0] for m in maps))[0]
                self._dogs[view.variant, mirror] = first, float(maps[0].max())
            else:
                imagenet, breeds = predictor.classify_probabilities(pixels, mirror_as)
            self._seen[view, mirror] = imagenet[0], breeds[0]
        return self._seen[view, mirror]

    def first_dog(self, variant: str, mirror: bool) -> tuple[Box, float]:
        if (variant, mirror) not in self._dogs:
            self.probs(View("whole", self._predictors[variant].resolution, variant), mirror)
        return self._dogs[variant, mirror]


def score_sweep(sweep: Sweep, bank: ViewBank) -> Score:
    """``score`` for a sweep, on the bank's photos."""
    breeds = imagenet_breeds()
    top1 = top5 = 0
    for label, photo in zip(bank.labels, bank.photos(), strict=True):
        first, in_five = _hits(label, make_answer(*sweep.answer(photo), breeds))
        top1, top5 = top1 + first, top5 + in_five
    return Score(len(bank.labels), top1, top5, None)


def timed(sweep: Sweep, predictors: dict[str, Predictor]) -> Variant:
    """The sweep as a ``Variant`` on live photos, for ``median_ms``."""
    breeds = imagenet_breeds()
    return Variant(sweep.name, lambda photos: [
        make_answer(*sweep.answer(LivePhoto(photo, predictors, sweep.detail)), breeds)
        for photo in photos])
