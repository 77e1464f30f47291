"""Labelled photos: the manifest format every data script writes and training reads.

A manifest is a CSV with one photo a row (columns ``MANIFEST_FIELDS``); ``path`` is relative
to the manifest's folder unless absolute. ``load_examples`` also reads three folder layouts
directly: Stanford Dogs' (``Images/<wnid>-<Name>/…`` with ``splits/{train,val,test}.txt``),
plain class folders (``<class>/*.jpg``, as Keras' ``flow_from_directory`` expects) and photos
named by their class (``<wnid>-<Name>.jpg``, as in imagenet-dogs-121).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import imagehash
import numpy as np

from model.answers import Box
from model.data.csv_log import read_rows
from model.photo_sources import PHOTO_SUFFIXES
from model.preprocess import load_rgb

STANFORD_LICENCE = "ImageNet terms: non-commercial research"  # Stanford Dogs are ImageNet photos

SPLITS = ("train", "val", "test")
WNID_NAME = re.compile(r"n\d{8}-.+")  # "n02099601-golden_retriever", Stanford Dogs' naming
NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance (of 64 bits) at which two photos are "the same"


@dataclass(frozen=True)
class Example:
    path: Path
    sha256: str
    label: str  # stable id: a WordNet id ("n02099601") or a slug ("jindo")
    name: str  # display name ("golden retriever")
    source: str  # "stanford", "flickr", "folder", "correction", …
    licence: str  # "" where the source sets no terms of its own
    split: str  # "train", "val", "test", or "" before splitting
    # One dog of several in the photo (a correction of that dog), which training crops as the
    # bot does; None: the whole photo. Manifests list whole photos.
    box: Box | None = None

    @property
    def key(self) -> str:
        """What the example shows, for feature caches: the photo, or one dog's box in it."""
        return item_key(self.sha256, self.box)


def item_key(sha256: str, box: Box | None) -> str:
    """The photo's sha256, or for a dog in it ``<sha256>-dog-<left>-<top>-<right>-<bottom>``
    (fractions to 4 places, as the bot stores boxes): safe as a file name."""
    if box is None:
        return sha256
    return f"{sha256}-dog-" + "-".join(f"{value:.4f}" for value in astuple(box))


MANIFEST_FIELDS = tuple(f.name for f in fields(Example) if f.name != "box")


def sha256_hex(data: bytes) -> str:
    """The hex sha256 that identifies a photo everywhere (manifests, the bot's photo store)."""
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    return sha256_hex(path.read_bytes())


def stanford_label(folder_name: str) -> tuple[str, str]:
    """"n02099601-golden_retriever" -> ("n02099601", "golden retriever")."""
    wnid, _, name = folder_name.partition("-")
    return wnid, name.replace("_", " ")


def slug(name: str) -> str:
    """A stable label for a breed without a WordNet id: "Korean Jindo" -> "korean-jindo".

    Names without Latin letters or digits ("진돗개") get a short hash, never an empty label.
    """
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return text or "breed-" + hashlib.sha1(name.strip().encode()).hexdigest()[:8]


def class_label(folder_name: str) -> tuple[str, str]:
    """A plain class folder: a Stanford-style name, or any name made into a slug label."""
    if WNID_NAME.fullmatch(folder_name):
        return stanford_label(folder_name)
    name = folder_name.replace("_", " ").strip()
    return slug(name), name


def _photos_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)


def from_stanford_dir(root: Path, source: str = "stanford") -> list[Example]:
    """A Stanford-layout folder; splits from ``splits/<split>.txt`` where present."""
    split_of = {}
    for split in SPLITS:
        listing = root / "splits" / f"{split}.txt"
        if listing.exists():
            split_of |= dict.fromkeys(listing.read_text().split(), split)
    examples = []
    for folder in sorted(p for p in (root / "Images").iterdir() if p.is_dir()):
        label, name = stanford_label(folder.name)
        for path in _photos_under(folder):
            relative = f"{folder.name}/{path.name}"
            examples.append(Example(path, sha256_of(path), label, name, source, STANFORD_LICENCE,
                                    split_of.get(relative, "")))
    return examples


def from_class_folders(root: Path, source: str = "folder") -> list[Example]:
    """``root/<class>/<photo>``: every sub-folder is a class, no splits yet."""
    examples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label, name = class_label(folder.name)
        examples += [Example(p, sha256_of(p), label, name, source, "", "")
                     for p in _photos_under(folder)]
    return examples


def from_named_photos(root: Path, source: str = "folder") -> list[Example]:
    """``root/<wnid>-<Name>.jpg``: photos named by their class, no splits; others are ignored."""
    examples = []
    for path in _photos_under(root):
        if WNID_NAME.fullmatch(path.stem):
            label, name = stanford_label(path.stem)
            examples.append(Example(path, sha256_of(path), label, name, source, "", ""))
    return examples


def read_manifest(path: Path) -> list[Example]:
    return [Example(**(row | {"path": path.parent / row["path"]}))
            for row in read_rows(path, MANIFEST_FIELDS, "manifest")]


def write_manifest(examples: Iterable[Example], path: Path) -> None:
    """Write ``examples`` with paths relative to the manifest where possible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, MANIFEST_FIELDS)
        writer.writeheader()
        for example in examples:
            if example.box is not None:  # it would read back as the whole photo
                raise ValueError(f"{example.key}: a manifest lists whole photos, not dogs")
            writer.writerow({name: getattr(example, name) for name in MANIFEST_FIELDS}
                            | {"path": _relative(example.path, path.parent)})


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def load_examples(data: Path) -> list[Example]:
    """A manifest CSV, a Stanford-layout folder, or class folders and photos named by class."""
    if data.is_file():
        return read_manifest(data)
    if (data / "Images").is_dir():
        return from_stanford_dir(data)
    if data.is_dir():
        return from_class_folders(data) + from_named_photos(data)
    raise FileNotFoundError(f"{data}: no manifest, Stanford-layout folder or class folders")


def perceptual_hash(photo_bytes: bytes) -> int:
    """64-bit pHash of the upright photo: survives resizing, re-encoding and small edits."""
    bits = imagehash.phash(load_rgb(photo_bytes, min_side=64)).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


class NearDuplicates:
    """Perceptual hashes seen so far; a photo within ``NEAR_DUPLICATE_BITS`` is a repeat."""

    def __init__(self) -> None:
        self._hashes = np.zeros(1024, np.uint64)
        self._keys: list[str] = []

    def find(self, photo_hash: int) -> str | None:
        """The key of a near-duplicate already seen, if any (vectorised Hamming distance)."""
        seen = self._hashes[: len(self._keys)]
        close = np.flatnonzero(np.bitwise_count(seen ^ np.uint64(photo_hash))
                               <= NEAR_DUPLICATE_BITS)
        return self._keys[close[0]] if close.size else None

    def add(self, photo_hash: int, key: str) -> None:
        if len(self._keys) == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[len(self._keys)] = photo_hash
        self._keys.append(key)
