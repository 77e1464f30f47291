"""The classify command: photos in, a table or JSON lines out.

Each photo is looked at whole (``Predictor.look``): the answer for the photo, and where each
dog is with its own answer; with ``LOOK_TWICE``, closer too.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import TextIO

from model.answers import Answer, PhotoAnswer, headline
from model.photo_sources import PhotoSource, SourceError
from model.predictor import LOOK, Look, Predictor
from model.preprocess import ImageError

BATCH = 32
BAR_WIDTH = 20


def format_table(name: str, answer: Answer) -> str:
    """A readable block: the headline, then one bar per predicted breed."""
    lines = [f"{name}: {headline(answer)}  (dog {answer.dog_probability:.0%})"]
    for guess in answer.predictions:
        bar = "█" * round(guess.probability * BAR_WIDTH)
        lines.append(f"  {guess.name:<32} {bar:<{BAR_WIDTH}} {guess.probability:6.1%}")
    return "\n".join(lines)


def format_photo(name: str, photo: PhotoAnswer) -> str:
    """The photo's block, then, if it holds several dogs, a line for each, then the advice."""
    lines = [format_table(name, photo.answer)]
    if len(photo.dogs) > 1:
        for number, dog in enumerate(photo.dogs, 1):
            box = ", ".join(f"{v:.2f}" for v in (dog.box.left, dog.box.top, dog.box.right,
                                                   dog.box.bottom))
            lines.append(f"  dog {number} at ({box}), {dog.box.share:.0%} of the photo: "
                         f"{headline(dog.answer)}")
    if photo.advice:
        lines.append(f"  advice: {photo.advice}")
    return "\n".join(lines)


def to_json(name: str, photo: PhotoAnswer) -> dict:
    """One line of ``--json``: the photo's answer, its dogs (box: left, top, right, bottom as
    fractions of the photo), and ``advice`` (null when there is none)."""
    return {"path": name, **photo.to_json()}


def _read(source: PhotoSource) -> bytes | SourceError:
    try:
        return source.read()
    except SourceError as error:
        return error


def classify_sources(sources: Iterable[PhotoSource], predictor: Predictor, as_json: bool,
                     out: TextIO, err: TextIO, how: Look = LOOK) -> int:
    """Classify every source, printing as we go; returns the number that failed."""
    failures = 0
    sources = iter(sources)
    while batch := list(itertools.islice(sources, BATCH)):
        photos = [_read(s) for s in batch]
        readable = [p for p in photos if isinstance(p, bytes)]
        answers = iter(predictor.look(readable, how))
        for source, photo in zip(batch, photos, strict=True):
            result = next(answers) if isinstance(photo, bytes) else photo
            if isinstance(result, SourceError | ImageError):
                failures += 1
                print(f"error: {source.name}: {result}", file=err)
            elif as_json:
                print(json.dumps(to_json(source.name, result)), file=out)
            else:
                print(format_photo(source.name, result) + "\n", file=out)
            out.flush()
    return failures
