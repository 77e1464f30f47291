"""The one object that serves predictions: load once, compile once, classify batches of bytes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from model import DEFAULT_VARIANT, MODELS
from model.answers import Answer, Breed, imagenet_breed_probs, imagenet_breeds, make_answer
from model.artifact import Artifact, ArtifactError, load_artifact
from model.efficientnet import from_pretrained, run_backbone
from model.gradcam import grad_cam
from model.head import BreedHead
from model.labels import BREED_CLASSES
from model.preprocess import ImageError, NotAnImageError, load_image

log = logging.getLogger(__name__)

# Dog top-1 of the zero-training models on dogs-dev val, from scripts/evaluate_backbone.py.
MEASURED_DOG_TOP1 = {"lite0": 0.747, "lite1": 0.760, "lite2": 0.765}
BATCH_SIZES = (1, 8, 32)  # compiled shapes; a batch is padded up to the next one
GRADCAM_BATCH_SIZES = (4,)  # Grad-CAM serves offline reports: one compiled shape will do


class Predictor:
    """Classifies photos with the frozen backbone and a breed head.

    ``model`` is a backbone variant ("lite0", "lite1", "lite2": the zero-training model, its
    ImageNet head restricted to dog breeds) or the path of a trained model file. Dog or not
    always comes from the ImageNet head.

    Thread-safe: the compiled function holds no state, and each call works on its own arrays,
    so the bot may call ``classify`` from several worker threads at once.
    """

    def __init__(self, model: str = DEFAULT_VARIANT, top_k: int = 5, warm_up: bool = True):
        started = time.perf_counter()
        self.top_k = top_k
        if model in MODELS:
            variant, self._head, head_params = model, None, None
            self.promotion: dict | None = None  # how retraining last improved it
            self.breeds = imagenet_breeds()
            self.version = f"efficientnet-{variant}-imagenet"
            self.description = (f"EfficientNet-{variant.capitalize()} with its ImageNet head "
                                f"(no training yet): right on {MEASURED_DOG_TOP1[variant]:.0%} "
                                "of 3,764 photos of 10 breeds (dogs-dev val)")
        else:
            if not Path(model).exists():
                raise ArtifactError(f"no model file {model} (the zero-training models are "
                                    f"{', '.join(MODELS)})")
            artifact = load_artifact(Path(model))
            variant, head_params = artifact.variant, {"params": artifact.head_params}
            self._head = BreedHead(len(artifact.labels), **artifact.head_config)
            self.breeds = tuple(Breed(b.label, b.name) for b in artifact.labels)
            self.version = artifact.version
            self.promotion = artifact.metrics.get("promotion")
            self.description = _describe(artifact)
        self.variant = variant
        self.backbone, backbone_params = from_pretrained(variant)
        self.resolution = self.backbone.resolution
        self._params = {"backbone": backbone_params, "head": head_params}
        self._forward = jax.jit(self._forward_fn)
        self._grad_cam = jax.jit(self._grad_cam_fn)
        self._decoders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
        if warm_up:
            for size in BATCH_SIZES:
                self.probabilities(np.zeros((size, self.resolution, self.resolution, 3), np.uint8))
        log.info("predictor %s ready in %.1f s", self.version, time.perf_counter() - started)

    def _forward_fn(self, params: dict, pixels: jax.Array) -> tuple[jax.Array, jax.Array]:
        # Each photo and its mirror image, probabilities averaged: +1.3 points of dog top-1 on
        # dogs-dev val for twice the backbone work (see README).
        batch = pixels.shape[0]
        both = jnp.concatenate([pixels, pixels[:, :, ::-1]])  # (2B, S, S, 3)
        features, logits = run_backbone(self.backbone, params["backbone"], both)
        imagenet_probs = jax.nn.softmax(logits)  # (2B, 1000)
        if self._head is None:
            breed_probs = imagenet_breed_probs(imagenet_probs)
        else:
            breed_probs = jax.nn.softmax(self._head.apply(params["head"], features))
        return tuple(p.reshape(2, batch, -1).mean(0) for p in (imagenet_probs, breed_probs))

    def probabilities(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S, S, 3) uint8 -> ImageNet softmax (B, 1000) and breed probabilities (B, N)."""
        return run_padded(functools.partial(self._forward, self._params), [pixels], BATCH_SIZES)

    def _breed_logits(self, params: dict, feature_map: jax.Array) -> jax.Array:
        """(B, h, w, 1280) feature map -> (B, N) breed scores before the softmax."""
        features, imagenet_logits = self.backbone.apply(params["backbone"], feature_map,
                                                        method="pool")
        if self._head is None:  # the zero-training model: ImageNet's logits of its breeds
            return imagenet_logits[:, list(BREED_CLASSES)]
        return self._head.apply(params["head"], features)

    def _grad_cam_fn(self, params: dict, pixels: jax.Array, targets: jax.Array) -> jax.Array:
        def target_scores(feature_map: jax.Array) -> jax.Array:  # (B,)
            logits = self._breed_logits(params, feature_map)
            return jnp.take_along_axis(logits, targets[:, None], 1)[:, 0]

        feature_map = self.backbone.apply(params["backbone"], pixels, method="feature_map")
        return grad_cam(feature_map, target_scores, pixels.shape[1])

    def grad_cam(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Grad-CAM heatmaps (B, S, S) in [0, 1]: where each photo (B, S, S, 3) uint8 shows
        its target breed (B,), an index into ``breeds``. Compiled on first use."""
        return run_padded(functools.partial(self._grad_cam, self._params),
                          [pixels, np.asarray(targets, np.int32)], GRADCAM_BATCH_SIZES)

    def classify_pixels(self, pixels: np.ndarray) -> list[Answer]:
        """Answers for preprocessed photos (B, S, S, 3) uint8."""
        imagenet_probs, breed_probs = self.probabilities(pixels)
        return [make_answer(i, b, self.breeds, self.top_k)
                for i, b in zip(imagenet_probs, breed_probs, strict=True)]

    def classify(self, photos: Sequence[bytes]) -> list[Answer | ImageError]:
        """One answer per photo, or the ImageError that says why it could not be read."""
        decoded = self.decode(photos)
        good = [i for i, d in enumerate(decoded) if not isinstance(d, ImageError)]
        if good:
            answers = self.classify_pixels(np.stack([decoded[i] for i in good]))
            for i, answer in zip(good, answers, strict=True):
                decoded[i] = answer
        return decoded

    def decode(self, photos: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        """Preprocess photos in parallel: (S, S, 3) uint8 each, or the ImageError."""
        return list(self._decoders.map(self._decode_one, photos))

    def _decode_one(self, photo_bytes: bytes) -> np.ndarray | ImageError:
        try:
            return load_image(photo_bytes, self.resolution)
        except ImageError as error:
            return error
        except Exception:  # a decoder bug on one photo must not fail the others in its batch
            log.exception("unexpected error decoding a photo")
            return NotAnImageError("that file is not an image I can read")


def run_padded(compiled: Callable[..., Any], arrays: Sequence[np.ndarray],
               sizes: Sequence[int]) -> Any:
    """``compiled(*arrays)``, batched so that it only ever sees the batch ``sizes``.

    The arrays (one batch: equal first dimensions) go in chunks of the largest size, the last
    one padded with zero rows up to the next size, and the padding is cut off every output:
    each size compiles once, and any batch, even an empty one, gets its exact outputs.
    """
    count, largest = len(arrays[0]), max(sizes)
    outputs = [compiled(*(_padded(a[start : start + largest], sizes) for a in arrays))
               for start in range(0, max(count, 1), largest)]
    # Only the last chunk is padded, so the padding is at the end of the joined outputs.
    return jax.tree.map(lambda *parts: np.concatenate(parts)[:count], *outputs)


def _padded(batch: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """``batch`` with zero rows appended up to the smallest of ``sizes`` that holds it."""
    size = min(s for s in sizes if s >= len(batch))
    return np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])


def _describe(artifact: Artifact) -> str:
    val = artifact.metrics.get("val", {})
    measured = (f": right on {val['top1']:.0%} of {val['count']} validation photos"
                if "top1" in val else "")
    return (f"EfficientNet-{artifact.variant.capitalize()} with a head trained on "
            f"{len(artifact.labels)} breeds{measured}")
