"""The one object that serves predictions: load once, compile once, classify batches of bytes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from model import DEFAULT_VARIANT, MODELS, POOLING
from model.advice import Quality, advise, may_need_advice, measure
from model.answers import (
    DOG_THRESHOLD,
    MIX_THRESHOLD,
    SMALL_DOG,
    Answer,
    Box,
    Breed,
    Dog,
    PhotoAnswer,
    dog_probability,
    imagenet_breeds,
    make_answer,
)
from model.artifact import Artifact, ArtifactError, load_artifact
from model.efficientnet import from_pretrained, run_backbone, served_matmul
from model.gradcam import grad_cam
from model.head import BreedHead, imagenet_rows
from model.localize import (
    DOG_LEVEL,
    box_in_photo,
    crop_square,
    dog_maps,
    find_dogs,
    pooled_features,
)
from model.preprocess import (
    ImageError,
    NotAnImageError,
    Square,
    load_image,
    load_rgb,
    square_pixels,
    whole_square,
)

log = logging.getLogger(__name__)

# What /about quotes for the zero-training models: photos right of wiki-dogs-dev's 182 photos of
# 97 breeds, from Wikipedia, never in ImageNet, so the backbone never saw them; answered with
# ``look``, as the bot answers (README, "A breed model with no training"). dogs-dev's 76% is
# flattering: its photos are from ImageNet's training set.
UNSEEN_PHOTOS = 182
UNSEEN_RIGHT = {"lite0": 111, "lite1": 116, "lite2": 124}
BATCH_SIZES = (1, 8, 32)  # compiled shapes; a batch runs in chunks of them (``run_padded``)
GRADCAM_BATCH_SIZES = (4,)  # Grad-CAM serves offline reports: one compiled shape will do
# A photo with a dog to crop is decoded again with a short side of at least twice the model's
# resolution, so that a crop of half the frame still has the model's resolution in real pixels;
# the whole photo needs only the model's resolution, and most photos get no crop.
CROP_DETAIL = 2
# The crop around each of several dogs: their boxes meet where the dogs do, so a wider margin
# would show each dog's neighbour too. Retraining crops corrected dogs with it (``dog_square``):
# bump PREPROCESS_VERSION when it changes, so that no cached crop is reused.
SEVERAL_MARGIN = 0.1
# Which photos ``classify`` averages with their mirror image: "always" costs twice the backbone
# work; "unsure" mirrors only photos whose first answer names no breed with confidence or sees
# no dog, and on wiki-dogs-dev (182) and imagewoof-val-dev (170) it gained what "always" gained
# (114 and 120 right against 113 and 118 for "never") while mirroring 38% and 44% of the photos
# (README, Speed).
MIRRORS = ("never", "unsure", "always")
MIRROR = "unsure"


def _checked_mirror(mirror: str) -> str:
    if mirror not in MIRRORS:
        raise ValueError(f"mirror must be one of {MIRRORS}, not {mirror!r}")
    return mirror


@dataclass(frozen=True)
class Look:
    """How ``Predictor.look`` sees a photo (README, "Look closer": ``scripts/evaluate_looks.py``).

    By default it looks once, at the whole photo, adding its mirror image only where unsure
    (the same top-1 as always on wiki-dogs-dev and imagewoof-val-dev). Lite2 tells the breed
    from features pooled over the dog (``model.localize.dog_pooled``), which took it from 118
    to 124 of wiki-dogs-dev's 182 photos at no extra cost. A second look (``LOOK_TWICE``)
    gains 1 more of those and loses 3 of imagewoof-val-dev's 170, for twice the time; its
    settings are the measured best for a second look (``scripts/evaluate_looks.py``).
    """

    # When the whole photo's mirror image is averaged in (probabilities and dog maps): one of
    # MIRRORS; "unsure", as ``classify`` does, pays for it only where it may change the answer.
    mirror: str = MIRROR
    # When to classify a crop around the first dog as well: "never", "always", or "unsure":
    # when the first answer names no breed with confidence (a mix) or no dog, or the dog is
    # small.
    second_look: str = "never"
    margin: float = 0.3  # the crop's margin around the dog's box, of its longer side each end
    mirror_crop: bool = False  # the crop with its mirror image too

    def __post_init__(self) -> None:
        _checked_mirror(self.mirror)
        if self.second_look not in SECOND_LOOKS:
            raise ValueError(f"second_look must be one of {SECOND_LOOKS}, not {self.second_look!r}")

    def looks_twice(self, first: Answer, dog: Box) -> bool:
        """Whether the photo whose first answer is ``first`` and first dog ``dog`` gets a
        second look at that dog. A photo the first look took for no dog is unsure too: a
        small dog in a wide frame leaves little dog mass in the whole photo."""
        if self.second_look == "unsure":
            return may_need_advice(first) or dog.share < SMALL_DOG
        return self.second_look == "always"


SECOND_LOOKS = ("never", "unsure", "always")
LOOK = Look()  # the default: the whole photo, once
# A crop around the dog as well when unsure or small; measured with the mirror image always.
LOOK_TWICE = Look(mirror="always", second_look="unsure")


class Predictor:
    """Classifies photos with the frozen backbone and a breed head.

    ``model`` is a backbone variant ("lite0", "lite1", "lite2": the zero-training model, its
    ImageNet head restricted to dog breeds) or the path of a trained model file. Dog or not
    always comes from the ImageNet head.

    ``classify`` answers each photo from its centre crop; ``look`` looks at the whole photo
    and closer, and says where each dog is. ``matmul`` is the backbone's 1×1 products: one of
    MATMULS, or "auto" (see below).

    Thread-safe: the compiled function holds no state, and each call works on its own arrays,
    so the bot may call ``classify`` or ``look`` from several worker threads at once.
    """

    def __init__(self, model: str = DEFAULT_VARIANT, top_k: int = 5, warm_up: bool = True,
                 mirror: str = MIRROR, matmul: str = "auto"):
        started = time.perf_counter()
        self.top_k = top_k
        self.mirror = _checked_mirror(mirror)  # ``classify``'s policy unless a call says
        if model in MODELS:
            variant, head_params, self.pooling = model, None, POOLING[model]
            fitted_on = None  # ImageNet's head (``served_matmul``)
            self.promotion: dict | None = None  # how retraining last improved it
            self.breeds = imagenet_breeds()
            self.version = f"efficientnet-{variant}-imagenet"
            self.description = _describe_zero_training(variant)
        else:
            if not Path(model).exists():
                raise ArtifactError(f"no model file {model} (the zero-training models are "
                                    f"{', '.join(MODELS)})")
            artifact = load_artifact(Path(model))
            variant, head_params = artifact.variant, {"params": artifact.head_params}
            self._head = BreedHead(len(artifact.labels), **artifact.head_config)
            self.pooling, fitted_on = artifact.pooling, artifact.matmul  # what its head read
            self.breeds = tuple(Breed(b.label, b.name) for b in artifact.labels)
            self.version = artifact.version
            self.promotion = artifact.metrics.get("promotion")
            self.description = _describe(artifact)
        self.variant = variant
        self.matmul = served_matmul(matmul, fitted_on)  # bfloat16: 0.6-0.7 of float32's time
        self.backbone, backbone_params = from_pretrained(variant, self.matmul)
        if head_params is None:  # the zero-training model: ImageNet's rows of its breeds
            self._head = BreedHead(len(self.breeds))
            head_params = {"params": {"classifier": imagenet_rows(
                [b.label for b in self.breeds], backbone_params, self.pooling)}}
        self.resolution = self.backbone.resolution
        self._params = {"backbone": backbone_params, "head": head_params}
        self._forward = jax.jit(self._forward_fn, static_argnames=("with_map",))
        self._grad_cam = jax.jit(self._grad_cam_fn)
        self._decoders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decode")
        if warm_up:  # what ``classify`` runs; ``look`` compiles on first use (Lite2: 12 s)
            for size in BATCH_SIZES:
                self.probabilities(np.zeros((size, self.resolution, self.resolution, 3), np.uint8))
        log.info("predictor %s (%s 1×1 products) ready in %.1f s", self.version, self.matmul,
                 time.perf_counter() - started)

    def warm_up_look(self, photos: int = max(BATCH_SIZES)) -> None:
        """Compile what ``look`` runs, however it looks (``Look``), on up to ``photos`` photos a
        call: the whole views with their dog maps at the batch sizes those use, and the crops
        around dogs at every size (a photo may show several dogs)."""
        # ``run_padded`` uses the sizes the photos fill (the smallest for fewer); mirror images
        # go through the same programs in a second call (``_mirrored_as``).
        wholes = [size for size in BATCH_SIZES if size <= photos] or [min(BATCH_SIZES)]
        for size in BATCH_SIZES:
            blank = np.zeros((size, self.resolution, self.resolution, 3), np.uint8)
            # Compiled ahead of time, not run: the calls later find it compiled all the same.
            if size in wholes:
                self._forward.lower(self._params, blank, with_map=True).compile()
            self._forward.lower(self._params, blank).compile()

    def _forward_fn(self, params: dict, pixels: jax.Array, with_map: bool = False
                    ) -> tuple[jax.Array, ...]:
        """(B, S, S, 3) -> ImageNet softmax (B, 1000) and breed probabilities (B, N); with
        ``with_map`` also the dog maps (probability and evidence, (B, h, w) each)."""
        feature_map = run_backbone(self.backbone, params["backbone"], pixels,
                                   method="feature_map")  # (B, h, w, 1280)
        logits, breed_logits, cell_logits = self._logits(params, feature_map)
        probs = (jax.nn.softmax(logits), jax.nn.softmax(breed_logits))  # (B, 1000), (B, N)
        return (*probs, *dog_maps(cell_logits)) if with_map else probs

    def probabilities(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, S, S, 3) uint8 -> ImageNet softmax (B, 1000) and breed probabilities (B, N) of
        the photos as they are (``classify_probabilities`` adds mirror images)."""
        return run_padded(functools.partial(self._forward, self._params), [pixels], BATCH_SIZES)

    def whole_probabilities(self, pixels: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``probabilities``, and the dog maps (probability and evidence, (B, h, w) each) of
        the photos (B, S, S, 3) (``look_probabilities`` adds mirror images)."""
        return run_padded(functools.partial(self._forward, self._params, with_map=True),
                          [pixels], BATCH_SIZES)

    def look_probabilities(self, pixels: np.ndarray, mirror: str) -> list[np.ndarray]:
        """``whole_probabilities`` of photos (B, S, S, 3), with their mirror images' averaged in
        as ``mirror`` (one of MIRRORS) says."""
        return _mirrored_as(mirror, self.whole_probabilities, pixels)

    def _logits(self, params: dict, feature_map: jax.Array
                ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(B, h, w, 1280) feature map -> ImageNet's logits of the whole photo (B, 1000), the
        breed logits (B, N) and each cell's ImageNet logits (B, h, w, 1000)."""
        features, logits, cell_logits = pooled_features(self.backbone, params["backbone"],
                                                        feature_map, self.pooling)
        return logits, self._head.apply(params["head"], features), cell_logits

    def _grad_cam_fn(self, params: dict, pixels: jax.Array, targets: jax.Array) -> jax.Array:
        def target_scores(feature_map: jax.Array) -> jax.Array:  # (B,)
            logits = self._logits(params, feature_map)[1]
            return jnp.take_along_axis(logits, targets[:, None], 1)[:, 0]

        feature_map = self.backbone.apply(params["backbone"], pixels, method="feature_map")
        return grad_cam(feature_map, target_scores, pixels.shape[1])

    def grad_cam(self, pixels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Grad-CAM heatmaps (B, S, S) in [0, 1]: where each photo (B, S, S, 3) uint8 shows
        its target breed (B,), an index into ``breeds``. Compiled on first use."""
        return run_padded(functools.partial(self._grad_cam, self._params),
                          [pixels, np.asarray(targets, np.int32)], GRADCAM_BATCH_SIZES)

    def classify_probabilities(self, pixels: np.ndarray, mirror: str | None = None
                               ) -> tuple[np.ndarray, np.ndarray]:
        """What ``classify`` answers from: ImageNet softmax (B, 1000) and breed probabilities
        (B, N) of photos (B, S, S, 3) uint8, averaged with their mirror image's as ``mirror``
        (one of MIRRORS; by default the predictor's) says."""
        imagenet_probs, breed_probs = _mirrored_as(_checked_mirror(mirror or self.mirror),
                                                   self.probabilities, pixels)
        return imagenet_probs, breed_probs

    def classify_pixels(self, pixels: np.ndarray, mirror: str | None = None) -> list[Answer]:
        """Answers for preprocessed photos (B, S, S, 3) uint8 (``mirror``: see MIRRORS)."""
        imagenet_probs, breed_probs = self.classify_probabilities(pixels, mirror)
        return [make_answer(i, b, self.breeds, self.top_k)
                for i, b in zip(imagenet_probs, breed_probs, strict=True)]

    def classify(self, photos: Sequence[bytes], mirror: str | None = None
                 ) -> list[Answer | ImageError]:
        """One answer per photo, or the ImageError that says why it could not be read."""
        return _on_readable(self.decode(photos),
                            lambda pixels: self.classify_pixels(np.stack(pixels), mirror))

    def decode(self, photos: Sequence[bytes]) -> list[np.ndarray | ImageError]:
        """Preprocess photos in parallel: (S, S, 3) uint8 each, or the ImageError."""
        decode = functools.partial(load_image, size=self.resolution)
        return list(self._decoders.map(functools.partial(_read, decode), photos))

    def look(self, photos: Sequence[bytes], how: Look = LOOK) -> list[PhotoAnswer | ImageError]:
        """Each photo looked at whole and closer: its answer and where each dog is, with the
        dog's own answer, and advice when the answer is unsure; or the ImageError that says
        why it could not be read.

        The whole photo (letterboxed, not cropped, so that dogs off-centre count) gives the
        first answer and the dog map; ``how`` says when a crop around the first dog is
        classified too and averaged in. With several dogs, each gets a crop and an answer.
        """
        return [result if isinstance(result, ImageError) else result[0]
                for result in self.look_measured(photos, how)]

    def look_measured(self, photos: Sequence[bytes], how: Look = LOOK
                      ) -> list[tuple[PhotoAnswer, Quality | None] | ImageError]:
        """``look``, with the quality of each photo that its advice was chosen from (None where
        the answer is sure: no advice is given there, so nothing is measured)."""
        def decode(photo_bytes: bytes) -> tuple[bytes, Image.Image]:
            return photo_bytes, load_rgb(photo_bytes, min_side=self.resolution)

        decoded = list(self._decoders.map(functools.partial(_read, decode), photos))
        return _on_readable(decoded, lambda readable: self._look_at(readable, how))

    def _look_at(self, decoded: list[tuple[bytes, Image.Image]], how: Look
                 ) -> list[tuple[PhotoAnswer, Quality | None]]:
        images = [image for _, image in decoded]
        views = [whole_square(*image.size) for image in images]
        imagenet, breeds, *maps = self.look_probabilities(self._pixels(images, views),
                                                          how.mirror)
        wholes = list(zip(imagenet, breeds, strict=True))
        firsts = [make_answer(*whole, self.breeds, self.top_k) for whole in wholes]
        dogs = [dogs_in_photo(*image.size, *cells) if sees_dogs(first, cells[0].max()) else []
                for image, first, *cells in zip(images, firsts, *maps, strict=True)]
        twice = [bool(found) and how.looks_twice(first, found[0])
                 for first, found in zip(firsts, dogs, strict=True)]
        wanted = [(i, j) for i, found in enumerate(dogs) for j in range(len(found))
                  if len(found) > 1 or twice[i]]
        crops = self._crop_probabilities(decoded, dogs, wanted, how)
        return [self._photo_answer(wholes[i], found,
                                   [crops.get((i, j)) for j in range(len(found))], twice[i],
                                   images[i])
                for i, found in enumerate(dogs)]

    def _photo_answer(self, whole: tuple[np.ndarray, np.ndarray], boxes: list[Box],
                      crops: list[tuple[np.ndarray, np.ndarray] | None], twice: bool,
                      image: Image.Image) -> tuple[PhotoAnswer, Quality | None]:
        """A photo's answer from its whole view's probabilities (ImageNet (1000,), breeds (N,)),
        its dogs' boxes and their crops' probabilities (None: not looked at), with advice from
        the quality of ``image`` where the answer is unsure."""
        answer = make_answer(*(combined([whole, crops[0]]) if twice else whole), self.breeds,
                             self.top_k)
        dogs = self._dogs(answer, boxes, crops)
        quality = measure(image, boxes[0] if boxes else None) if may_need_advice(answer) else None
        advice = advise(answer, quality, dogs=len(dogs))
        return PhotoAnswer(answer, dogs, twice, advice), quality

    def _dogs(self, answer: Answer, boxes: list[Box],
              crops: list[tuple[np.ndarray, np.ndarray] | None]) -> tuple[Dog, ...]:
        """The dogs of a photo whose answer is ``answer``: none when it is no dog; with one
        box, that dog with the photo's answer; with several, each with its crop's answer."""
        if not answer.is_dog:
            return ()
        if len(boxes) == 1:
            return (Dog(boxes[0], answer),)
        own = [make_answer(*crop, self.breeds, self.top_k) for crop in crops]
        return tuple(Dog(box, dog) for box, dog in zip(boxes, own, strict=True) if dog.is_dog)

    def _crop_probabilities(self, decoded: list[tuple[bytes, Image.Image]],
                            dogs: list[list[Box]], wanted: list[tuple[int, int]], how: Look
                            ) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """ImageNet (1000,) and breed (N,) probabilities of a crop around each wanted dog
        (photo index, dog index), cut from the photo decoded with detail enough for it."""
        if not wanted:
            return {}
        photos = sorted({i for i, _ in wanted})
        detailed = dict(zip(photos, self._decoders.map(self._detailed,
                                                       [decoded[i] for i in photos]), strict=True))
        squares = [dog_square(detailed[i], dogs[i][j], len(dogs[i]) > 1, how) for i, j in wanted]
        imagenet, breeds = _mirrored_as("always" if how.mirror_crop else "never",
                                        self.probabilities,
                                        self._pixels([detailed[i] for i, _ in wanted], squares))
        return {key: (a, b) for key, a, b in zip(wanted, imagenet, breeds, strict=True)}

    def _detailed(self, photo: tuple[bytes, Image.Image]) -> Image.Image:
        """The decoded photo, or, where it was decoded smaller than ``CROP_DETAIL`` times the
        model's resolution, the photo decoded again at that: only photos with a crop to look
        at pay for the finer decode."""
        photo_bytes, image = photo
        if min(image.size) >= CROP_DETAIL * self.resolution:
            return image  # what crop_image would decode: the same JPEG draft scale
        finer = _read(functools.partial(crop_image, resolution=self.resolution), photo_bytes)
        # Decoded once already: a failure now must not fail the batch; the crops lose detail.
        return image if isinstance(finer, ImageError) else finer

    def _pixels(self, images: list[Image.Image], squares: list[Square]) -> np.ndarray:
        """The squares of the images as model input (B, S, S, 3) uint8, resized in parallel."""
        resize = functools.partial(square_pixels, size=self.resolution)
        return np.stack(list(self._decoders.map(resize, images, squares)))


def sees_dogs(first: Answer, map_peak: float) -> bool:
    """Whether ``look`` looks for dogs in a photo whose first answer is ``first`` and whose dog
    map peaks at ``map_peak``: the answer saw one, or the map does (a dog too small for it)."""
    return first.is_dog or map_peak >= DOG_LEVEL


def dogs_in_photo(width: int, height: int, probability: np.ndarray, evidence: np.ndarray
                  ) -> list[Box]:
    """The dogs on the (h, w) dog maps of the whole photo, letterboxed as ``look`` sees it, as
    boxes in the photo (``width`` × ``height``), the most evident first."""
    view = whole_square(width, height)
    return [box_in_photo(box, view, width, height) for box in find_dogs(probability, evidence)]


def crop_image(photo_bytes: bytes, resolution: int) -> Image.Image:
    """A photo decoded as ``look`` decodes it to crop dogs from, for a model of ``resolution``
    pixels (see ``CROP_DETAIL``)."""
    return load_rgb(photo_bytes, min_side=CROP_DETAIL * resolution)


def dog_square(image: Image.Image, box: Box, several: bool, how: Look = LOOK) -> Square:
    """The square of ``image`` (decoded by ``crop_image``) that ``look`` classifies the dog in
    ``box`` (fractions of the photo) from: the dog alone in the photo, or one of ``several``.
    Retraining crops a corrected dog of several with it too, so that it learns from the view
    the bot answers from."""
    return crop_square(box, *image.size, SEVERAL_MARGIN if several else how.margin)


def combined(views: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Several views' ImageNet (1000,) and breed (N,) probabilities as one: ImageNet's
    averaged, breeds' averaged with each view weighted by how much it shows a dog, so that a
    view of mostly background does not blur the breeds of a close-up."""
    imagenet, breeds = (np.stack(p) for p in zip(*views, strict=True))  # (V, 1000), (V, N)
    weights = dog_probability(imagenet)[:, None]  # (V, 1)
    return imagenet.mean(0), (weights * breeds).sum(0) / max(float(weights.sum()), 1e-9)


def _mirrored_as(mirror: str, run: Callable[[np.ndarray], Sequence[np.ndarray]],
                 pixels: np.ndarray) -> list[np.ndarray]:
    """``run(pixels)``'s outputs (ImageNet (B, 1000) and breed (B, N) probabilities, then any
    dog maps (B, h, w)), averaged with the mirror images' as ``mirror`` (one of MIRRORS) says:
    "unsure" for the photos ``_unsure`` picks, paid for where it may count.

    A photo and its mirror image averaged: +1.3 points of dog top-1 on dogs-dev val for twice
    the backbone work (README, Speed). A mirror image's map, mirrored back, is a second look
    at the same photo: averaged, the boxes move less with chance details."""
    outputs = list(run(pixels))
    if mirror == "unsure":
        rows = np.flatnonzero(_unsure(*outputs[:2]))
    else:
        rows = np.arange(len(pixels) if mirror == "always" else 0)
    if len(rows):
        mirrored = run(pixels[rows, :, ::-1])
        for output, more in zip(outputs, mirrored, strict=True):
            output[rows] = (output[rows] + (more if more.ndim == 2 else more[..., ::-1])) / 2
    return outputs


def _unsure(imagenet_probs: np.ndarray, breed_probs: np.ndarray) -> np.ndarray:
    """(B,) whether each answer from ImageNet (B, 1000) and breed (B, N) probabilities names no
    breed with confidence (a mix) or sees no dog: ``make_answer``'s two thresholds."""
    return (breed_probs.max(-1) < MIX_THRESHOLD) | (dog_probability(imagenet_probs) < DOG_THRESHOLD)


def _read(decode: Callable[[bytes], Any], photo_bytes: bytes) -> Any:
    """``decode(photo_bytes)``, or the ImageError that says why it failed."""
    try:
        return decode(photo_bytes)
    except ImageError as error:
        return error
    except Exception:  # a decoder bug on one photo must not fail the others in its batch
        log.exception("unexpected error decoding a photo")
        return NotAnImageError("that file is not an image I can read")


def _on_readable(decoded: list, run: Callable[[list], list]) -> list:
    """``decoded`` with the photos that read (not ImageErrors) replaced by ``run``'s results
    for them, all in one call; the errors keep their places."""
    readable = [i for i, d in enumerate(decoded) if not isinstance(d, ImageError)]
    if readable:
        for i, result in zip(readable, run([decoded[i] for i in readable]), strict=True):
            decoded[i] = result
    return decoded


def run_padded(compiled: Callable[..., Any], arrays: Sequence[np.ndarray],
               sizes: Sequence[int]) -> Any:
    """``compiled(*arrays)``, batched so that it only ever sees the batch ``sizes``.

    The arrays (one batch: equal first dimensions) go in chunks, each of the largest size the
    rows left can fill, and only rows left under the smallest size are padded with zero rows
    up to it; the padding is cut off every output. Each size compiles once, and any batch,
    even an empty one, gets its exact outputs. The backbone runs one photo at a time (CHUNK),
    so a padded row costs as much as a real one: 2 crops padded to 8 were 4 times the work
    of two calls at size 1.
    """
    count, chunks, start = len(arrays[0]), [], 0
    while start < max(count, 1):
        size = max((s for s in sizes if s <= count - start), default=min(sizes))
        chunks.append((start, size))
        start += size
    outputs = [compiled(*(_padded(a[start : start + size], size) for a in arrays))
               for start, size in chunks]
    # Only the last chunk is padded, so the padding is at the end of the joined outputs.
    return jax.tree.map(lambda *parts: np.concatenate(parts)[:count], *outputs)


def _padded(batch: np.ndarray, size: int) -> np.ndarray:
    """``batch`` with zero rows appended up to ``size``."""
    return np.concatenate([batch, np.zeros((size - len(batch), *batch.shape[1:]), batch.dtype)])


def times_in_ten(top1: float) -> str:
    """"right about 6 times in 10": an accuracy as people say it."""
    return f"right about {round(top1 * 10)} times in 10"


def _describe_zero_training(variant: str) -> str:
    """A zero-training model and its accuracy on photos its backbone never saw."""
    return (f"EfficientNet-{variant.capitalize()} with its ImageNet head (no training yet): "
            f"{times_in_ten(UNSEEN_RIGHT[variant] / UNSEEN_PHOTOS)} on photos of 97 breeds it "
            f"never saw (wiki-dogs-dev, {UNSEEN_PHOTOS} photos)")


def _describe(artifact: Artifact) -> str:
    """A trained model and its accuracy on the photos of its data held out from its training:
    the test split, where there is one; else val (used only to stop training and calibrate)."""
    split = next((name for name in ("test", "val") if "top1" in artifact.metrics.get(name, {})),
                 None)
    measured = ""
    if split:
        figures = artifact.metrics[split]
        measured = (f": {times_in_ten(figures['top1'])} on {figures['count']:,} photos it was "
                    f"not trained on ({split} split of its data)")
    return (f"EfficientNet-{artifact.variant.capitalize()} with a head trained on "
            f"{len(artifact.labels)} breeds{measured}")
