"""Backbone features, computed once per photo (or dog in one) and cached on disk.

The cache key is the example's key (the photo's sha256, with the box for one dog of several
in it), the backbone variant, its 1×1 products and PREPROCESS_VERSION, so a new photo, dog,
variant, products or preprocessing never reuses stale features, and a dog never reuses its
photo's. Each entry holds the clean view (the serving preprocessing: the centre crop of a
photo, the square ``look`` answers a dog of several from) and, for training photos, a few
augmented views.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm import tqdm

from model import POOLING
from model.data.dataset import Example, sha256_hex
from model.data.feature_cache import FeatureCache
from model.efficientnet import EfficientNetLite, from_pretrained, run_backbone
from model.localize import pooled_features
from model.predictor import crop_image, dog_square
from model.preprocess import (
    ImageError,
    Square,
    centre_square,
    load_rgb,
    square_pixels,
)
from model.training.augment import random_views, source_size

log = logging.getLogger(__name__)
BATCH = 32


def served_square(example: Example, resolution: int) -> tuple[Image.Image, Square]:
    """The example's photo, decoded, and the square of it that a model of ``resolution``
    pixels answers from: its centre square (``Predictor.classify``), or for one dog of several
    the square around that dog that ``Predictor.look`` answers it from, in the photo as
    ``look`` decodes it."""
    photo_bytes = example.path.read_bytes()
    if example.box is None:
        image = load_rgb(photo_bytes, min_side=source_size(resolution))
        return image, centre_square(*image.size)
    image = crop_image(photo_bytes, resolution)
    return image, dog_square(image, example.box, several=True)


def backbone_features(backbone: EfficientNetLite, params: dict, pixels: jax.Array,
                      pooling: str) -> jax.Array:
    """(B, S, S, 3) -> (B, 1280): the features a head is fitted on, pooled as ``pooling`` says
    (``POOLINGS``), as ``Predictor`` pools them."""
    feature_map = run_backbone(backbone, params, pixels, method="feature_map")  # (B, h, w, 1280)
    return pooled_features(backbone, params, feature_map, pooling)[0]


class FeatureExtractor:
    """Runs the frozen backbone over photos: the clean view plus ``views`` augmented ones."""

    def __init__(self, variant: str, seed: int = 0, pooling: str | None = None, *,
                 matmul: str):
        """``pooling``: how the features are pooled (``POOLINGS``), None: as ``variant``'s are
        now (``POOLING``); ``matmul``: the backbone's 1×1 products (``MATMULS``)."""
        self.backbone, self._params = from_pretrained(variant, matmul)
        self.seed = seed
        resolution = self.backbone.resolution
        features = functools.partial(backbone_features, self.backbone,
                                     pooling=pooling or POOLING[variant])
        self._clean = jax.jit(features)
        self._augmented = jax.jit(lambda p, k, s: features(p, random_views(k, s, resolution)))

    def _decode(self, example: Example) -> tuple[np.ndarray, np.ndarray] | None:
        """The example's square at the model's resolution and, for crops, a little larger."""
        resolution = self.backbone.resolution
        try:
            image, square = served_square(example, resolution)
        except (ImageError, OSError) as error:
            log.warning("skipping %s: %s", example.path, error)
            return None
        return (square_pixels(image, square, resolution),
                square_pixels(image, square, source_size(resolution)))

    def _features(self, batch: list[tuple[Example, np.ndarray, np.ndarray]],
                  views: int) -> np.ndarray:
        """(B, 1 + views, 1280) for one batch; views are reproducible per photo and seed."""
        clean = np.stack([b[1] for b in batch])
        sources = jnp.asarray(np.stack([b[2] for b in batch]))
        photo_ids = jnp.array([_augmentation_id(b[0]) for b in batch])
        outputs = [self._clean(self._params, clean)]
        for view in range(1, views + 1):
            base = jax.random.fold_in(jax.random.key(self.seed), view)
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, photo_ids)
            outputs.append(self._augmented(self._params, keys, sources))
        return np.stack([np.asarray(o) for o in outputs], axis=1)

    def _decoded(self, decoders: ThreadPoolExecutor, chunks: list[list[Example]]
                 ) -> Iterator[tuple[list[Example], list]]:
        """Each chunk with its photos decoded (``_decode``); the next chunk decodes while the
        caller runs the backbone on this one."""
        def start(chunk: list[Example]) -> Iterator:
            return decoders.map(self._decode, chunk)  # submits them all now

        upcoming = start(chunks[0]) if chunks else iter(())
        for index, chunk in enumerate(chunks):
            decoded = list(upcoming)
            if index + 1 < len(chunks):
                upcoming = start(chunks[index + 1])
            yield chunk, decoded

    def extract(self, examples: list[Example], views: int, cache: FeatureCache,
                desc: str = "features") -> dict[str, np.ndarray]:
        """Features for every readable example (cached or computed), by ``Example.key``."""
        found = {e.key: f for e in examples if (f := cache.get(e.key, views)) is not None}
        missing = list({e.key: e for e in examples if e.key not in found}.values())
        started = time.perf_counter()
        chunks = [missing[start : start + BATCH] for start in range(0, len(missing), BATCH)]
        with (ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as decoders,
              tqdm(total=len(missing), desc=desc, unit="photo", disable=not missing) as bar):
            for chunk, decoded in self._decoded(decoders, chunks):
                batch = [(e, *d) for e, d in zip(chunk, decoded, strict=True) if d is not None]
                if batch:
                    for (example, *_), features in zip(batch, self._features(batch, views),
                                                       strict=True):
                        cache.put(example.key, features)
                        found[example.key] = features
                bar.update(len(chunk))
        if missing:
            rate = len(missing) / (time.perf_counter() - started)
            log.info("%s: %d photos computed at %.1f photos/s (%d views each), %d cached",
                     desc, len(missing), rate, 1 + views, len(examples) - len(missing))
        return found


def cached_features(variant: str, seed: int, views: int, train: list[Example],
                    others: dict[str, list[Example]], cache_root: Path,
                    pooling: str | None = None, *, matmul: str) -> dict[str, np.ndarray]:
    """Features by ``Example.key``: the training photos' clean and ``views`` augmented views,
    and every other photo's clean view, pooled as ``pooling`` says (None: as ``variant``'s
    are now) from a backbone with ``matmul`` 1×1 products; computed once, then read from the
    cache under ``cache_root``."""
    extractor = FeatureExtractor(variant, seed, pooling, matmul=matmul)
    cache = FeatureCache(cache_root, variant, seed, pooling, matmul)
    features = extractor.extract(train, views, cache, "train features")
    for name, photos in others.items():
        features |= extractor.extract(photos, 0, cache, f"{name} features")
    return features


def _augmentation_id(example: Example) -> int:
    """A number that seeds the example's augmented views: from its photo's sha256, or for a
    dog in a photo from its key, so that the dogs of one photo are not augmented alike."""
    key = example.key if example.box is None else sha256_hex(example.key.encode())
    return int(key[:7], 16)
