"""Scoring photo files in chunks (for the backbone scripts and the report), ImageNet accuracy,
and the threshold sweeps of the zero-training model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.efficientnet import NUM_CLASSES
from model.labels import BREED_CLASSES, imagenet_classes
from model.predictor import Predictor
from model.preprocess import ImageError

CHUNK = 64  # photos read, decoded and classified per step, to bound memory


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    wnid: str


def labelled_photos(folder: Path, split: str = "val", limit: int | None = None
                    ) -> list[LabelledPhoto]:
    """Photos named ``<wnid>-<Name>.jpg`` in ``folder``, or a Stanford-layout folder's split
    (``Images/<wnid>-<Name>/…`` listed by ``splits/<split>.txt``); every n-th to honour limit."""
    if (folder / "Images").is_dir():
        lines = (folder / "splits" / f"{split}.txt").read_text().split()
        photos = [LabelledPhoto(folder / "Images" / line, line.split("-", 1)[0]) for line in lines]
    else:
        photos = [LabelledPhoto(p, p.name.split("-", 1)[0]) for p in sorted(folder.glob("*.jpg"))]
    if limit and limit < len(photos):
        photos = photos[:: len(photos) // limit][:limit]
    return photos


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
                imagenet_probs, breed_probs = predictor.probabilities(np.stack(list(
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


def imagenet_probabilities(predictor: Predictor, paths: list[Path]) -> np.ndarray:
    """(N, 1000) ImageNet softmax for photos that must all be readable."""
    scores = score_files(predictor, paths)
    if scores.unreadable:
        raise ImageError("unreadable evaluation photos: "
                         f"{[str(paths[i]) for i, _ in scores.unreadable]}")
    return scores.imagenet_probs


def imagenet_accuracy(imagenet_probs: np.ndarray, wnids: list[str]) -> dict[str, float]:
    """Top-1 over all 1000 classes, and over the dog classes only (argmax among breeds)."""
    index = {c.wnid: c.index for c in imagenet_classes()}
    truth = np.array([index[w] for w in wnids])
    breeds = np.array(BREED_CLASSES)
    dog_top1 = breeds[imagenet_probs[:, breeds].argmax(1)]
    return {"count": len(wnids),
            "top1": float((imagenet_probs.argmax(1) == truth).mean()),
            "dog_top1": float((dog_top1 == truth).mean())}


def dog_threshold_sweep(dog_probs: np.ndarray, other_probs: np.ndarray,
                        thresholds: np.ndarray) -> list[dict[str, float]]:
    """For each threshold: share of dogs kept, share of non-dogs refused."""
    return [{"threshold": float(t),
             "dogs_kept": float((dog_probs >= t).mean()),
             "others_refused": float((other_probs < t).mean())} for t in thresholds]


def _mean(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else float("nan")


def mix_threshold_sweep(breed_probs: np.ndarray, truth: np.ndarray,
                        thresholds: np.ndarray) -> list[dict[str, float]]:
    """For each threshold: share answered with one breed, and how often that breed is right;
    for the rest ("a mix"), how often the true breed is among the three named."""
    top1 = breed_probs.argmax(1)
    top3 = np.argsort(-breed_probs, 1)[:, :3]
    confident_p = breed_probs.max(1)
    rows = []
    for t in thresholds:
        sure = confident_p >= t
        rows.append({"threshold": float(t), "single_breed": float(sure.mean()),
                     "single_right": _mean(top1[sure] == truth[sure]),
                     "mix_has_truth": _mean((top3[~sure] == truth[~sure, None]).any(1))})
    return rows



def photos_as_bytes(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Encode arrays (any of bool, grey, RGB, RGBA) as PNG, so they take the real decode path."""
    import io

    from PIL import Image

    encoded = {}
    for name, array in arrays.items():
        if array.dtype != np.uint8:
            array = (array / max(array.max(), 1) * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        encoded[name] = buffer.getvalue()
    return encoded
