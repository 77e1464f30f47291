"""The classify command: photos in, a table or JSON lines out."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import TextIO

from model.answers import Answer, headline
from model.photo_sources import PhotoSource, SourceError
from model.predictor import Predictor
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


def _read(source: PhotoSource) -> bytes | SourceError:
    try:
        return source.read()
    except SourceError as error:
        return error


def classify_sources(sources: Iterable[PhotoSource], predictor: Predictor, as_json: bool,
                     out: TextIO, err: TextIO) -> int:
    """Classify every source, printing as we go; returns the number that failed."""
    failures = 0
    sources = iter(sources)
    while batch := list(itertools.islice(sources, BATCH)):
        photos = [_read(s) for s in batch]
        readable = [p for p in photos if isinstance(p, bytes)]
        answers = iter(predictor.classify(readable))
        for source, photo in zip(batch, photos, strict=True):
            result = next(answers) if isinstance(photo, bytes) else photo
            if isinstance(result, SourceError | ImageError):
                failures += 1
                print(f"error: {source.name}: {result}", file=err)
            elif as_json:
                print(json.dumps({"path": source.name, **result.to_json()}), file=out)
            else:
                print(format_table(source.name, result) + "\n", file=out)
            out.flush()
    return failures
