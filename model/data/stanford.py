"""Stanford Dogs as a manifest: one photo per annotated dog, cropped with a margin.

Two ways in, one way out:

- ``prepare_from_tfds``: tensorflow-datasets' ``stanford_dogs`` builder downloads and parses
  the official archives (120 breeds, official train/test split; needs the ``stanford`` extra);
- ``prepare_from_dir``: the folder users often already have, Stanford's or Kaggle's layout
  ``Images/<wnid>-<Name>/<file>.jpg`` with or without ``Annotation/<wnid>-<Name>/<file>``
  (PASCAL VOC XML), splits from ``splits/<split>.txt`` or the official ``lists/*_list.mat``.

Both write ``<out>/<wnid>-<Name>/<stem>_<i>.jpg`` (box ``i`` of the photo, JPEG quality 95)
or ``<stem>.jpg`` (a photo without boxes, kept whole) and ``<out>/manifest.csv``. A run
builds everything in a sibling staging folder and swaps it in only when complete.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
import os
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from model.data.dataset import (
    SPLITS,
    STANFORD_LICENCE,
    Example,
    sha256_of,
    stanford_label,
    write_manifest,
)
from model.labels import imagenet_classes
from model.photo_sources import PHOTO_SUFFIXES
from model.preprocess import exif_upright

logger = logging.getLogger(__name__)

SOURCE = "stanford"
LICENCE = STANFORD_LICENCE
DEFAULT_MARGIN = 0.1
JPEG_QUALITY = 95
INSTALL_HINT = "pip install -e '.[stanford]'"
TFDS_SPLITS = ("train", "test")
MANIFEST = "manifest.csv"
_EPSILON_PX = 1e-3  # float32 noise in normalised boxes must not widen a crop by a pixel
_LOG_EVERY = 1000

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in its frame's units
Frame = tuple[float, float]  # (width, height) the box coordinates refer to


class StanfordError(Exception):
    """A problem the user can fix (missing folder, missing package); str() says what."""


class MissingDependencyError(StanfordError):
    """TensorFlow, tensorflow-datasets or scipy is not installed."""


@dataclass(frozen=True)
class SourceImage:
    """One photo of the data set and the dogs to cut from it."""

    folder: str  # "n02085620-Chihuahua": the output sub-folder, and the label
    stem: str  # "n02085620_10074"
    split: str  # "train", "val", "test" or ""
    boxes: tuple[Box, ...] = ()  # empty: keep the photo whole
    frame: Frame | None = None  # what box coordinates refer to; None: the image's pixels


@dataclass
class Prepared:
    """What a run wrote: the manifest, its examples, and how many source photos they came from."""

    manifest: Path
    examples: list[Example] = field(default_factory=list)
    images: Counter[str] = field(default_factory=Counter)  # source photos per split
    whole: int = 0  # photos kept whole (no usable box)

    def summary(self) -> str:
        """A few lines for the terminal: totals, then per split."""
        breeds = {e.label for e in self.examples}
        crops = len(self.examples) - self.whole
        lines = [f"{sum(self.images.values()):,} images -> {len(self.examples):,} photos "
                 f"({crops:,} crops, {self.whole:,} kept whole) of {len(breeds)} breeds"]
        for split in sorted(self.images, key=_split_order):
            examples = [e for e in self.examples if e.split == split]
            lines.append(f"  {split or '(no split)':<10} {self.images[split]:>7,} images "
                         f"{len(examples):>7,} photos {len({e.label for e in examples}):>4} breeds")
        lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


def _split_order(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


# --- names and geometry ---------------------------------------------------------------------


@functools.cache
def _imagenet_names() -> dict[str, str]:
    return {c.wnid: c.name for c in imagenet_classes()}


def breed_of(folder: str) -> tuple[str, str]:
    """``"n02085620-chihuahua"`` -> ``("n02085620", "Chihuahua")``: ImageNet's display name
    for the WordNet id where it has one, else the folder's name with spaces."""
    wnid, fallback = stanford_label(folder)
    return wnid, _imagenet_names().get(wnid, fallback)


def box_from_tfds(bbox: Sequence[float]) -> Box:
    """tfds' normalised ``(ymin, xmin, ymax, xmax)`` -> ``(left, top, right, bottom)``,
    still normalised (in a frame of ``(1, 1)``)."""
    ymin, xmin, ymax, xmax = (float(v) for v in bbox)
    return xmin, ymin, xmax, ymax


def to_pixels(box: Box, frame: Frame | None, size: tuple[int, int]) -> Box:
    """Scale ``box`` from ``frame`` (e.g. an annotation's declared size) to an image of ``size``."""
    if frame is None:
        return box
    sx, sy = size[0] / frame[0], size[1] / frame[1]
    left, top, right, bottom = box
    return left * sx, top * sy, right * sx, bottom * sy


def crop_region(box: Box, size: tuple[int, int],
                margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int] | None:
    """The pixel region to cut for a dog in ``box`` (pixels) of an image of ``size``.

    Grows the box by ``margin`` times its width (height) on the left and right (top and
    bottom), rounds outwards to whole pixels and clips to the image. None for a box that is
    empty or lies outside the image.
    """
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        return None
    dx, dy = margin * (right - left), margin * (bottom - top)
    region = (max(0, math.floor(left - dx + _EPSILON_PX)),
              max(0, math.floor(top - dy + _EPSILON_PX)),
              min(size[0], math.ceil(right + dx - _EPSILON_PX)),
              min(size[1], math.ceil(bottom + dy - _EPSILON_PX)))
    return region if region[2] > region[0] and region[3] > region[1] else None


# --- reading the Stanford files -------------------------------------------------------------


def read_voc(path: Path) -> tuple[tuple[Box, ...], Frame | None]:
    """Every ``<object><bndbox>`` of a PASCAL VOC file (pixels), and its declared ``<size>``."""
    root = ET.parse(path).getroot()
    boxes = tuple(tuple(float(bndbox.findtext(tag, "nan"))
                        for tag in ("xmin", "ymin", "xmax", "ymax"))
                  for bndbox in root.iter("bndbox"))
    if any(math.isnan(v) for box in boxes for v in box):
        raise ValueError("a <bndbox> lacks one of xmin, ymin, xmax, ymax")
    width, height = (float(root.findtext(f"size/{tag}", "0") or 0) for tag in ("width", "height"))
    return boxes, ((width, height) if width > 0 and height > 0 else None)


def read_mat_list(path: Path) -> list[str]:
    """The ``file_list`` of Stanford's ``train_list.mat`` / ``test_list.mat``:
    ``"<wnid>-<Name>/<file>.jpg"`` relative to ``Images/``."""
    try:
        from scipy.io import loadmat
    except ImportError as error:
        raise MissingDependencyError(f"reading {path} needs scipy: {INSTALL_HINT}") from error
    names = loadmat(path, squeeze_me=True)["file_list"]
    return [str(name) for name in np.atleast_1d(names)]


def read_splits(root: Path) -> dict[str, str]:
    """``"<folder>/<file>"`` -> split, from ``splits/<split>.txt`` (preferred) or the official
    ``lists/{train,test}_list.mat`` (also found in ``root`` itself); empty without either."""
    listings = {s: root / "splits" / f"{s}.txt" for s in SPLITS}
    if any(p.is_file() for p in listings.values()):
        logger.info("splits from %s", root / "splits")
        return {name: split for split, p in listings.items() if p.is_file()
                for name in p.read_text().split()}
    for folder in (root / "lists", root):
        mats = {s: folder / f"{s}_list.mat" for s in TFDS_SPLITS}
        if any(p.is_file() for p in mats.values()):
            logger.info("splits from %s", folder)
            return {name: split for split, p in mats.items() if p.is_file()
                    for name in read_mat_list(p)}
    logger.info("no splits/*.txt or lists/*_list.mat in %s: split left empty", root)
    return {}


def _first_dir(root: Path, *candidates: str) -> Path | None:
    return next((root / c for c in candidates if (root / c).is_dir()), None)


def _annotation(annotations: Path | None, folder: str, stem: str) -> Path | None:
    if annotations is None:
        return None
    base = annotations / folder / stem
    return next((p for p in (base, base.with_name(stem + ".xml")) if p.is_file()), None)


def _read_boxes(path: Path | None) -> tuple[tuple[Box, ...], Frame | None]:
    if path is None:
        return (), None
    try:
        return read_voc(path)
    except (ET.ParseError, ValueError) as error:
        logger.warning("%s: unreadable annotation (%s): keeping the photo whole", path, error)
        return (), None


def dir_sources(root: Path) -> Iterator[tuple[Path, SourceImage]]:
    """Every photo under ``root/Images`` (or Kaggle's ``images/Images``) with its boxes and
    split."""
    images = _first_dir(root, "Images", "images/Images")
    if images is None:
        raise StanfordError(f"{root}: no Images/ folder (expected Images/<wnid>-<Name>/*.jpg)")
    annotations = _first_dir(root, "Annotation", "annotations/Annotation")
    if annotations is None:
        logger.info("%s: no Annotation/ folder: photos are kept whole", root)
    split_of = read_splits(root)
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            boxes, frame = _read_boxes(_annotation(annotations, folder.name, path.stem))
            split = split_of.get(f"{folder.name}/{path.name}", "")
            yield path, SourceImage(folder.name, path.stem, split, boxes, frame)


# --- writing ----------------------------------------------------------------------------------


def _save_jpeg(image: Image.Image, path: Path) -> str:
    """Write ``image`` as a JPEG; returns its sha256."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _example(path: Path, sha256: str, source: SourceImage) -> Example:
    label, name = breed_of(source.folder)
    return Example(path, sha256, label, name, SOURCE, LICENCE, source.split)


def cut(image: Image.Image, source: SourceImage, staging: Path,
        margin: float = DEFAULT_MARGIN) -> list[Example]:
    """Save one crop per box of ``source`` (upright per EXIF), or the whole image when it has
    no usable box, under ``staging/<folder>/``; one ``Example`` per file written."""
    folder = staging / source.folder
    folder.mkdir(exist_ok=True)
    regions = [crop_region(to_pixels(box, source.frame, image.size), image.size, margin)
               for box in source.boxes]
    if any(r is None for r in regions):
        logger.warning("%s/%s: skipping empty or out-of-image boxes", source.folder, source.stem)
    if not any(regions):
        path = folder / f"{source.stem}.jpg"
        return [_example(path, _save_jpeg(exif_upright(image), path), source)]
    examples = []
    for i, region in enumerate(regions):
        if region is not None:
            path = folder / f"{source.stem}_{i}.jpg"
            crop = exif_upright(image.crop(region))
            examples.append(_example(path, _save_jpeg(crop, path), source))
    return examples


def _cut_file(path: Path, source: SourceImage, staging: Path, margin: float) -> list[Example]:
    """``cut`` for a file; a JPEG without boxes is copied byte for byte (no re-encoding)."""
    if not source.boxes and path.suffix.lower() in (".jpg", ".jpeg"):
        (staging / source.folder).mkdir(exist_ok=True)
        target = staging / source.folder / f"{source.stem}.jpg"
        shutil.copyfile(path, target)
        return [_example(target, sha256_of(target), source)]
    with Image.open(path) as image:
        rgb = image.convert("RGB")  # keeps the EXIF block, so crops can be made upright
    return cut(rgb, source, staging, margin)


@contextlib.contextmanager
def _staged(out: Path, protect: Path | None = None) -> Iterator[Path]:
    """A fresh staging folder beside ``out``; removed if the run fails.

    Refuses an ``out`` that holds files but no manifest (not ours to replace), or one that is
    ``protect`` (the input) or contains it.
    """
    out = out.resolve()
    if protect is not None and (out == protect.resolve() or out in protect.resolve().parents):
        raise StanfordError(f"--out {out} would overwrite the input {protect}")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise StanfordError(f"{out} holds files but no {MANIFEST}: not overwriting it")
    if out.exists() and not out.is_dir():
        raise StanfordError(f"{out} is not a folder")
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging`` (the old output is removed only after the rename)."""
    old = out.parent / f".{out.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _finish(prepared: Prepared, staging: Path, out: Path) -> Prepared:
    """Write the manifest in ``staging``, swap it in for ``out``, point the examples there."""
    if not prepared.examples:
        raise StanfordError("no photos found")
    write_manifest(prepared.examples, staging / MANIFEST)
    out = out.resolve()
    _swap(staging, out)
    prepared.manifest = out / MANIFEST
    prepared.examples = [replace(e, path=out / e.path.relative_to(staging))
                         for e in prepared.examples]
    logger.info("wrote %d photos to %s", len(prepared.examples), out)
    return prepared


def _add(prepared: Prepared, source: SourceImage, examples: list[Example]) -> None:
    prepared.examples += examples
    prepared.images[source.split] += 1
    prepared.whole += len(examples) == 1 and examples[0].path.stem == source.stem
    total = sum(prepared.images.values())
    if total % _LOG_EVERY == 0:
        logger.info("%d images, %d photos", total, len(prepared.examples))


# --- the two ways in --------------------------------------------------------------------------


def prepare_from_dir(root: Path, out: Path, margin: float = DEFAULT_MARGIN) -> Prepared:
    """Crop every annotated dog of a Stanford-layout folder into ``out`` (see module doc)."""
    if not root.is_dir():
        raise StanfordError(f"{root}: no such folder")
    with _staged(out, protect=root) as staging:
        prepared = Prepared(out / MANIFEST)
        for path, source in dir_sources(root):
            try:
                examples = _cut_file(path, source, staging, margin)
            except (OSError, Image.DecompressionBombError) as error:
                logger.warning("%s: unreadable photo (%s): skipped", path, error)
                continue
            _add(prepared, source, examples)
        return _finish(prepared, staging, out)


def _import_tfds() -> Any:
    """tensorflow_datasets, imported only when needed (TensorFlow is an optional extra)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow  # noqa: F401  (tfds needs it to build and read the data set)
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise MissingDependencyError(
            f"preparing Stanford Dogs through tensorflow-datasets needs TensorFlow and "
            f"tensorflow-datasets: {INSTALL_HINT}") from error
    return tfds


def tfds_source(record: dict[str, Any], split: str, label_names: Sequence[str]) -> SourceImage:
    """A tfds ``stanford_dogs`` record (numpy) as a ``SourceImage``.

    The label names are lower-cased folder names (``"n02085620-chihuahua"``); the folder in
    ``image/filename`` (``"Images/n02085620-Chihuahua/n02085620_10074.jpg"``) keeps the case.
    """
    filename = PurePosixPath(record["image/filename"].decode())
    label_name = label_names[int(record["label"])]
    folder = filename.parent.name
    if folder.lower() != label_name:
        folder = label_name
    boxes = tuple(box_from_tfds(b) for b in np.asarray(record["objects"]["bbox"]).reshape(-1, 4))
    return SourceImage(folder, filename.stem, split, boxes, frame=(1.0, 1.0))


def prepare_from_tfds(out: Path, data_dir: Path | None = None, margin: float = DEFAULT_MARGIN,
                      download_config: Any = None) -> Prepared:
    """Download and prepare tfds' ``stanford_dogs`` (cached in ``data_dir``, tfds' default
    ``~/tensorflow_datasets`` when None), then crop every dog into ``out``.

    ``download_config`` is passed to ``download_and_prepare`` (a
    ``tfds.download.DownloadConfig``, e.g. to skip statistics).
    """
    tfds = _import_tfds()
    builder = tfds.builder("stanford_dogs", data_dir=None if data_dir is None else str(data_dir))
    builder.download_and_prepare(download_config=download_config)
    label_names = builder.info.features["label"].names
    with _staged(out) as staging:
        prepared = Prepared(out / MANIFEST)
        for split in TFDS_SPLITS:
            dataset = builder.as_dataset(split=split, as_supervised=False, shuffle_files=False)
            for record in tfds.as_numpy(dataset):
                source = tfds_source(record, split, label_names)
                _add(prepared, source, cut(Image.fromarray(record["image"]), source, staging,
                                           margin))
        return _finish(prepared, staging, out)
