"""Several dogs in one photo: composites of two labelled photos, and how ``Predictor.look``
does on them and on photos of one dog.

    pairs = breed_pairs(examples, 40)
    report = composite_report(predictor, pairs)  # both dogs found, both breeds right
    split = split_report(predictor, examples)  # one dog taken for several

A composite puts two photos of different breeds side by side or one above the other, each
resized to the same square, so the truth is known: one dog in each half.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from model.answers import PhotoAnswer
from model.data.dataset import Example
from model.predictor import Predictor
from model.preprocess import load_rgb

SIDE = 224  # each photo of a composite is resized to SIDE × SIDE (dogs-dev's own size)
LAYOUTS = ("side by side", "one above the other")


def breed_pairs(examples: Sequence[Example], count: int, seed: int = 0
                ) -> list[tuple[Example, Example]]:
    """``count`` random pairs of photos of different breeds, drawn with a fixed seed."""
    rng, pairs = random.Random(seed), []
    while len(pairs) < count:
        first, second = rng.sample(list(examples), 2)
        if first.label != second.label:
            pairs.append((first, second))
    return pairs


def composite(first: bytes, second: bytes, layout: str) -> bytes:
    """A JPEG of two photos, each squashed to SIDE × SIDE, in ``layout``: first left (top)."""
    size = (2 * SIDE, SIDE) if layout == LAYOUTS[0] else (SIDE, 2 * SIDE)
    canvas = Image.new("RGB", size)
    for index, photo in enumerate((first, second)):
        tile = load_rgb(photo, SIDE).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
        canvas.paste(tile, (index * SIDE, 0) if layout == LAYOUTS[0] else (0, index * SIDE))
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@dataclass(frozen=True)
class CompositeScore:
    layout: str
    count: int  # composites
    two_dogs: int  # exactly two dogs found, one in each half
    both_right: int  # ... and each one's top breed is its photo's
    alone_right: int  # pairs whose two photos are both right when each is looked at alone


def composite_report(predictor: Predictor, pairs: Sequence[tuple[Example, Example]]
                     ) -> list[CompositeScore]:
    """For each layout: how often ``look`` finds the two dogs of a composite, each in its
    half, and names both breeds; and, for scale, how often it names both photos alone."""
    photos = [(a.path.read_bytes(), b.path.read_bytes()) for a, b in pairs]
    alone = predictor.look([photo for pair in photos for photo in pair])
    alone_right = sum(_top(alone[2 * i]) == a.label and _top(alone[2 * i + 1]) == b.label
                      for i, (a, b) in enumerate(pairs))
    scores = []
    for layout in LAYOUTS:
        answers = predictor.look([composite(a, b, layout) for a, b in photos])
        found = [halves(answer, layout) for answer in answers]
        right = sum(halves is not None and halves == (a.label, b.label)
                    for halves, (a, b) in zip(found, pairs, strict=True))
        scores.append(CompositeScore(layout, len(pairs), sum(h is not None for h in found),
                                     right, alone_right))
    return scores


def _top(answer: PhotoAnswer) -> str:
    return answer.answer.predictions[0].label


def halves(answer: PhotoAnswer, layout: str) -> tuple[str, str] | None:
    """The top breeds of the first and second half's dog, if exactly one dog is in each."""
    if len(answer.dogs) != 2:
        return None
    horizontal = layout == LAYOUTS[0]
    centres = [(d.box.left + d.box.right) / 2 if horizontal else (d.box.top + d.box.bottom) / 2
               for d in answer.dogs]
    if (centres[0] < 0.5) == (centres[1] < 0.5):
        return None
    ordered = sorted(zip(centres, answer.dogs, strict=True), key=lambda pair: pair[0])
    return tuple(dog.answer.predictions[0].label for _, dog in ordered)


@dataclass(frozen=True)
class SplitScore:
    count: int  # photos looked at
    several: list[str]  # paths of those in which several dogs were found


def split_report(predictor: Predictor, examples: Sequence[Example]) -> SplitScore:
    """In which photos ``look`` finds more than one dog (on photos of one dog: wrong splits)."""
    answers = predictor.look([e.path.read_bytes() for e in examples])
    return SplitScore(len(examples), [str(e.path) for e, answer in
                                      zip(examples, answers, strict=True)
                                      if len(answer.dogs) > 1])
