"""Running a model over labelled photos: which photos to evaluate, and their probabilities.

    examples = select_examples(load_data(path), "val", limit)
    scored = score(predictor, examples)  # breed probabilities of the photos that read

Photos are read, decoded and classified ``CHUNK`` at a time to bound memory; unreadable ones
are set aside with the reason, never fatal. The numbers computed from the probabilities are
in ``model.evaluation.metrics``.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.data.dataset import Example, load_examples
from model.efficientnet import NUM_CLASSES
from model.predictor import Predictor
from model.preprocess import ImageError

log = logging.getLogger(__name__)

CHUNK = 64  # photos read, decoded and classified per step, to bound memory


class EvaluationError(ValueError):
    """Data that cannot be evaluated; str(error) says why in one line."""


# --- which photos ---------------------------------------------------------------------------

def load_data(data: Path) -> list[Example]:
    """All labelled photos of a manifest or folder; EvaluationError when there are none."""
    if not data.exists():
        raise EvaluationError(f"{data}: no such file or folder")
    try:
        examples = load_examples(data)
    except (OSError, ValueError, TypeError, KeyError, csv.Error) as error:
        raise EvaluationError(f"{data}: {error}") from error
    if not examples:
        raise EvaluationError(f"{data}: no labelled photos found")
    return examples


def select_examples(examples: list[Example], split: str | None = "val",
                    limit: int | None = None) -> list[Example]:
    """The photos of ``split`` ("all" or None: every photo), every n-th to honour ``limit``.

    Data without any split information (e.g. plain class folders) is used whole, because
    refusing it would make quick evaluations of ad-hoc folders impossible.
    """
    if split and split != "all":
        splits = {e.split for e in examples} - {""}
        if splits:
            examples = [e for e in examples if e.split == split]
            if not examples:
                raise EvaluationError(f"no photos in split {split!r} (the data has: "
                                      f"{', '.join(sorted(splits))})")
        else:
            log.info("the data has no splits: evaluating all %d photos", len(examples))
    if limit and limit < len(examples):
        # A stride rather than the first N: the examples are sorted by breed, so this keeps
        # every breed represented.
        examples = examples[:: len(examples) // limit][:limit]
    return examples


# --- their probabilities --------------------------------------------------------------------

@dataclass(frozen=True)
class FileScores:
    """Probabilities for the photo files that could be read, and why the others could not."""

    read: list[int]  # indices into the paths given
    imagenet_probs: np.ndarray  # (len(read), 1000)
    breed_probs: np.ndarray  # (len(read), len(predictor.breeds))
    unreadable: list[tuple[int, str]]  # (index, reason)


def score_files(predictor: Predictor, paths: list[Path]) -> FileScores:
    """Read, decode and classify photo files ``CHUNK`` at a time, to bound memory."""
    read, unreadable, imagenet_chunks, breed_chunks = [], [], [], []
    with tqdm(total=len(paths), desc="classifying", unit="photo",
              disable=len(paths) <= CHUNK) as bar:
        for start in range(0, len(paths), CHUNK):
            chunk = range(start, min(start + CHUNK, len(paths)))
            pixels, failed = _decode_files(predictor, paths, chunk)
            unreadable += failed
            if pixels:
                imagenet_probs, breed_probs = predictor.classify_probabilities(np.stack(list(
                    pixels.values())))
                imagenet_chunks.append(imagenet_probs)
                breed_chunks.append(breed_probs)
                read += list(pixels)
            bar.update(len(chunk))
    if not read:
        imagenet_chunks = [np.zeros((0, NUM_CLASSES), np.float32)]
        breed_chunks = [np.zeros((0, len(predictor.breeds)), np.float32)]
    return FileScores(read, np.concatenate(imagenet_chunks), np.concatenate(breed_chunks),
                      sorted(unreadable))


def _decode_files(predictor: Predictor, paths: list[Path], indices: range
                  ) -> tuple[dict[int, np.ndarray], list[tuple[int, str]]]:
    """Pixels of the files that read and decode, by index; (index, reason) for the rest."""
    photos, failed = {}, []
    for i in indices:
        try:
            photos[i] = paths[i].read_bytes()
        except OSError as error:
            failed.append((i, error.strerror or str(error)))
    pixels = {}
    for i, decoded in zip(photos, predictor.decode(list(photos.values())), strict=True):
        if isinstance(decoded, ImageError):
            failed.append((i, str(decoded)))
        else:
            pixels[i] = decoded
    return pixels, failed


def score_every_file(predictor: Predictor, paths: list[Path]) -> FileScores:
    """``score_files`` for photos that must all be readable."""
    scores = score_files(predictor, paths)
    if scores.unreadable:
        raise ImageError("unreadable evaluation photos: "
                         f"{[str(paths[i]) for i, _ in scores.unreadable]}")
    return scores


@dataclass
class Scored:
    """Predictions on the photos that could be evaluated."""

    examples: list[Example]  # readable photos with a breed the model knows
    truth: np.ndarray  # (M,) index into predictor.breeds
    breed_probs: np.ndarray  # (M, N)
    unknown: Counter  # label -> photos whose breed the model does not know
    unreadable: list[dict]  # {"path", "reason"}


def score(predictor: Predictor, examples: list[Example]) -> Scored:
    """Classify every photo whose breed the model knows; count the unknown and unreadable."""
    index = {b.label: i for i, b in enumerate(predictor.breeds)}
    unknown = Counter(e.label for e in examples if e.label not in index)
    known = [e for e in examples if e.label in index]
    scores = score_files(predictor, [e.path for e in known])
    kept = [known[i] for i in scores.read]
    unreadable = [{"path": str(known[i].path), "reason": reason}
                  for i, reason in scores.unreadable]
    for bad in unreadable:
        log.warning("skipped %s: %s", bad["path"], bad["reason"])
    if not kept:
        raise EvaluationError(f"none of the {len(examples)} photos could be evaluated: "
                              f"{len(unreadable)} unreadable, {sum(unknown.values())} of "
                              "breeds the model does not know")
    truth = np.array([index[e.label] for e in kept])
    return Scored(kept, truth, scores.breed_probs, unknown, unreadable)
